"""MAGESampler: agents that evolve architecture, hyperparameters and weights together."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import math
import numbers
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.study import Study
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_evo._experimental import experimental_class
from optuna_evo._validation import check_choice
from optuna_evo._validation import check_float
from optuna_evo._validation import check_int
from optuna_evo._validation import check_probability
from optuna_evo.architecture import ARCHITECTURE_KEY
from optuna_evo.architecture import ArchitectureSpace
from optuna_evo.operators.crossover import UniformCrossover
from optuna_evo.operators.mutation import GaussianMutation
from optuna_evo.operators.selection import TournamentSelection
from optuna_evo.operators.selection import rank_trials
from optuna_evo.samplers._assist import PredictorAssist
from optuna_evo.samplers._population import ARCH_CROSSOVER_KEY
from optuna_evo.samplers._population import ARCH_MUTATION_KEY
from optuna_evo.samplers._population import WEIGHT_NOISE_KEY
from optuna_evo.samplers._population import Lineage
from optuna_evo.samplers._population import Plan
from optuna_evo.samplers._population import PopulationSampler

MUTATION_PROB_KEY = "optuna_evo:mutation_prob"
MODES = ("single", "multi")


@experimental_class("0.1.0")
class MAGESampler(PopulationSampler):
    """A population of agents evolving architecture, hyperparameters and weights together.

    One generation is one MAGE "master epoch" and each trial is one agent's local training
    for it. Generation 0 samples agents at random. Afterwards the ``n_elites`` fittest agents
    go on unmutated (role ``elite``, same params and architecture, parent link to
    themselves' previous trial) and every other agent is a copy of a parent chosen by a
    tournament on fitness, then mutated (role ``mutant``). With ``crossover_prob`` > 0 an agent
    is instead, with that probability, the crossover of two tournament winners (role
    ``child``, the fitter parent first): each hyperparameter from either parent with equal
    probability and, in multi mode, a one-point crossover of the two architectures
    (:func:`~optuna_evo.operators.crossover.architecture_crossover`), then the same mutation.
    Children continue training from their (first) parent's weights when the objective calls
    :func:`optuna_evo.checkpoint.load_parent` (it adds ``weight_noise`` to a mutant's or
    child's inherited weights; elites get none).

    Rank-scaled mutation: a child of the parent ranked ``r`` (0 = fittest) out of ``n``
    mutates each hyperparameter with probability
    ``mutation_prob * (best + (worst - best) * r / (n - 1))`` where
    ``rank_factor = (worst, best)``; stronger agents mutate less. Numeric hyperparameters get
    Gaussian noise (``mutation_sigma`` of their range, in log space for log params);
    categorical ones are redrawn.

    Architectures (see :func:`optuna_evo.suggest_architecture`): in ``"single"`` mode every
    agent uses ``search_space["layers"][0]`` with ``search_space["activations"][0]``; in
    ``"multi"`` mode generation 0 draws from ``layers`` × ``activations`` and a mutant's
    architecture mutates with the same rank-scaled probability by one of: add a layer, remove
    a layer, change a width, change the activation (and, where the space has these genes,
    change a layer's block type or toggle a skip edge ``k -> k + 2``), within the bounds of
    :class:`~optuna_evo.architecture.ArchitectureSpace`.

    Predictor assistance (``assist``, see :class:`~optuna_evo.samplers.PredictorAssist`):
    a surrogate scores several candidate agents before one is trained, a duplicate cache
    keeps any configuration from being trained twice (across workers) and a stability guard
    resamples agents predicted much worse than their parent. Elites are never changed by it.

    Fitness = objective value + λ · complexity for minimisation (− for maximisation), where
    λ = ``complexity_weight`` and complexity = ``complexity_fn(trial)`` (default: the
    ``n_params`` user attr the objective module sets) divided by the largest complexity among
    the agents being ranked, so it lies in [0, 1]. In a constrained study
    (``trial.set_constraint``) feasible agents rank before infeasible ones whatever their
    fitness (see :func:`~optuna_evo.operators.rank_trials`).

    Args:
        search_mode: ``"single"`` (fixed architecture) or ``"multi"``.
        search_space: ``{"layers": [[784, 128, 10], ...], "activations": ["relu", ...]}`` and
            optional bounds (see :class:`~optuna_evo.architecture.ArchitectureSpace`). May be
            ``None`` when the objective evolves hyperparameters only.
        population_size: Agents per generation, >= 2.
        n_elites: Agents carried over unmutated, 0..population_size-1.
        mutation_prob: Base mutation probability per hyperparameter, in [0, 1].
        rank_factor: ``(worst, best)`` multipliers of ``mutation_prob``, each in (0, 1].
        complexity_weight: λ >= 0.
        complexity_fn: Complexity of a finished trial; default the ``n_params`` user attr.
        weight_noise: Std of the noise a mutant or child adds to inherited weights, >= 0.
        mutation_sigma: Gaussian mutation σ as a fraction of a parameter's range, > 0.
        tournament_size: Tournament size for choosing parents, 1..population_size.
        crossover_prob: Probability that a non-elite agent is a crossover of two parents,
            in [0, 1] (0 keeps MAGE's mutation-only scheme); two tournaments that pick the
            same parent give a mutant.
        assist: Predictor-assisted evolution options, or ``None``.
        seed: Seed for reproducible runs, in [0, 2**32 - 1], or ``None``.
        mirror_user_attrs: Mirror lineage and architecture into user attrs (dashboard).
    """

    EXTRA_KEYS = (
        ARCHITECTURE_KEY,
        MUTATION_PROB_KEY,
        WEIGHT_NOISE_KEY,
        ARCH_MUTATION_KEY,
        ARCH_CROSSOVER_KEY,
    )
    MIRRORED_KEYS = (ARCHITECTURE_KEY, ARCH_MUTATION_KEY)

    def __init__(
        self,
        search_mode: str = "single",
        search_space: Mapping[str, Any] | None = None,
        population_size: int = 10,
        n_elites: int = 1,
        mutation_prob: float = 0.5,
        rank_factor: tuple[float, float] = (1.0, 0.3),
        complexity_weight: float = 0.0,
        complexity_fn: Callable[[FrozenTrial], float] | None = None,
        weight_noise: float = 0.0,
        mutation_sigma: float = 0.2,
        tournament_size: int = 2,
        crossover_prob: float = 0.0,
        assist: PredictorAssist | None = None,
        seed: int | None = None,
        mirror_user_attrs: bool = True,
    ) -> None:
        check_choice("search_mode", search_mode, MODES)
        if search_mode == "multi" and search_space is None:
            raise ValueError("`search_space` is required in 'multi' mode.")
        try:
            space = None if search_space is None else ArchitectureSpace.from_dict(search_space)
        except ValueError as e:
            raise ValueError(f"`search_space` is invalid: {e}") from None
        super().__init__(
            population_size,
            seed=seed,
            mirror_user_attrs=mirror_user_attrs,
            assist=assist,
            architecture_space=space,
            evolve_architecture=search_mode == "multi",
        )
        self._space = space
        self._crossover_prob = check_probability("crossover_prob", crossover_prob)
        self._crossover = UniformCrossover(0.5)
        population_size = int(population_size)  # Checked by PopulationSampler.
        self._n_elites = check_int("n_elites", n_elites, 0, population_size - 1)
        self._mutation_prob = check_probability("mutation_prob", mutation_prob)
        if isinstance(rank_factor, np.ndarray):
            rank_factor = tuple(rank_factor.tolist())
        pair = isinstance(rank_factor, Sequence) and not isinstance(rank_factor, str)
        if not pair or len(rank_factor) != 2:
            raise ValueError(
                f"`rank_factor` must be two numbers (worst, best) in (0, 1], got {rank_factor!r}."
            )
        worst, best = (
            check_float(f"rank_factor[{i}]", f, 0, 1, low_open=True)
            for i, f in enumerate(rank_factor)
        )
        self._rank_factor = (worst, best)
        self._complexity_weight = check_float("complexity_weight", complexity_weight, 0)
        self._weight_noise = check_float("weight_noise", weight_noise, 0)
        self._selection = TournamentSelection(tournament_size)
        self._selection.validate(population_size)
        self._mutation = GaussianMutation(mutation_sigma)
        self._mode = search_mode
        if complexity_fn is not None and not callable(complexity_fn):
            raise ValueError(
                "`complexity_fn` must be None or a callable fn(trial) -> float, "
                f"got {complexity_fn!r}."
            )
        self._complexity_fn = complexity_fn or _n_params

    # -- fitness and selection --------------------------------------------------------------

    def rank(self, trials: Sequence[FrozenTrial], direction: StudyDirection) -> list[FrozenTrial]:
        """Rank trials best-first by complexity-penalised fitness."""
        if self._complexity_weight == 0.0:
            return rank_trials(trials, direction)
        # Only the COMPLETE trials that rank_trials scores: a pruned trial may lack what
        # complexity_fn reads, and must not set the scale.
        sizes = {
            t.number: self._complexity(t)
            for t in trials
            if t.state == TrialState.COMPLETE and t.value is not None
        }
        scale = max(sizes.values(), default=0.0)
        sign = -1.0 if direction == StudyDirection.MAXIMIZE else 1.0
        lam = self._complexity_weight / scale if scale > 0 else 0.0

        def fitness(t: FrozenTrial) -> float:
            return float(t.value) + sign * lam * sizes[t.number]  # type: ignore[arg-type]

        return rank_trials(trials, direction, fitness)

    def _complexity(self, trial: FrozenTrial) -> float:
        size = self._complexity_fn(trial)
        if isinstance(size, bool) or not isinstance(size, numbers.Real) or not math.isfinite(size):
            raise ValueError(
                f"`complexity_fn` must return a finite number, got {size!r} for trial "
                f"{trial.number}."
            )
        return float(size)

    def mutation_prob_for_rank(self, rank: int, n: int) -> float:
        """Rank-scaled mutation probability of a child of the parent ranked ``rank`` of ``n``."""
        worst, best = self._rank_factor
        share = rank / (n - 1) if n > 1 else 0.0
        return self._mutation_prob * (best + (worst - best) * share)

    def select_parent(self, study: Study, generation: int) -> list[FrozenTrial]:
        """The fittest ``population_size`` agents of the last generation and its parents."""
        candidates = self.selection_candidates(study, generation)
        assert self._population_size is not None
        return self.rank(candidates, study.direction)[: self._population_size]

    def make_child(
        self,
        study: Study,
        generation: int,
        slot: int,
        parent_population: list[FrozenTrial],
        rng: np.random.RandomState,
    ) -> tuple[str, list[FrozenTrial]]:
        """Elites for the first ``n_elites`` slots; otherwise one tournament-chosen parent
        (or two, fitter first, with ``crossover_prob``)."""
        ranked = self.rank(parent_population, study.direction)
        if slot < min(self._n_elites, len(ranked)):
            return "elite", [ranked[slot]]
        (index,) = self._selection.pick(ranked, 1, rng)
        if self._crossover_prob > 0.0 and rng.rand() < self._crossover_prob:
            (other,) = self._selection.pick(ranked, 1, rng)
            if other != index:
                return "child", [ranked[min(index, other)], ranked[max(index, other)]]
        return "mutant", [ranked[index]]

    def annotate(
        self,
        study: Study,
        info: Lineage,
        parents: list[FrozenTrial],
        parent_population: list[FrozenTrial],
        rng: np.random.RandomState,
    ) -> dict[str, Any]:
        """Decide the agent's mutation probability, weight noise and architecture."""
        extras: dict[str, Any] = {}
        varied = info.role in ("mutant", "child")
        if varied:
            ranked = self.rank(parent_population, study.direction)
            ids = [t._trial_id for t in ranked]
            rank = ids.index(parents[0]._trial_id) if parents[0]._trial_id in ids else len(ids) - 1
            prob = self.mutation_prob_for_rank(rank, len(ids))
        else:
            prob = 0.0
        extras[MUTATION_PROB_KEY] = prob
        extras[WEIGHT_NOISE_KEY] = self._weight_noise if varied else 0.0
        if self._space is None:
            return extras
        if self._mode == "single":
            extras[ARCHITECTURE_KEY] = self._space.fixed().to_dict()
            return extras
        inherited = self.inherit_architecture(info, parents, rng, prob)
        if inherited is None:
            extras[ARCHITECTURE_KEY] = self._space.sample(rng).to_dict()
        else:
            extras.update(inherited)
        return extras

    # -- sampling -----------------------------------------------------------------------

    def mutate_value(self, distribution: BaseDistribution, value: Any, rng: Any) -> Any:
        """Gaussian mutation (categoricals redrawn), as for any mutant."""
        return self._mutation(distribution, value, rng)

    def vary_param(self, plan: Plan, distribution: BaseDistribution, values: Sequence[Any]) -> Any:
        """Elites copy; children take either parent's value; children and mutants then mutate
        each parameter with their rank-scaled probability."""
        value = values[0]
        if plan.lineage.role == "child":
            value = self._crossover(distribution, values, plan.rng)
        if plan.lineage.role in ("mutant", "child"):
            if plan.rng.rand() < float(plan.extras.get(MUTATION_PROB_KEY, 0.0)):
                value = self._mutation(distribution, value, plan.rng)
        return value


def _n_params(trial: FrozenTrial) -> float:
    return float(trial.user_attrs.get("n_params", 0.0))
