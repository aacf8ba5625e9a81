"""Trust-weighted selection: GENREG's trust, carried along a GA's lineage, for noisy objectives.

In GENREG (:mod:`optuna_evo.genreg`) a genome's *trust* decays every generation, grows with the
rewards it earns and is partly inherited by its children. :class:`TrustWeightedSelection`
brings that idea to :class:`~optuna_evo.GeneticSampler`, where one evaluated trial plays the
part of one evaluation of a genome:

* **reward** of a finished trial, from its rank ``r`` (0 = best) among the ``n`` finished trials
  of its own generation (ranked as :func:`~optuna_evo.operators.selection.rank_trials` does, so
  PRUNED trials come last): with ``reward="linear"`` (default)
  ``wrong_penalty + (correct_reward - wrong_penalty) * (n - 1 - r) / (n - 1)``, i.e. from
  ``correct_reward`` for the best down to ``wrong_penalty`` for the worst; with
  ``reward="halves"`` ``correct_reward`` for the top half (``r < n / 2``) and ``wrong_penalty``
  for the rest;
* **trust** of a trial of generation ``g``::

      trust = inheritance * mean_p(trust_p * (1 - decay) ** (g - g_p)) + reward

  over its parents ``p`` (of generation ``g_p``); for parents of the previous generation this is
  ``(mean parent trust * inheritance) * (1 - decay) + reward``. Trials without parents (random,
  enqueued) start from their reward alone;
* **decay with age**: when trials of different generations compete, each one's trust is decayed
  to the newest generation among them, ``trust * (1 - decay) ** (g_newest - g)``. A trial is
  evaluated once, so an old trial's trust only fades: a single lucky evaluation cannot keep a
  trial at the top of the parent population forever, as it can under (mu + lambda) truncation;
* **survivors**: the ``survival_fraction`` of the population with the highest (decayed) trust;
* **mating**: each parent is drawn with probability proportional to
  ``trust - min(trust) + eps`` over the parent population (shifted to be positive, as in
  GENREG).

Everything is computed from what storage holds (values, states and the lineage written by the
sampler, see :mod:`optuna_evo.samplers._population`), so every worker computes the same
numbers. Two scopes:

* **bound** (after :meth:`TrustWeightedSelection.bind` with the study): the whole stored
  history, with memoisation per generation. This is the exact definition above.
* **unbound** (the default when used as ``GeneticSampler(selection=TrustWeightedSelection())``):
  only the trials the sampler passes in, i.e. the candidates of one selection (the previous
  generation and its parent population) or the parent population. Ranks are taken among the
  members of a generation present there and parents that are not present are left out of the
  mean. The values are deterministic for the same stored inputs, so workers still agree; they
  approximate the bound values (ancestors further back weigh ``(inheritance * (1 - decay))^k``,
  about 2e-2 per generation with the defaults).

Measured (5-D sphere on [-5, 5]^5 plus Gaussian noise of standard deviation sigma,
``GeneticSampler(population_size=10)``, 400 trials, median over 10 seeds; lower is better;
"best" is the noise-free value of ``study.best_trial``, "last 50" the mean noise-free value of
the last 50 trials):

=====  ====================  ====================  ===================  ==================
sigma  truncation (default)  trust, unbound        trust, bound         random
=====  ====================  ====================  ===================  ==================
0      best 0.28, last 7.3   best 0.19, last 7.4   best 0.22, last 8.1  best 4.6, last 41
5      best 3.6, last 10.1   best 2.8, last 10.6   best 2.9, last 11.0  best 6.3, last 41
20     best 9.7, last 17.2   best 11.2, last 21.9  best 8.9, last 19.5  best 12.8, last 41
=====  ====================  ====================  ===================  ==================

So: no clear gain over truncation. The trust-selected population moves as fast on moderate
noise and slower on strong noise (variants with ``inheritance`` 0.5-0.8 or ``decay`` 0-0.1 did
not change that: last-50 medians 18-20 at sigma 20). Prefer truncation unless you measure a
benefit on your objective.
"""

from __future__ import annotations

from collections.abc import Sequence
import math
from typing import Any

import numpy as np
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_evo._experimental import experimental_class
from optuna_evo._validation import check_choice
from optuna_evo._validation import check_float
from optuna_evo._validation import check_probability
from optuna_evo.operators.selection import BaseSelection
from optuna_evo.operators.selection import rank_trials

REWARDS: tuple[str, ...] = ("linear", "halves")
"""Reward schemes of :class:`TrustWeightedSelection`."""

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _generation_and_parents(
    trial: FrozenTrial, numbering: str | None
) -> tuple[int, tuple[int, ...]]:
    # Imported here: the samplers import the operators package, which exports this module.
    from optuna_evo.samplers._population import LINEAGE_KEY
    from optuna_evo.samplers._population import generation_key_of

    data = trial.system_attrs.get(LINEAGE_KEY)
    # Not handled by an optuna-evo sampler, or by another class than the ranking one (whose
    # generations are numbered apart): a founder of generation 0, as the samplers count it.
    if data is None or generation_key_of(trial) != numbering:
        return 0, ()
    # Numbers, not the recorded ids: optuna.copy_study gives the trials new ids.
    return int(data["generation"]), tuple(int(n) for n in data["parent_numbers"])


def _current_key(trials: Sequence[FrozenTrial]) -> str | None:
    """The generation key of the sampler ranking ``trials``: that of the newest trial with
    one (a prior trial added late has none)."""
    from optuna_evo.samplers._population import generation_key_of

    for t in sorted(trials, key=lambda t: t.number, reverse=True):
        key = generation_key_of(t)
        if key is not None:
            return key
    return None


def positive_weights(values: Sequence[float]) -> np.ndarray:
    """Selection weights ``v - min(v) + eps``: all positive, uniform when all values tie.

    Args:
        values: Trust values (any sign).

    Returns:
        Weights that sum to 1.
    """
    v = np.asarray(values, dtype=float)
    shifted = v - v.min()
    # eps scales with the spread, so the weakest candidate keeps a tiny but nonzero chance.
    w = shifted + 1e-6 * (1.0 + shifted.max())
    return w / w.sum()


@experimental_class("0.1.0")
class TrustWeightedSelection(BaseSelection):
    """Survival and mating by lineage trust (GENREG's trust idea for GeneticSampler).

    See the module docstring for the exact formulas.

    Example:

        .. code-block:: python

            import optuna
            from optuna_evo import GeneticSampler
            from optuna_evo.operators.trust import TrustWeightedSelection

            selection = TrustWeightedSelection()
            sampler = GeneticSampler(population_size=10, selection=selection, seed=0)
            study = optuna.create_study(sampler=sampler)
            selection.bind(study)  # optional: exact trust over the whole stored lineage
            study.optimize(noisy_objective, n_trials=300)

    Args:
        decay: Share of trust lost per generation, in [0, 1).
        inheritance: Share of the parents' (mean) trust a child inherits, in [0, 1].
        survival_fraction: Share of ``population_size`` that survives, in (0, 1].
        reward: ``"linear"`` (in rank) or ``"halves"`` (top half vs the rest), see
            :data:`REWARDS`.
        correct_reward: Reward of the best trial of a generation (``"linear"``) or of the top
            half (``"halves"``).
        wrong_penalty: Reward of the worst trial (``"linear"``) or of the bottom half
            (``"halves"``); must be < ``correct_reward``.
    """

    def __init__(
        self,
        decay: float = 0.2,
        inheritance: float = 0.03,
        survival_fraction: float = 0.5,
        reward: str = "linear",
        correct_reward: float = 10.0,
        wrong_penalty: float = -1.5,
    ) -> None:
        self.decay = check_float("decay", decay, 0, 1, high_open=True)
        self.inheritance = check_probability("inheritance", inheritance)
        self.survival_fraction = check_float(
            "survival_fraction", survival_fraction, 0, 1, low_open=True
        )
        self.reward = check_choice("reward", reward, REWARDS)
        self.correct_reward = check_float("correct_reward", correct_reward)
        self.wrong_penalty = check_float("wrong_penalty", wrong_penalty)
        if not self.wrong_penalty < self.correct_reward:
            raise ValueError(
                f"`wrong_penalty`={self.wrong_penalty} must be < "
                f"`correct_reward`={self.correct_reward}."
            )
        self._study: Study | None = None
        self._generation_key: str | None = None  # see use_generations_of
        # generation -> (member ids, {trial id: trust}); reused while a generation is unchanged.
        self._memo: dict[int, tuple[tuple[int, ...], dict[int, float]]] = {}

    # -- configuration --------------------------------------------------------------------

    def bind(self, study: Study) -> TrustWeightedSelection:
        """Compute trust over ``study``'s whole stored history from now on (exact scope).

        Args:
            study: The study the sampler runs (each worker binds its own study object).

        Returns:
            ``self``.
        """
        self._study = study
        self._memo.clear()
        return self

    def use_generations_of(self, key: str) -> None:
        """Age trials by the generations of the sampler whose key this is (its own trials);
        the trials of other classes and prior trials are founders of generation 0.

        Without it (the operator used on its own), the class of the newest trial that has a
        generation is taken.
        """
        self._generation_key = key
        self._memo.clear()

    def _numbering(self, trials: Sequence[FrozenTrial]) -> str | None:
        return self._generation_key if self._generation_key is not None else _current_key(trials)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_study"] = None  # a study does not travel with a pickled sampler
        state["_memo"] = {}
        return state

    def n_survivors(self, population_size: int) -> int:
        """Number of survivors for a population of ``population_size``."""
        return int(math.floor(self.survival_fraction * population_size + 1e-9))

    def validate(self, population_size: int) -> None:
        """Refuse a fraction that leaves no parent."""
        if self.n_survivors(population_size) < 1:
            raise ValueError(
                f"`survival_fraction`={self.survival_fraction} leaves no parent for "
                f"population_size={population_size}; it must be at least 1/population_size."
            )

    # -- trust ----------------------------------------------------------------------------

    def reward_for_rank(self, rank: int, n: int) -> float:
        """Reward of the trial ranked ``rank`` (0 = best) among ``n`` of its generation."""
        if self.reward == "halves":
            return self.correct_reward if rank < n / 2 else self.wrong_penalty
        if n <= 1:
            return self.correct_reward
        span = self.correct_reward - self.wrong_penalty
        return self.wrong_penalty + span * (n - 1 - rank) / (n - 1)

    def trust(self, trials: Sequence[FrozenTrial]) -> dict[int, float]:
        """Trust of ``trials`` at their own generation, by trial id.

        Bound: computed over the study's whole history; unbound: over ``trials`` only, which
        must then be ranked best-first (as the sampler passes them).

        Args:
            trials: Finished trials.

        Returns:
            ``{trial._trial_id: trust}`` for every trial of ``trials`` that could be ranked
            (FAIL trials and NaN values have none).
        """
        if self._study is not None:
            table = self._bound_table(self._study)
        else:
            table = self._table(list(trials), memo=None)
        return {t._trial_id: table[t._trial_id] for t in trials if t._trial_id in table}

    def effective_trust(self, trials: Sequence[FrozenTrial]) -> list[float]:
        """Trust of each trial decayed to the newest generation among ``trials``."""
        table = self.trust(trials)
        numbering = self._numbering(trials)
        generations = [_generation_and_parents(t, numbering)[0] for t in trials]
        newest = max(generations, default=0)
        keep = 1.0 - self.decay
        return [
            table.get(t._trial_id, -math.inf) * keep ** (newest - g)
            for t, g in zip(trials, generations)
        ]

    def _bound_table(self, study: Study) -> dict[int, float]:
        finished = study.get_trials(deepcopy=False, states=_FINISHED)
        ranked = rank_trials(finished, study.direction)
        return self._table(ranked, memo=self._memo)

    def _table(
        self,
        ranked: list[FrozenTrial],
        memo: dict[int, tuple[tuple[int, ...], dict[int, float]]] | None,
    ) -> dict[int, float]:
        """Trust of every trial in ``ranked`` (best-first), generation by generation."""
        numbering = self._numbering(ranked)
        by_generation: dict[int, list[FrozenTrial]] = {}
        for t in ranked:  # best-first overall, hence best-first within each generation
            by_generation.setdefault(_generation_and_parents(t, numbering)[0], []).append(t)
        id_of = {t.number: t._trial_id for t in ranked}
        table: dict[int, float] = {}
        generation_of: dict[int, int] = {}
        changed = False
        keep = 1.0 - self.decay
        for g in sorted(by_generation):
            members = by_generation[g]
            ids = tuple(t._trial_id for t in members)
            cached = memo.get(g) if memo is not None else None
            if cached is not None and not changed and cached[0] == ids:
                table.update(cached[1])
                generation_of.update(dict.fromkeys(ids, g))
                continue
            changed = True  # later generations inherit from this one: recompute them too
            current: dict[int, float] = {}
            for rank, t in enumerate(members):
                _, parent_numbers = _generation_and_parents(t, numbering)
                parent_ids = [id_of[n] for n in parent_numbers if n in id_of]
                inherited = [
                    table[p] * keep ** (g - generation_of[p]) for p in parent_ids if p in table
                ]
                base = self.inheritance * float(np.mean(inherited)) if inherited else 0.0
                current[t._trial_id] = base + self.reward_for_rank(rank, len(members))
            table.update(current)
            generation_of.update(dict.fromkeys(ids, g))
            if memo is not None:
                memo[g] = (ids, current)
        return table

    # -- BaseSelection --------------------------------------------------------------------

    def survivors(self, ranked: Sequence[FrozenTrial], population_size: int) -> list[FrozenTrial]:
        """Return the ``survival_fraction`` of ``population_size`` with the highest trust."""
        n = self.n_survivors(population_size)
        scores = self.effective_trust(ranked)
        # Stable: equal trust keeps the value ranking.
        order = sorted(range(len(ranked)), key=lambda i: -scores[i])
        return [ranked[i] for i in order[:n]]

    def pick(self, ranked: Sequence[FrozenTrial], n: int, rng: np.random.RandomState) -> list[int]:
        """Draw ``n`` parents with probability proportional to shifted trust.

        Distinct parents when there are at least ``n`` candidates.
        """
        scores = self.effective_trust(ranked)
        # A trial without trust (never ranked) counts as the least trusted one.
        floor = min((s for s in scores if math.isfinite(s)), default=0.0)
        p = positive_weights([s if math.isfinite(s) else floor for s in scores])
        chosen = rng.choice(len(ranked), size=n, replace=len(ranked) < n, p=p)
        return [int(i) for i in chosen]
