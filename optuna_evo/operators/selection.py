"""Selection operators: ranking finished trials, survival and mating selection.

A selection operator answers two questions for a GA:

* ``survivors(ranked, population_size)`` — which finished trials form the parent population of
  the next generation (stored by :class:`~optuna.samplers.BaseGASampler`);
* ``pick(ranked, n, rng)`` — which of those survivors become the parents of one child.

``ranked`` is always best-first, as returned by :func:`rank_trials`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from collections.abc import Sequence
import math

import numpy as np
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_evo._validation import check_float
from optuna_evo._validation import check_int


def _pruned_key(trial: FrozenTrial, sign: float) -> tuple[float, float]:
    # Further-trained pruned trials rank first, then by their last report.
    if not trial.intermediate_values:
        return (0.0, math.inf)
    step = max(trial.intermediate_values)
    value = trial.intermediate_values[step]
    return (-float(step), sign * value if math.isfinite(value) else math.inf)


def _value(trial: FrozenTrial) -> float:
    assert trial.value is not None  # Only COMPLETE trials with a value are scored.
    return trial.value


def constraint_violation(trial: FrozenTrial) -> float:
    """Total violation of a trial's constraints: 0.0 when it is feasible.

    Constraints are those set with ``trial.set_constraint(key, value)`` (Optuna 5) or stored
    by a sampler's ``constraints_func`` (the older list form); a trial is feasible when every
    value is <= 0, as for ``study.best_trial``, and a trial without constraints is feasible.
    The violation is the sum of the positive values, the measure of NSGA-II's constrained
    domination; a NaN value counts as an infinite violation.

    Args:
        trial: Any trial.

    Returns:
        The sum of the positive constraint values (``inf`` if one is NaN).
    """
    total = 0.0
    for v in constraint_values(trial):
        if math.isnan(v):
            return math.inf
        total += max(v, 0.0)
    return total


def constraint_values(trial: FrozenTrial) -> list[float]:
    """A trial's constraint values, of both stored forms (empty without constraints).

    See :func:`constraint_violation`. Read from the system attrs directly, the same on every
    supported Optuna version.
    """
    attrs = trial.system_attrs
    # As Optuna reads them: a ``constraints:<key>`` value replaces the list's entry ``<key>``.
    values = {str(i): v for i, v in enumerate(attrs.get("constraints") or [])}
    values.update(
        (k[len("constraints:") :], v) for k, v in attrs.items() if k.startswith("constraints:")
    )
    return [float(v) for v in values.values()]


def rank_trials(
    trials: Sequence[FrozenTrial],
    direction: StudyDirection,
    fitness: Callable[[FrozenTrial], float] | None = None,
) -> list[FrozenTrial]:
    """Rank finished trials best-first.

    COMPLETE trials come first, ordered by value (or ``fitness``) in the study's direction;
    PRUNED trials
    follow (those that reached a later step first, then by their last intermediate value).
    In a constrained study (``trial.set_constraint``), feasible trials rank before infeasible
    ones within each group, and infeasible ones by their :func:`constraint_violation` first.
    Trials in any other state, and COMPLETE trials whose value is NaN, are dropped: they must
    never become parents. Ties keep trial order, so ranking is deterministic.

    Args:
        trials: Candidate trials.
        direction: The study's (single) optimization direction.
        fitness: Score of a COMPLETE trial to rank by instead of its value (e.g. a
            complexity-penalised value); better in the same direction as the value.

    Returns:
        A new list of trials, best first.
    """
    sign = -1.0 if direction == StudyDirection.MAXIMIZE else 1.0
    complete = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None and not math.isnan(t.value)
    ]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    score = fitness or _value
    # By object: trials built with optuna.create_trial all have number -1.
    violation = {id(t): constraint_violation(t) for t in complete + pruned}
    complete.sort(key=lambda t: (violation[id(t)], sign * score(t), t.number))
    pruned.sort(key=lambda t: (violation[id(t)], *_pruned_key(t, sign), t.number))
    return complete + pruned


def select_elites(ranked: Sequence[FrozenTrial], n_elites: int) -> list[FrozenTrial]:
    """Return the ``n_elites`` best trials of a best-first ranking."""
    return list(ranked[:n_elites])


class BaseSelection(abc.ABC):
    """Survival plus mating selection over a best-first ranking."""

    @abc.abstractmethod
    def survivors(self, ranked: Sequence[FrozenTrial], population_size: int) -> list[FrozenTrial]:
        """Return the trials that form the next parent population."""

    @abc.abstractmethod
    def pick(self, ranked: Sequence[FrozenTrial], n: int, rng: np.random.RandomState) -> list[int]:
        """Return the indices (into ``ranked``) of ``n`` parents for one child."""

    def n_survivors(self, population_size: int) -> int:
        """How many trials :meth:`survivors` keeps at most (bounds the number of elites).

        The default, ``population_size``, suits a selection that keeps the whole population.
        """
        return population_size

    def validate(self, population_size: int) -> None:  # noqa: B027 - optional hook
        """Raise ``ValueError`` if this operator cannot work with ``population_size``."""

    def use_generations_of(self, key: str) -> None:  # noqa: B027 - optional hook
        """Learn whose generations the operator ranks: the sampler's ``{Class}:generation`` key.

        Generations are numbered per sampler class; an operator that reads them (trust ages
        trials by generation) counts other classes' trials as generation 0, as the sampler
        does. The sampler calls this once; operators that ignore generations need nothing.
        """


class TruncationSelection(BaseSelection):
    """Keep the best ``fraction`` of the population; parents drawn uniformly from them.

    This is the GA of the "Evolving hyperparameters" paper: the top half survives and any two
    survivors may mate.

    Args:
        fraction: Share of ``population_size`` that survives, in (0, 1].
    """

    def __init__(self, fraction: float = 0.5) -> None:
        self.fraction = check_float("survival_fraction", fraction, 0, 1, low_open=True)

    def n_survivors(self, population_size: int) -> int:
        """Number of survivors for a population of ``population_size``."""
        return int(math.floor(self.fraction * population_size + 1e-9))

    def validate(self, population_size: int) -> None:
        """Refuse a fraction that leaves no parent."""
        if self.n_survivors(population_size) < 1:
            raise ValueError(
                f"`survival_fraction`={self.fraction} leaves no parent for population_size="
                f"{population_size}; it must be at least 1/population_size."
            )

    def survivors(self, ranked: Sequence[FrozenTrial], population_size: int) -> list[FrozenTrial]:
        """Return the best ``floor(fraction * population_size)`` trials."""
        return list(ranked[: self.n_survivors(population_size)])

    def pick(self, ranked: Sequence[FrozenTrial], n: int, rng: np.random.RandomState) -> list[int]:
        """Draw ``n`` distinct parents uniformly (with replacement only if too few)."""
        return [int(i) for i in rng.choice(len(ranked), size=n, replace=len(ranked) < n)]


class TournamentSelection(BaseSelection):
    """Keep the best ``population_size`` trials; each parent wins a tournament of ``k``.

    Args:
        k: Tournament size, at least 1 (1 means uniform random mating).
    """

    def __init__(self, k: int = 3) -> None:
        self.k = check_int("tournament_size", k, 1)

    def validate(self, population_size: int) -> None:
        """Refuse a tournament larger than the population."""
        if self.k > population_size:
            raise ValueError(
                f"`tournament_size`={self.k} must be <= population_size={population_size}."
            )

    def survivors(self, ranked: Sequence[FrozenTrial], population_size: int) -> list[FrozenTrial]:
        """Return the best ``population_size`` trials."""
        return list(ranked[:population_size])

    def pick(self, ranked: Sequence[FrozenTrial], n: int, rng: np.random.RandomState) -> list[int]:
        """Run ``n`` tournaments; the lowest index (best rank) of each draw wins."""
        k = min(self.k, len(ranked))
        return [int(rng.choice(len(ranked), size=k, replace=False).min()) for _ in range(n)]


def make_selection(
    name: str | BaseSelection, survival_fraction: float, tournament_size: int
) -> BaseSelection:
    """Build a selection operator from its name (``"truncation"`` or ``"tournament"``).

    Both settings are checked whichever operator is chosen: a typo does not wait for a switch.
    """
    named: dict[str, BaseSelection] = {
        "truncation": TruncationSelection(survival_fraction),
        "tournament": TournamentSelection(tournament_size),
    }
    if isinstance(name, BaseSelection):
        return name
    if isinstance(name, str) and name in named:
        return named[name]
    raise ValueError(
        f"`selection` must be 'truncation', 'tournament' or a BaseSelection, got {name!r}."
    )
