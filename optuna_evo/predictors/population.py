"""Female populations in the study's storage, and the male-side curve helpers.

Storage keys (all JSON, all small):

===========================================  ==================================================
key                                          value
===========================================  ==================================================
study system attr ``optuna_evo:females:{g}``  :meth:`FemalePopulation.to_dict`: generation
                                             ``g``'s top females, best first, each with the
                                             trial that carries it (``None`` for the built-in
                                             :data:`~optuna_evo.predictors.DEFAULT_FEMALE`),
                                             its genome and fitness; ``early_steps`` and the
                                             number of males it was scored on
trial system attr ``optuna_evo:female``      the genome (:meth:`FemaleGenome.to_dict`) the
                                             trial carries: its offspring female
trial system attr ``optuna_evo:female_parents``  trial numbers of the two (or one) female
                                             parents, ``None`` for the built-in default;
                                             empty in generation 0
===========================================  ==================================================

``optuna_evo:females:{g}`` is written by the first worker that needs generation ``g``'s
females and is a pure function of what is in storage at that time, so concurrent workers
write the same content (last write wins).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import math
from typing import Any

import numpy as np
import optuna
from optuna.study import Study
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_evo.predictors.female import FemaleGenome
from optuna_evo.predictors.female import MaleCurve
from optuna_evo.predictors.female import evaluate_female

FEMALE_KEY = "optuna_evo:female"
FEMALE_PARENTS_KEY = "optuna_evo:female_parents"
FEMALES_KEY_PREFIX = "optuna_evo:females:"


@dataclass(frozen=True)
class RankedFemale:
    """One member of a stored female population.

    Attributes:
        trial: Number of the trial that carries the genome; ``None`` for the built-in default.
        genome: The predictor.
        fitness: See :func:`~optuna_evo.predictors.evaluate_female`; ``None`` if unscored.
        rho: Rank correlation on the scoring males.
        error: Normalised mean absolute error on the scoring males.
    """

    trial: int | None
    genome: FemaleGenome
    fitness: float | None = None
    rho: float | None = None
    error: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "trial": self.trial,
            "genome": self.genome.to_dict(),
            "fitness": self.fitness,
            "rho": self.rho,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RankedFemale:
        """Inverse of :meth:`to_dict`."""
        return cls(
            trial=None if data["trial"] is None else int(data["trial"]),
            genome=FemaleGenome.from_dict(data["genome"]),
            fitness=data.get("fitness"),
            rho=data.get("rho"),
            error=data.get("error"),
        )


@dataclass(frozen=True)
class FemalePopulation:
    """A generation's top females, best first, as stored under ``optuna_evo:females:{g}``.

    Attributes:
        generation: The generation they parent.
        early_steps: Reports each female saw of a male.
        n_males: Number of finished males they were scored on.
        members: The females, best first.
    """

    generation: int
    early_steps: int
    n_males: int
    members: tuple[RankedFemale, ...]

    @property
    def best(self) -> FemaleGenome | None:
        """The best female's genome (``None`` for an empty population)."""
        return self.members[0].genome if self.members else None

    @property
    def scored(self) -> bool:
        """Whether the members were ranked on finished males (rather than in trial order)."""
        return bool(self.members) and self.members[0].fitness is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "generation": self.generation,
            "early_steps": self.early_steps,
            "n_males": self.n_males,
            "members": [m.to_dict() for m in self.members],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FemalePopulation:
        """Inverse of :meth:`to_dict`."""
        return cls(
            generation=int(data["generation"]),
            early_steps=int(data["early_steps"]),
            n_males=int(data["n_males"]),
            members=tuple(RankedFemale.from_dict(m) for m in data["members"]),
        )


def females_key(generation: int) -> str:
    """Study system-attr key of generation ``generation``'s female population."""
    return f"{FEMALES_KEY_PREFIX}{generation}"


def stored_female_generations(study: Study) -> list[int]:
    """Generations whose female population is in the study's storage, ascending."""
    attrs = study._storage.get_study_system_attrs(study._study_id)
    return sorted(_female_generations(attrs))


def _female_generations(attrs: Mapping[str, Any]) -> Iterable[int]:
    for key in attrs:
        if key.startswith(FEMALES_KEY_PREFIX):
            suffix = key[len(FEMALES_KEY_PREFIX) :]
            if suffix.isdigit():
                yield int(suffix)


def load_females(study: Study, generation: int | None = None) -> FemalePopulation | None:
    """Read a female population from the study's storage.

    Args:
        study: A study run with :class:`~optuna_evo.samplers.gender.GenderSampler`.
        generation: The generation; ``None`` for the newest stored one.

    Returns:
        The population, or ``None`` if none is stored.
    """
    attrs = study._storage.get_study_system_attrs(study._study_id)
    if generation is None:
        generation = max(_female_generations(attrs), default=None)
        if generation is None:
            return None
    data = attrs.get(females_key(generation))
    return None if data is None else FemalePopulation.from_dict(data)


def best_female(study: Study, min_males: int = 1) -> FemaleGenome | None:
    """The best female of the newest stored population, if it was scored on enough males.

    Args:
        study: The study.
        min_males: Fewest finished males the population must have been scored on.

    Returns:
        The genome, or ``None`` (no population yet, or too little evidence).
    """
    population = load_females(study)
    if population is None or not population.scored or population.n_males < min_males:
        return None
    return population.best


def trial_curve(trial: FrozenTrial) -> tuple[np.ndarray, np.ndarray]:
    """A trial's reported curve: ``(steps, values)`` sorted by step, non-finite values kept."""
    if not trial.intermediate_values:
        return np.zeros(0), np.zeros(0)
    steps = np.array(sorted(trial.intermediate_values), dtype=float)
    values = np.array([trial.intermediate_values[int(s)] for s in steps], dtype=float)
    return steps, values


def final_step(trials: Iterable[FrozenTrial]) -> float | None:
    """The step a finished run reaches: the largest last report of the COMPLETE trials.

    Predictors extrapolate running or pruned curves to this step. ``None`` when no COMPLETE
    trial reported anything.
    """
    last = [
        max(t.intermediate_values)
        for t in trials
        if t.state == TrialState.COMPLETE and t.intermediate_values
    ]
    return float(max(last)) if last else None


def early_speed(
    steps: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    early_steps: int,
    direction: StudyDirection = StudyDirection.MINIMIZE,
) -> float | None:
    """How fast a curve improves over its first ``early_steps`` reports (higher is faster).

    With reports ``v_1 .. v_m`` at steps ``s_1 .. s_m`` (``m = min(early_steps, reports)``)
    and ``sign`` = +1 when minimising, -1 when maximising::

        early_steps >= 2:  speed = sign * (v_1 - v_m) / (|v_1| + 1e-12) / (s_m - s_1)
        early_steps == 1:  speed = -sign * v_1

    i.e. the relative improvement per step, or (with one report) how good the first report
    already is.

    Returns:
        The speed, or ``None`` (neutral) when there are too few finite reports (fewer than 2,
        or none for ``early_steps == 1``) or the first report is non-finite.
    """
    x = np.asarray(steps, dtype=float)[:early_steps]
    y = np.asarray(values, dtype=float)[:early_steps]
    sign = 1.0 if direction == StudyDirection.MINIMIZE else -1.0
    if y.size == 0 or not math.isfinite(y[0]):
        return None
    if early_steps == 1:
        return -sign * float(y[0])
    if y.size < 2 or not math.isfinite(y[-1]) or not x[-1] > x[0]:
        return None
    return sign * float(y[0] - y[-1]) / (abs(float(y[0])) + 1e-12) / float(x[-1] - x[0])


def male_curves(trials: Iterable[FrozenTrial], early_steps: int) -> list[MaleCurve]:
    """The COMPLETE trials usable to score females: a finite value and > ``early_steps``
    finite reports (so that there is something left to predict)."""
    males = []
    for t in trials:
        if t.state != TrialState.COMPLETE or t.value is None or not math.isfinite(t.value):
            continue
        steps, values = trial_curve(t)
        male = MaleCurve.from_arrays(steps, values, t.value, t.number)
        if male.values.size > early_steps:
            males.append(male)
    return males


def rank_females(
    candidates: Sequence[tuple[int | None, FemaleGenome]],
    males: Sequence[MaleCurve],
    early_steps: int,
    error_weight: float = 0.5,
) -> list[RankedFemale]:
    """Score candidate females on ``males`` and rank them best first.

    Unscored candidates (fewer than 3 males) keep their order. Ties keep the candidates'
    order, so the result is a pure function of the inputs.

    Args:
        candidates: ``(carrying trial number or None, genome)`` pairs.
        males: Finished males (see :func:`male_curves`).
        early_steps: Reports each female may see.
        error_weight: See :func:`~optuna_evo.predictors.evaluate_female`.

    Returns:
        The ranked females with their fitness.
    """
    scored = []
    for index, (trial, genome) in enumerate(candidates):
        fit = evaluate_female(genome, males, early_steps, error_weight)
        member = RankedFemale(trial, genome, fit.fitness, fit.rho, fit.error)
        key = -fit.fitness if fit.fitness is not None else math.inf
        scored.append((key, index, member))
    scored.sort(key=lambda s: (s[0], s[1]))
    return [member for _, _, member in scored]


def trial_female(
    trial: FrozenTrial | optuna.Trial, study: Study | None = None
) -> FemaleGenome | None:
    """The female genome a trial carries (``None`` if no GenderSampler handled it).

    Args:
        trial: A running :class:`optuna.Trial` or a FrozenTrial.
        study: The study of a FrozenTrial, to read the freshest copy from storage; optional.
    """
    if isinstance(trial, optuna.Trial):
        attrs = trial.study._storage.get_trial_system_attrs(trial._trial_id)
    elif study is not None:
        attrs = study._storage.get_trial_system_attrs(trial._trial_id)
    else:
        attrs = trial.system_attrs
    data = attrs.get(FEMALE_KEY)
    return None if data is None else FemaleGenome.from_dict(data)
