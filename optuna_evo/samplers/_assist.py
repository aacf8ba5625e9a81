"""Predictor-assisted evolution: options and the pure steps of choosing a child.

:class:`PredictorAssist` switches on, for any :class:`~optuna_evo.samplers.PopulationSampler`,
a surrogate that scores several candidate children before one is trained, a duplicate cache
and a stability guard. The population core (:mod:`optuna_evo.samplers._population`) runs the
loop; this module holds the options, the surrogate's training set and the scoring rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.study import Study
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_evo._experimental import experimental_class
from optuna_evo._validation import check_bool
from optuna_evo._validation import check_float
from optuna_evo._validation import check_int
from optuna_evo._validation import check_probability
from optuna_evo.operators.selection import constraint_values
from optuna_evo.operators.selection import rank_trials
from optuna_evo.predictors.surrogate import BaseSurrogate
from optuna_evo.predictors.surrogate import ParamEncoder
from optuna_evo.predictors.surrogate import SurrogateModel
from optuna_evo.predictors.surrogate import make_surrogate

CANDIDATE_KEY = "optuna_evo:candidate"
"""Trial system attr: the parameter values chosen for the trial before it started."""

ASSIST_KEY = "optuna_evo:assist"
"""Trial system attr (mirrored to a user attr): how the trial's child was chosen."""


@experimental_class("0.1.0")
@dataclass(frozen=True)
class PredictorAssist:
    """Options for predictor-assisted evolution (pass as ``assist=`` to a sampler).

    For every ``child``, ``mutant`` and ``random`` trial (elites and enqueued trials are left
    alone) the sampler draws the whole configuration before the objective runs, from the
    parents' parameters (their distributions are known from the parents' trials) or, for a
    random trial, from the parameters the study's trials have used so far:

    1. **Surrogate** (with ``surrogate`` set and at least ``min_trials`` COMPLETE trials):
       ``n_candidates`` children are proposed (each with its own crossover and mutation), the
       surrogate, fitted on the newest ``max_train_trials`` COMPLETE trials, predicts each one's
       value with an uncertainty, and the child with the best optimistic score is kept:
       ``mean - kappa * std`` when minimising, ``mean + kappa * std`` when maximising. In a
       constrained study (``trial.set_constraint``) a second surrogate predicts each
       candidate's largest constraint value, and candidates predicted feasible (optimistically,
       ``mean - kappa * std <= 0``) are kept before the others. With probability
       ``exploration_rate`` a uniformly random candidate is kept instead.
    2. **Duplicate cache** (``deduplicate``): a candidate whose configuration hash is held by
       a RUNNING, WAITING, COMPLETE or PRUNED trial (on any worker) is mutated again: one more
       mutation of one random gene (the architecture counts as one gene). The kept child's
       hash is claimed in storage and checked again after the write, so two workers cannot
       both keep one configuration.
    3. **Stability guard** (``stability_threshold`` set, surrogate fitted): a kept child whose
       predicted mean is worse than its best parent's value by more than the threshold is
       rejected and replaced by a freshly proposed child.

    Together these steps run in at most ``max_retries + 1`` rounds. Then, if some candidate is
    still untaken, the best predicted one is accepted despite the guard (with a warning); else,
    in a finite space, the untaken configuration nearest to the first candidate (fewest changed
    parameters) is claimed (again after a lost race, up to 50 times); else a duplicate is
    evaluated (with a warning). Parameters the objective suggests outside the drawn
    configuration are sampled as usual when suggested.

    Finished trials that carry no hash (added with ``study.add_trial``, or run before
    ``assist`` was on) count by their params.

    Residual limits: a study's very first trials (before any trial has params) have nothing
    to draw from and are hashed only when they finish. Candidates are drawn over the
    parameters and distributions of the parents, so the cache guarantees no repeat only for
    spaces where every trial suggests the same parameters from the same distributions: in a
    conditional space (a child switched into another branch draws that branch's parameters
    when it suggests them, unchecked) or a space whose ranges depend on other parameters, a
    finished configuration can be evaluated again, and the cache may report the space
    exhausted early. Two workers claiming one configuration at the same instant may both back
    off (never both keep it).

    Cost: every assisted trial reads all of the study's trials from storage (twice with
    ``deduplicate``) and fits the surrogate: about 20 ms per trial at 1000 trials with the
    defaults on a busy 2-core CPU and in-memory storage; negligible next to training a
    network, not next to a cheap function.

    Storage: trial system attrs ``optuna_evo:candidate`` (the drawn configuration),
    ``optuna_evo:config_hash`` (its hash, rewritten from the actual params when the trial
    finishes) and ``optuna_evo:assist`` (``{"candidates", "predicted", "std", "explored",
    "guard_checks", "rejected", "duplicates", "races", "fallback"}``, also a user attr).
    :func:`assist_summary` totals them.

    Args:
        n_candidates: Children proposed per trial, 1..1000; more than 1 needs a surrogate.
        surrogate: ``"ensemble"`` (a default
            :class:`~optuna_evo.predictors.surrogate.RandomFeatureEnsemble`), a
            :class:`~optuna_evo.predictors.surrogate.BaseSurrogate`, or ``None``.
        kappa: Weight of the uncertainty in the optimistic score, >= 0.
        exploration_rate: Probability that a random candidate is kept, in [0, 1].
        min_trials: COMPLETE trials needed before the surrogate is used, >= 2.
        max_train_trials: The surrogate trains on at most this many newest COMPLETE trials,
            >= ``min_trials``.
        deduplicate: Never train a configuration a RUNNING/WAITING/COMPLETE/PRUNED trial has.
        stability_threshold: The guard's margin in objective units, >= 0, or ``None`` (off);
            needs a surrogate.
        max_retries: Extra selection rounds per trial (``max_retries + 1`` in all), 0..1000;
            each round re-mutates every duplicate candidate, and the guard rejects at most one.
    """

    n_candidates: int = 8
    surrogate: str | BaseSurrogate | None = "ensemble"
    kappa: float = 1.0
    exploration_rate: float = 0.1
    min_trials: int = 10
    max_train_trials: int = 500
    deduplicate: bool = True
    stability_threshold: float | None = None
    max_retries: int = 10
    _model: BaseSurrogate | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        def store(name: str, value: Any) -> Any:
            # Frozen: keep the checked native value (an int for 10.0, a float for np.float32).
            object.__setattr__(self, name, value)
            return value

        k = store("n_candidates", check_int("n_candidates", self.n_candidates, 1, 1000))
        model = None if self.surrogate is None else make_surrogate(self.surrogate)
        if k > 1 and model is None:
            raise ValueError(
                f"`n_candidates`={k} needs a `surrogate` to score the candidates; use "
                "n_candidates=1 or surrogate='ensemble'."
            )
        store("kappa", check_float("kappa", self.kappa, 0))
        store("exploration_rate", check_probability("exploration_rate", self.exploration_rate))
        min_trials = store("min_trials", check_int("min_trials", self.min_trials, 2))
        store("max_train_trials", check_int("max_train_trials", self.max_train_trials, min_trials))
        store("deduplicate", check_bool("deduplicate", self.deduplicate))
        threshold = check_float("stability_threshold", self.stability_threshold, 0, none_ok=True)
        if store("stability_threshold", threshold) is not None and model is None:
            raise ValueError("`stability_threshold` needs a `surrogate` to predict values.")
        store("max_retries", check_int("max_retries", self.max_retries, 0, 1000))
        object.__setattr__(self, "_model", model)

    @property
    def model(self) -> BaseSurrogate | None:
        """The surrogate family (``None`` when off)."""
        return self._model


@dataclass
class Candidate:
    """One proposed child: its sampler decisions, configuration and their distributions."""

    extras: dict[str, Any]
    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]
    hash: str = ""


class Scorer:
    """The fitted surrogate of one trial's choice, in the study's direction.

    Args:
        model: The fitted surrogate.
        encoder: The encoder its inputs were built with.
        direction: The study's direction.
        kappa: Weight of the uncertainty in the optimistic score.
        constraint_model: In a constrained study, a surrogate of each trial's largest
            constraint value c (as ``sign(c) * log(1 + |c|)``, <= 0: feasible), fitted on the
            same inputs; ``None`` otherwise.
    """

    def __init__(
        self,
        model: SurrogateModel,
        encoder: ParamEncoder,
        direction: StudyDirection,
        kappa: float,
        constraint_model: SurrogateModel | None = None,
    ) -> None:
        self.model = model
        self.encoder = encoder
        self.sign = -1.0 if direction == StudyDirection.MAXIMIZE else 1.0
        self.kappa = kappa
        self.constraint_model = constraint_model

    def predict(self, candidates: Sequence[Candidate]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted mean and std of each candidate's value."""
        return self.model.predict(self.encoder.encode([c.params for c in candidates]))

    def best(self, candidates: Sequence[Candidate], optimistic: bool = True) -> int:
        """Index of the candidate to keep: the lowest ``sign * mean - kappa * std`` (optimistic
        score) or, with ``optimistic=False``, the best predicted mean.

        With a ``constraint_model``, candidates predicted feasible come first, as
        :func:`~optuna_evo.operators.rank_trials` ranks finished trials: the others follow by
        their predicted excess over 0 (with the same optimism, ``mean - kappa * std``).
        """
        kappa = self.kappa if optimistic else 0.0
        x = self.encoder.encode([c.params for c in candidates])
        mean, std = self.model.predict(x)
        score = self.sign * mean - kappa * std
        if self.constraint_model is None:
            return int(np.argmin(score))
        c_mean, c_std = self.constraint_model.predict(x)
        excess = np.maximum(c_mean - kappa * c_std, 0.0)
        return int(np.lexsort((score, excess))[0])  # excess first, then score

    def worse_by(self, candidate: Candidate, reference: float) -> float:
        """How much worse than ``reference`` the candidate's predicted mean is (< 0: better)."""
        mean, _ = self.predict([candidate])
        return float(self.sign * (mean[0] - reference))


def fit_scorer(
    assist: PredictorAssist,
    trials: Sequence[FrozenTrial],
    distributions: Mapping[str, BaseDistribution],
    direction: StudyDirection,
    rng: np.random.RandomState,
) -> Scorer | None:
    """Fit the surrogate on the newest COMPLETE trials with finite values (``None`` if too few).

    When at least ``min_trials`` of them have constraints (``trial.set_constraint``), a second
    surrogate learns their largest constraint value (see :class:`Scorer`).
    """
    if assist.model is None:
        return None
    done = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
    ]
    if len(done) < assist.min_trials or not distributions:
        return None
    done = sorted(done, key=lambda t: t.number)[-assist.max_train_trials :]
    encoder = ParamEncoder(distributions)
    x = encoder.encode([t.params for t in done])
    y = np.array([float(t.value) for t in done])  # type: ignore[arg-type]
    model = assist.model.fit(x, y, rng)
    worst = np.array([max(c) if c else math.nan for c in map(constraint_values, done)])
    has = np.flatnonzero(~np.isnan(worst))
    constraint_model = None
    if has.size >= assist.min_trials:
        # Learnt on a signed log scale: only the sign decides feasibility, and constraint
        # values of any size (1e300 overflows the fit) keep their order.
        c_y = np.sign(worst[has]) * np.log1p(np.abs(worst[has]))
        # trial.set_constraint accepts ±inf: learn it as a value beyond every finite one, on
        # its side of 0, so the surrogate still sees where the infeasible region lies.
        finite = c_y[np.isfinite(c_y)]
        margin = max(1.0, float(np.ptp(finite))) if finite.size else 1.0
        high = float(finite.max(initial=0.0)) + margin
        low = float(finite.min(initial=0.0)) - margin
        constraint_model = assist.model.fit(x[has], np.clip(c_y, low, high), rng)
    return Scorer(model, encoder, direction, assist.kappa, constraint_model)


def best_parent_value(parents: Sequence[FrozenTrial], direction: StudyDirection) -> float | None:
    """The value of the best COMPLETE parent with a finite value (``None`` if none has one).

    Best as :func:`~optuna_evo.operators.rank_trials` ranks: in a constrained study, a feasible
    parent before an infeasible one whose value is better.
    """
    finite = [
        p
        for p in parents
        if p.state == TrialState.COMPLETE and p.value is not None and math.isfinite(p.value)
    ]
    if not finite:
        return None
    best = rank_trials(finite, direction)[0]
    assert best.value is not None
    return float(best.value)


def assist_summary(study: Study) -> dict[str, Any]:
    """Totals of the ``optuna_evo:assist`` records of a study's trials.

    Returns:
        ``{"assisted_trials", "guard_checks", "guard_rejections", "guard_rejection_rate",
        "duplicates_remutated", "races_lost", "fallbacks", "explored"}``; the rejection rate
        is rejections / checks (0.0 when the guard never ran).
    """
    records = [
        t.system_attrs[ASSIST_KEY]
        for t in study.get_trials(deepcopy=False)
        if isinstance(t.system_attrs.get(ASSIST_KEY), dict)
    ]
    checks = sum(int(r.get("guard_checks", 0)) for r in records)
    rejections = sum(int(r.get("rejected", 0)) for r in records)
    fallbacks: dict[str, int] = {}
    for r in records:
        if r.get("fallback"):
            fallbacks[r["fallback"]] = fallbacks.get(r["fallback"], 0) + 1
    return {
        "assisted_trials": len(records),
        "guard_checks": checks,
        "guard_rejections": rejections,
        "guard_rejection_rate": rejections / checks if checks else 0.0,
        "duplicates_remutated": sum(int(r.get("duplicates", 0)) for r in records),
        "races_lost": sum(int(r.get("races", 0)) for r in records),
        "fallbacks": fallbacks,
        "explored": sum(bool(r.get("explored")) for r in records),
    }
