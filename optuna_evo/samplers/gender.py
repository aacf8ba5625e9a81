"""GenderSampler: early-speed males paired with evolved learning-curve predictor females."""

from __future__ import annotations

from collections.abc import Sequence
import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.study import Study
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_evo._experimental import experimental_class
from optuna_evo._logging import get_logger
from optuna_evo._validation import check_float
from optuna_evo._validation import check_int
from optuna_evo._validation import check_probability
from optuna_evo.operators.crossover import BaseCrossover
from optuna_evo.operators.crossover import BlendCrossover
from optuna_evo.operators.crossover import make_crossover
from optuna_evo.operators.mutation import BaseMutation
from optuna_evo.operators.mutation import GaussianMutation
from optuna_evo.operators.mutation import make_mutation
from optuna_evo.operators.selection import constraint_violation
from optuna_evo.predictors.female import DEFAULT_FEMALE
from optuna_evo.predictors.female import FemaleGenome
from optuna_evo.predictors.female import MaleCurve
from optuna_evo.predictors.female import average_ranks
from optuna_evo.predictors.population import FEMALE_KEY
from optuna_evo.predictors.population import FEMALE_PARENTS_KEY
from optuna_evo.predictors.population import FemalePopulation
from optuna_evo.predictors.population import RankedFemale
from optuna_evo.predictors.population import early_speed
from optuna_evo.predictors.population import females_key
from optuna_evo.predictors.population import final_step
from optuna_evo.predictors.population import male_curves
from optuna_evo.predictors.population import rank_females
from optuna_evo.predictors.population import speed_window
from optuna_evo.predictors.population import trial_curve
from optuna_evo.samplers._population import Lineage
from optuna_evo.samplers._population import Plan
from optuna_evo.samplers._population import PopulationSampler
from optuna_evo.samplers._population import settle_study_attr

_logger = get_logger(__name__)


@experimental_class("0.1.0")
class GenderSampler(PopulationSampler):
    """Male/female pairing: early-speed males and evolved learning-curve predictor females.

    The gender-based NAS scheme as an Optuna sampler. *Males* are trials (configurations);
    *females* are small learning-curve predictors (:class:`~optuna_evo.predictors.FemaleGenome`:
    a mixture of pow3, exponential, log-power, last value and last value + slope fits with an
    evolved window, horizon and bias) that forecast a male's final value from its early curve.
    Every trial carries one female, so each offspring is a new male *and* a new female.

    Each generation:

    1. **Females** are scored on finished (COMPLETE) males of earlier generations, seeing only
       their first ``early_steps`` reports: fitness = Spearman ρ(predicted, actual final) −
       ``error_weight`` · mean |error| / std(actual finals). The candidates are the females
       carried by the previous generation's trials, the previous top females ((μ+λ)) and the
       built-in :data:`~optuna_evo.predictors.DEFAULT_FEMALE`; the best ``n_top_females`` are
       stored in the study (``optuna_evo:females:{g}``).
    2. **Males** of the previous generation and its parents are ranked by
       ``(1 - speed_weight) · rank(final) + speed_weight · rank(early speed)``, where *final*
       is the objective value of a COMPLETE trial and the best female's prediction for a
       PRUNED one (extrapolated to the last step COMPLETE trials reach). A PRUNED trial whose
       last report is NaN or infinite diverged: it is not ranked, so it never becomes a
       parent. *Early speed* is the improvement per step over one step range ``[a, b]``
       shared by all the males ranked together::

           speed = sign · (v(a) − v(b)) / (b − a)

       (``v(s)`` a male's finite reports linearly interpolated at step ``s``; ``sign`` +1
       when minimising, −1 when maximising; with ``early_steps == 1``, ``a == b`` and the
       speed is ``−sign · v(b)``). Of the males with at least ``early_steps`` finite
       reports, ``b`` is the latest step of an ``early_steps``-th report and ``a`` the latest
       step of a first report (see :func:`~optuna_evo.predictors.population.speed_window`),
       so reports on different step grids are compared over the same steps. A male whose
       reports do not span ``[a, b]`` (pruned or stopped before ``b``, or no reports at all)
       gets a neutral speed rank: the middle of the ranking, so it neither gains nor loses
       by its speed, and objectives that never report still work (the ranking is then by
       value). In a constrained study (``trial.set_constraint``) feasible males rank before
       infeasible ones, and those by their total violation. The best ``n_top_males`` are the
       parent population.
    3. **Offspring**: two top males chosen uniformly (role ``child``: crossover then
       per-parameter mutation; role ``mutant`` when only one male is available) paired with
       two top females chosen uniformly (BLX-α crossover then Gaussian mutation of the
       genes, the shared operators of :mod:`optuna_evo.operators`).

    Generation 0 samples males uniformly and gives each a random female.

    Storage (besides the lineage of :mod:`optuna_evo.samplers._population`, whose ``parents``
    are the two male parents): trial system attrs ``optuna_evo:female`` (the genome the trial
    carries) and ``optuna_evo:female_parents`` (trial numbers of its female parents, ``None``
    for the built-in default), and study system attr ``optuna_evo:females:{g}`` (see
    :mod:`optuna_evo.predictors.population`). With ``mirror_user_attrs`` the female parents
    are mirrored into the user attr ``optuna_evo:female_parents``.

    Pair it with :class:`~optuna_evo.pruners.LearningCurvePruner`, which then prunes with the
    best stored female. The objective should report intermediate values (``trial.report``).
    Multi-objective studies raise ``ValueError``.

    Example:

        .. code-block:: python

            import optuna
            from optuna_evo.pruners import LearningCurvePruner
            from optuna_evo.samplers.gender import GenderSampler

            def objective(trial):
                lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
                loss = 1.0
                for step in range(20):
                    loss = loss * (1 - lr) + 0.01 * abs(lr - 0.1)
                    trial.report(loss, step)
                    if trial.should_prune():
                        raise optuna.TrialPruned()
                return loss

            study = optuna.create_study(
                sampler=GenderSampler(population_size=10, early_steps=5, seed=0),
                pruner=LearningCurvePruner(),
            )
            study.optimize(objective, n_trials=60)

    Args:
        population_size: Finished trials per generation, >= 2.
        n_top_males: Males kept as parents each generation, 1..population_size; ``None``
            (default) for ``min(4, population_size)``.
        n_top_females: Females kept as parents each generation, 1..population_size; ``None``
            (default) for ``min(4, population_size)``.
        early_steps: Reports that define a male's early speed and that a female sees, >= 1.
        speed_weight: Weight of early speed against final value when ranking males, in [0, 1].
        crossover: Male crossover: ``"uniform"``, ``"blend"`` or a
            :class:`~optuna_evo.operators.BaseCrossover`.
        swapping_prob: Uniform crossover's probability of taking the second parent's value.
        blend_alpha: BLX-α's widening factor for ``crossover="blend"``, >= 0.
        mutation: Male mutation: ``"gaussian"``, ``"reset"`` or a
            :class:`~optuna_evo.operators.BaseMutation`.
        mutation_prob: Probability that each parameter of an offspring male mutates, [0, 1].
        mutation_sigma: Gaussian mutation σ as a fraction of a parameter's range, > 0.
        female_mutation_prob: Probability that each gene of an offspring female mutates.
        female_mutation_sigma: Gaussian σ of a female gene as a fraction of its range, > 0.
        error_weight: Weight of the normalised error in a female's fitness, >= 0.
        max_scoring_males: Females are scored on at most this many most recent finished
            males (bounds the cost per generation), >= 3.
        seed: Seed for reproducible runs, in [0, 2**32 - 1], or ``None``.
        mirror_user_attrs: Mirror lineage and female parents into user attrs (dashboard).
    """

    EXTRA_KEYS = (FEMALE_KEY, FEMALE_PARENTS_KEY)
    MIRRORED_KEYS = (FEMALE_PARENTS_KEY,)

    def __init__(
        self,
        population_size: int = 10,
        n_top_males: int | None = None,
        n_top_females: int | None = None,
        early_steps: int = 3,
        speed_weight: float = 0.25,
        crossover: str | BaseCrossover = "uniform",
        swapping_prob: float = 0.5,
        blend_alpha: float = 0.5,
        mutation: str | BaseMutation = "gaussian",
        mutation_prob: float = 0.2,
        mutation_sigma: float = 0.1,
        female_mutation_prob: float = 0.3,
        female_mutation_sigma: float = 0.1,
        error_weight: float = 0.5,
        max_scoring_males: int = 100,
        seed: int | None = None,
        mirror_user_attrs: bool = True,
    ) -> None:
        # Validate the sizes first so the error names the argument the caller got wrong.
        population_size = check_int("population_size", population_size, 2)
        super().__init__(population_size, seed=seed, mirror_user_attrs=mirror_user_attrs)
        # None: a default that fits every valid population size.
        default_top = min(4, population_size)
        self._n_top_males = check_int(
            "n_top_males", default_top if n_top_males is None else n_top_males, 1, population_size
        )
        self._n_top_females = check_int(
            "n_top_females",
            default_top if n_top_females is None else n_top_females,
            1,
            population_size,
        )
        self._early_steps = check_int("early_steps", early_steps, 1)
        self._speed_weight = check_probability("speed_weight", speed_weight)
        self._mutation_prob = check_probability("mutation_prob", mutation_prob)
        self._female_mutation_prob = check_probability(
            "female_mutation_prob", female_mutation_prob
        )
        self._error_weight = check_float("error_weight", error_weight, 0)
        self._max_scoring_males = check_int("max_scoring_males", max_scoring_males, 3)
        self._crossover = make_crossover(crossover, swapping_prob, blend_alpha)
        self._mutation = make_mutation(mutation, mutation_sigma)
        sigma = check_float("female_mutation_sigma", female_mutation_sigma, 0, low_open=True)
        self._female_mutation = GaussianMutation(sigma)
        self._female_crossover = BlendCrossover(0.5)
        self._warned_no_curve = False

    @property
    def early_steps(self) -> int:
        """Reports that define early speed and that a female sees."""
        return self._early_steps

    # -- females --------------------------------------------------------------------------

    def female_population(self, study: Study, generation: int) -> FemalePopulation:
        """Return generation ``generation``'s (>= 1) top females, computing and storing them
        (and any missing earlier generation's) if no worker has yet.

        Generation ``g``'s females are a pure function of the study's trials: the females
        carried by generation ``g - 1``'s trials, generation ``g - 1``'s top females ((μ+λ))
        and :data:`~optuna_evo.predictors.DEFAULT_FEMALE`, scored on the most recent
        ``max_scoring_males`` COMPLETE males of generations before ``g``. Workers that compute
        it at the same moment may see different trials; each reads the stored population back
        and uses that one (see :func:`~optuna_evo.samplers._population.settle_study_attr`).
        It is read from storage on every call (once per trial), not cached, so a worker that
        lost such a race still breeds from the stored population afterwards.
        """
        if generation < 1:
            raise ValueError(
                f"`generation` must be >= 1 (generation 0's females are random), got {generation}."
            )
        attrs = study._storage.get_study_system_attrs(study._study_id)
        stored = attrs.get(females_key(generation))
        if stored is not None:
            return FemalePopulation.from_dict(stored)
        # Fill from the newest stored generation (none after a restart from copied trials).
        first = generation
        while first > 1 and females_key(first - 1) not in attrs:
            first -= 1
        previous = FemalePopulation.from_dict(attrs[females_key(first - 1)]) if first > 1 else None
        trials = study._get_trials(deepcopy=False, use_cache=True)
        for g in range(first, generation + 1):
            bred = self._breed_females(trials, g, previous)
            # Workers breeding at the same moment may see different trials: all go on with the
            # stored population.
            previous = FemalePopulation.from_dict(
                settle_study_attr(study, females_key(g), bred.to_dict())
            )
        assert previous is not None
        return previous

    def _breed_females(
        self, trials: Sequence[FrozenTrial], generation: int, previous: FemalePopulation | None
    ) -> FemalePopulation:
        gen_key = self._get_generation_key()
        candidates: list[tuple[int | None, FemaleGenome]] = [(None, DEFAULT_FEMALE)]
        seen: set[int | None] = {None}
        for member in previous.members if previous is not None else ():
            if member.trial not in seen:
                seen.add(member.trial)
                candidates.append((member.trial, member.genome))
        for t in trials:
            data = t.system_attrs.get(FEMALE_KEY)
            if data is not None and t.system_attrs.get(gen_key) == generation - 1:
                if t.number not in seen:
                    seen.add(t.number)
                    candidates.append((t.number, FemaleGenome.from_dict(data)))
        # The most recent scoring males, found newest-first so the cost stays flat.
        males: list[MaleCurve] = []
        for t in reversed(trials):
            g = t.system_attrs.get(gen_key)
            if g is None or g < generation:
                males.extend(male_curves([t], self._early_steps))
                if len(males) == self._max_scoring_males:
                    break
        males.reverse()
        ranked = rank_females(candidates, males, self._early_steps, self._error_weight)
        return FemalePopulation(
            generation=generation,
            early_steps=self._early_steps,
            n_males=len(males),
            members=tuple(ranked[: self._n_top_females]),
        )

    # -- males ----------------------------------------------------------------------------

    def rank_males(
        self, study: Study, trials: Sequence[FrozenTrial], predictor: FemaleGenome | None = None
    ) -> list[FrozenTrial]:
        """Rank finished males best first by final value (predicted for PRUNED ones) and
        early speed, as described in the class docstring.

        Trials without a usable final (FAILED, a NaN value, PRUNED before any report, PRUNED
        with a NaN or infinite last report) are dropped: they never become parents. Early
        speed is measured over one step range for all the ranked trials
        (:func:`~optuna_evo.predictors.population.speed_window`). In a constrained study
        (``trial.set_constraint``) feasible males rank first, infeasible ones after them by
        :func:`~optuna_evo.operators.constraint_violation`.
        """
        predictor = predictor or DEFAULT_FEMALE
        direction = study.direction
        sign = 1.0 if direction == StudyDirection.MINIMIZE else -1.0
        target = final_step(study._get_trials(deepcopy=False, use_cache=True))
        rows = []
        for t in trials:
            steps, values = trial_curve(t)
            if t.state == TrialState.COMPLETE:
                final = t.value
            # A PRUNED run whose last report is NaN/inf diverged: it gets no final, since a
            # prediction from its finite start would rank it by the start before the blow-up.
            elif t.state == TrialState.PRUNED and values.size and math.isfinite(values[-1]):
                goal = target if target is not None else float(steps[-1])
                final = predictor.predict(steps, values, max(goal, float(steps[-1])))
            else:
                final = None
            if final is None or not math.isfinite(final):
                continue
            rows.append((t, sign * final, (steps, values)))
        if not rows:
            return []
        final_rank = average_ranks([r[1] for r in rows])
        window = speed_window([r[2] for r in rows], self._early_steps)
        speeds = [
            None if window is None else early_speed(*r[2], self._early_steps, direction, window)
            for r in rows
        ]
        known = [(i, s) for i, s in enumerate(speeds) if s is not None]
        n = len(rows)
        speed_rank = np.full(n, (n + 1) / 2.0)  # neutral: the middle
        if len(known) > 1:
            # Spread the known speeds over 1..n so that neutral sits in their middle too.
            ranks = average_ranks([-s for _, s in known])
            speed_rank[[i for i, _ in known]] = 1.0 + (ranks - 1.0) * (n - 1) / (len(known) - 1)
        w = self._speed_weight
        score = (1.0 - w) * final_rank + w * speed_rank
        # In a constrained study every feasible male ranks before any infeasible one.
        violation = [constraint_violation(r[0]) for r in rows]
        order = sorted(
            range(len(rows)),
            key=lambda i: (violation[i], score[i], final_rank[i], rows[i][0].number),
        )
        return [rows[i][0] for i in order]

    def select_parent(self, study: Study, generation: int) -> list[FrozenTrial]:
        """The top ``n_top_males`` of the previous generation and its parents."""
        candidates = self.selection_candidates(study, generation)
        self._warn_if_no_curve(candidates)
        predictor = self.female_population(study, generation).best
        ranked = self.rank_males(study, candidates, predictor)
        return ranked[: self._n_top_males]

    def _warn_if_no_curve(self, candidates: Sequence[FrozenTrial]) -> None:
        # Without a curve the pairing degrades silently to a plain GA: say so, once.
        finished = [t for t in candidates if t.state == TrialState.COMPLETE]
        if self._warned_no_curve or not finished:
            return
        if all(len(t.intermediate_values) <= self._early_steps for t in finished):
            self._warned_no_curve = True
            _logger.warning(
                f"GenderSampler: no finished trial reported more than early_steps="
                f"{self._early_steps} intermediate values, so males are ranked by their final "
                "value alone and the females have no curve to learn from. Report the learning "
                "curve from the objective with trial.report(value, step)."
            )

    def make_child(
        self,
        study: Study,
        generation: int,
        slot: int,
        parent_population: list[FrozenTrial],
        rng: np.random.RandomState,
    ) -> tuple[str, list[FrozenTrial]]:
        """Two top males chosen uniformly (``child``), or the only one (``mutant``)."""
        # Uniform among the top males, in trial order so every worker draws the same pair.
        males = sorted(parent_population, key=lambda t: t.number)
        if len(males) >= 2:
            i, j = rng.choice(len(males), size=2, replace=False)
            return "child", [males[int(i)], males[int(j)]]
        return "mutant", males[:1]

    def annotate(
        self,
        study: Study,
        info: Lineage,
        parents: list[FrozenTrial],
        parent_population: list[FrozenTrial],
        rng: np.random.RandomState,
    ) -> dict[str, Any]:
        """Breed the trial's female: random in generation 0, else from two top females."""
        chosen: list[RankedFemale] = []
        if info.generation == 0:
            genome = FemaleGenome.random(rng)
        else:
            members = list(self.female_population(study, info.generation).members)
            if len(members) >= 2:
                i, j = rng.choice(len(members), size=2, replace=False)
                chosen = [members[int(i)], members[int(j)]]
                genome = chosen[0].genome.crossover(chosen[1].genome, rng, self._female_crossover)
            elif members:
                chosen = members
                genome = members[0].genome
            else:  # pragma: no cover - the default female is always a candidate
                genome = FemaleGenome.random(rng)
            genome = genome.mutate(rng, self._female_mutation_prob, self._female_mutation)
        return {
            FEMALE_KEY: genome.to_dict(),
            FEMALE_PARENTS_KEY: [m.trial for m in chosen],
        }

    def vary_param(self, plan: Plan, distribution: BaseDistribution, values: Sequence[Any]) -> Any:
        """Children cross over the male parents' values; every offspring then mutates."""
        rng = plan.rng
        value = (
            self._crossover(distribution, values, rng)
            if plan.lineage.role == "child"
            else values[0]
        )
        if rng.rand() < self._mutation_prob:
            value = self._mutation(distribution, value, rng)
        return value
