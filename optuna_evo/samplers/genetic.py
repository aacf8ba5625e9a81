"""GeneticSampler: a genetic algorithm over any Optuna search space."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial

from optuna_evo._experimental import experimental_class
from optuna_evo._validation import check_int
from optuna_evo._validation import check_probability
from optuna_evo.architecture import ArchitectureSpace
from optuna_evo.operators.crossover import BaseCrossover
from optuna_evo.operators.crossover import make_crossover
from optuna_evo.operators.mutation import BaseMutation
from optuna_evo.operators.mutation import make_mutation
from optuna_evo.operators.selection import BaseSelection
from optuna_evo.operators.selection import make_selection
from optuna_evo.operators.selection import rank_trials
from optuna_evo.samplers._assist import PredictorAssist
from optuna_evo.samplers._population import Lineage
from optuna_evo.samplers._population import Plan
from optuna_evo.samplers._population import PopulationSampler


@experimental_class("0.1.0")
class GeneticSampler(PopulationSampler):
    """A genetic algorithm over any Optuna search space.

    The defaults reproduce the GA of the "Evolving hyperparameters" paper: a population of
    parameter sets, the top half survives, children come from uniform crossover of two
    survivors, and each parameter is reset to a fresh random value with probability 0.2.

    Each generation's parent population is chosen from the finished trials of the previous
    generation *and* its parent population ((μ+λ) survival), so the best configuration found so
    far is never lost (with ``n_elites > 0``, an elite's re-evaluation stands in for the trial
    it copied). The first ``n_elites`` trials of a generation are elites: exact copies of the
    best parents (useful when the objective is noisy or continues training from a
    checkpoint, see :func:`optuna_evo.parents`).

    Works with float (log, step), int (log, step) and categorical parameters, conditional
    (define-by-run) parameters, minimize and maximize, pruning (PRUNED trials rank below all
    COMPLETE ones), constraints (``trial.set_constraint``: feasible trials rank first, see
    :func:`~optuna_evo.operators.rank_trials`), :meth:`~optuna.study.Study.enqueue_trial`, and
    several processes sharing one storage. Multi-objective studies raise ``ValueError``.
    Lineage is stored as described in :mod:`optuna_evo.samplers._population`.

    Given an ``architecture_space`` (the mapping the objective passes to
    :func:`optuna_evo.suggest_architecture`), the ``arch_*`` params are evolved as one
    architecture instead of one by one: a child gets the one-point crossover of its parents'
    architectures (:func:`~optuna_evo.operators.crossover.architecture_crossover`) and a
    child or mutant then undergoes one architecture mutation with probability
    ``mutation_prob``. Generation 0 samples them as ordinary parameters.

    With ``assist`` (:class:`~optuna_evo.samplers.PredictorAssist`) a surrogate scores
    several candidate children before one is trained, a duplicate cache keeps any
    configuration from being evaluated twice (across workers) and a stability guard
    resamples children predicted much worse than their parents.

    Example:

        .. code-block:: python

            import optuna
            from optuna_evo import GeneticSampler

            def objective(trial):
                x = trial.suggest_float("x", -5, 5)
                return x**2

            study = optuna.create_study(sampler=GeneticSampler(population_size=10, seed=0))
            study.optimize(objective, n_trials=100)

    Args:
        population_size: Finished trials per generation, >= 2.
        selection: ``"truncation"`` (keep the best ``survival_fraction``, mate uniformly),
            ``"tournament"`` (keep the best ``population_size``, mate by tournaments of
            ``tournament_size``) or a :class:`~optuna_evo.operators.BaseSelection`.
        survival_fraction: Share of the population that survives truncation, in (0, 1];
            it must leave at least one parent and at least ``n_elites``.
        tournament_size: Tournament size for ``selection="tournament"``, 1..population_size.
        crossover: ``"uniform"``, ``"blend"`` (BLX-α, log-scale aware) or a
            :class:`~optuna_evo.operators.BaseCrossover`.
        crossover_prob: Probability that a child comes from two parents rather than one
            (a "mutant"), in [0, 1]; a draw of the same parent twice (possible with
            tournament selection) also gives a mutant.
        swapping_prob: Uniform crossover's probability of taking the second parent's value.
        blend_alpha: BLX-α's widening factor, >= 0.
        mutation: ``"reset"`` (fresh uniform value), ``"gaussian"`` or a
            :class:`~optuna_evo.operators.BaseMutation`.
        mutation_prob: Probability that each parameter of a child mutates, in [0, 1].
        mutation_sigma: Gaussian mutation's σ as a fraction of the parameter range, > 0.
        n_elites: Number of best parents copied unchanged into each generation,
            0..population_size-1.
        architecture_space: Architecture search space whose ``arch_*`` params are evolved
            as a whole (see above), or ``None``.
        assist: Predictor-assisted evolution options, or ``None``.
        seed: Seed for reproducible runs, in [0, 2**32 - 1], or ``None``.
        mirror_user_attrs: Mirror generation, role and parents into user attrs (visible in
            optuna-dashboard).
    """

    def __init__(
        self,
        population_size: int = 10,
        selection: str | BaseSelection = "truncation",
        survival_fraction: float = 0.5,
        tournament_size: int = 3,
        crossover: str | BaseCrossover = "uniform",
        crossover_prob: float = 1.0,
        swapping_prob: float = 0.5,
        blend_alpha: float = 0.5,
        mutation: str | BaseMutation = "reset",
        mutation_prob: float = 0.2,
        mutation_sigma: float = 0.1,
        n_elites: int = 0,
        architecture_space: Mapping[str, Any] | None = None,
        assist: PredictorAssist | None = None,
        seed: int | None = None,
        mirror_user_attrs: bool = True,
    ) -> None:
        space = None
        if architecture_space is not None:
            try:
                space = ArchitectureSpace.from_dict(architecture_space)
            except ValueError as e:
                raise ValueError(f"`architecture_space` is invalid: {e}") from None
        super().__init__(
            population_size,
            seed=seed,
            mirror_user_attrs=mirror_user_attrs,
            assist=assist,
            architecture_space=space,
        )
        self._crossover_prob = check_probability("crossover_prob", crossover_prob)
        self._mutation_prob = check_probability("mutation_prob", mutation_prob)
        population_size = int(population_size)  # Checked by PopulationSampler.
        self._selection = make_selection(selection, survival_fraction, tournament_size)
        self._selection.validate(population_size)
        self._selection.use_generations_of(self._get_generation_key())
        self._crossover = make_crossover(crossover, swapping_prob, blend_alpha)
        self._mutation = make_mutation(mutation, mutation_sigma)
        n_elites = check_int("n_elites", n_elites, 0, population_size - 1)
        n_survivors = self._selection.n_survivors(population_size)
        if n_elites > n_survivors:
            raise ValueError(
                f"`n_elites`={n_elites} exceeds the {n_survivors} survivors per generation; "
                "raise `survival_fraction` or lower `n_elites`."
            )
        self._n_elites = n_elites

    def select_parent(self, study: Study, generation: int) -> list[FrozenTrial]:
        """Choose generation ``generation``'s parents from the previous generation and its
        parents, ranked best-first."""
        candidates = self.selection_candidates(study, generation)
        ranked = rank_trials(candidates, study.direction)
        assert self._population_size is not None
        return self._selection.survivors(ranked, self._population_size)

    def make_child(
        self,
        study: Study,
        generation: int,
        slot: int,
        parent_population: list[FrozenTrial],
        rng: np.random.RandomState,
    ) -> tuple[str, list[FrozenTrial]]:
        """Elites for the first ``n_elites`` slots, else two mates (or one, a mutant)."""
        ranked = rank_trials(parent_population, study.direction)
        if slot < min(self._n_elites, len(ranked)):
            return "elite", [ranked[slot]]
        mates = [ranked[i] for i in self._selection.pick(ranked, 2, rng)]
        if mates[0]._trial_id != mates[1]._trial_id and rng.rand() < self._crossover_prob:
            return "child", mates
        return "mutant", mates[:1]

    def annotate(
        self,
        study: Study,
        info: Lineage,
        parents: list[FrozenTrial],
        parent_population: list[FrozenTrial],
        rng: np.random.RandomState,
    ) -> dict[str, Any]:
        """With an ``architecture_space``: the child's architecture from its parents'."""
        if self._arch_space is None or info.role not in ("child", "mutant"):
            return {}
        return self.inherit_architecture(info, parents, rng, self._mutation_prob) or {}

    def mutate_value(self, distribution: BaseDistribution, value: Any, rng: Any) -> Any:
        """The sampler's mutation operator."""
        return self._mutation(distribution, value, rng)

    def vary_param(self, plan: Plan, distribution: BaseDistribution, values: Sequence[Any]) -> Any:
        """Elites copy; children cross over; children and mutants then mutate."""
        role, rng = plan.lineage.role, plan.rng
        if role == "elite":
            return values[0]
        value = self._crossover(distribution, values, rng) if role == "child" else values[0]
        if rng.rand() < self._mutation_prob:
            value = self._mutation(distribution, value, rng)
        return value
