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

from optuna_evo._validation import check_float
from optuna_evo._validation import check_int
from optuna_evo.predictors.curves import clean_curve
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
    """A trial's reported curve: ``(steps, values)`` sorted by step, non-finite values kept.

    Steps are returned as floats (the predictors extrapolate in step units); steps above
    ``2**53`` are rounded to the nearest float, but every reported value is kept.
    """
    if not trial.intermediate_values:
        return np.zeros(0), np.zeros(0)
    # Both arrays from the items: looking values up by a float-converted step loses steps
    # above 2**53.
    items = sorted(trial.intermediate_values.items())
    steps = np.array([s for s, _ in items], dtype=float)
    values = np.array([v for _, v in items], dtype=float)
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


_Curve = tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]


def speed_window(curves: Iterable[_Curve], early_steps: int) -> tuple[float, float] | None:
    """The step range ``(start, stop)`` over which :func:`early_speed` compares ``curves``.

    Only the finite reports count. Of the curves with at least ``early_steps`` of them,
    ``stop`` is the latest step of an ``early_steps``-th report and ``start`` the latest step
    of a first report (``start == stop`` when ``early_steps == 1``; ``start < stop``
    otherwise).

    Why the latest: curves reported on a coarser step grid (a larger batch, skipped report
    steps) then have real reports at both ends or close to them, and every curve is measured
    over the same steps. With the earliest ``early_steps``-th report instead, coarse curves
    would be read off the chord across their first gap, which understates the early drop of
    the convex curves training produces and so would penalise such configurations
    systematically. The price: a curve that stopped (was pruned) before ``stop``, or began
    reporting after ``start``, gets no speed (see :func:`early_speed`).

    Args:
        curves: ``(steps, values)`` per candidate, e.g. from :func:`trial_curve`.
        early_steps: Reports that define early speed, >= 1.

    Returns:
        ``(start, stop)``, or ``None`` when no curve has ``early_steps`` finite reports.
    """
    early_steps = check_int("early_steps", early_steps, 1)
    start = stop = -math.inf
    for steps, values in curves:
        x, _ = clean_curve(steps, values)
        if x.size >= early_steps:
            start = max(start, float(x[0]))
            stop = max(stop, float(x[early_steps - 1]))
    return None if stop == -math.inf else (start, stop)


def early_speed(
    steps: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    early_steps: int,
    direction: StudyDirection = StudyDirection.MINIMIZE,
    window: tuple[float, float] | None = None,
) -> float | None:
    """How fast a curve improves over the early step range ``window`` (higher is faster).

    With ``v(s)`` the curve's finite reports linearly interpolated at step ``s``, the window
    ``(a, b)`` and ``sign`` = +1 when minimising, -1 when maximising::

        a < b:   speed = sign * (v(a) - v(b)) / (b - a)
        a == b:  speed = -sign * v(b)

    i.e. the improvement per step over the window, or (a one-step window, which
    ``early_steps == 1`` gives) how good the curve already is at that step. There is no
    division by the curve's own level (a first value near 0, e.g. an accuracy starting at 0,
    would inflate it without bound): curves of one study share a scale, and only their
    order matters to the ranking.

    Args:
        steps: Report steps.
        values: Reported values; non-finite ones are ignored.
        early_steps: Reports that define early speed, >= 1; used only to derive the window
            from this one curve when ``window`` is ``None``.
        direction: The study's direction.
        window: The common ``(start, stop)`` of the curves being compared (see
            :func:`speed_window`); ``None`` for this curve's own first and
            ``early_steps``-th finite reports.

    Returns:
        The speed, or ``None`` when the curve's finite reports do not span the window (or,
        with ``window=None``, are fewer than ``early_steps``): a neutral speed, never one
        measured over a shorter range.
    """
    if window is None:
        window = speed_window([(steps, values)], early_steps)
        if window is None:
            return None
    else:
        check_int("early_steps", early_steps, 1)
    a = check_float("window[0]", window[0])
    b = check_float("window[1]", window[1])
    if b < a:
        raise ValueError(f"`window` must be (start, stop) with start <= stop, got {window}.")
    x, y = clean_curve(steps, values)
    if y.size == 0 or x[0] > a or x[-1] < b:
        return None
    sign = 1.0 if direction == StudyDirection.MINIMIZE else -1.0
    end = float(np.interp(b, x, y))
    if a == b:
        return -sign * end
    return sign * (float(np.interp(a, x, y)) - end) / (b - a)


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
