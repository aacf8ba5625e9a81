"""LearningCurvePruner: stop trials whose extrapolated learning curve cannot win."""

from __future__ import annotations

import math
import threading
from typing import Protocol

import numpy as np
from optuna.pruners import BasePruner
from optuna.study import Study
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_evo._experimental import experimental_class
from optuna_evo._logging import get_logger
from optuna_evo._validation import check_float
from optuna_evo._validation import check_int
from optuna_evo._validation import check_probability
from optuna_evo.operators.selection import constraint_violation
from optuna_evo.predictors.female import DEFAULT_FEMALE
from optuna_evo.predictors.female import FemaleGenome
from optuna_evo.predictors.population import best_female
from optuna_evo.predictors.population import final_step
from optuna_evo.predictors.population import trial_curve

_logger = get_logger(__name__)

_MAX_CALIBRATION_TRIALS = 50


class CurvePredictor(Protocol):
    """Anything that predicts a curve's value at a later step (e.g. a FemaleGenome)."""

    def predict(self, steps: np.ndarray, values: np.ndarray, target_step: float) -> float:
        """Predict the value at ``target_step`` from the reports ``(steps, values)``."""


@experimental_class("0.1.0")
class LearningCurvePruner(BasePruner):
    """Prune a trial whose predicted final value is clearly worse than the k-th best.

    At each report, once the trial has reported ``min_steps`` values and the study has
    ``min_finished_trials`` COMPLETE trials, the trial's curve is extrapolated to the step
    the COMPLETE trials reached (their largest last step) by a learning-curve predictor, and
    the trial is pruned when (for minimisation; mirrored for maximisation)::

        predicted - allowance > kth_best + margin * std(finals)

    where ``kth_best`` is the ``n_best``-th best COMPLETE value (of the feasible trials, in a
    study with constraints set by ``trial.set_constraint``; nothing is pruned before one is
    feasible), ``std(finals)`` the spread of the COMPLETE values, and ``allowance`` the
    predictor's own optimism needed at this point of training: the ``confidence`` quantile of
    how much better than predicted the COMPLETE trials ended when predicted from their
    reports up to the same step (0 if the predictor was never too pessimistic). The
    allowance makes the pruner self-calibrating and conservative: it prunes early only where
    the predictor has proved reliable early. A report of NaN or infinity prunes at once (the
    run diverged); a trial at or past the final step is never pruned.

    The predictor is ``predictor`` when given; otherwise, in a study run by
    :class:`~optuna_evo.samplers.gender.GenderSampler`, the best female of the newest stored
    female population (once it was scored on at least ``min_finished_trials`` males), and
    :data:`~optuna_evo.predictors.DEFAULT_FEMALE` (a fixed pow3 / exponential / last-value
    mixture) otherwise, so the pruner works with any sampler.

    Steps: a "step" in ``min_steps`` is one report (``trial.report`` call), whatever step
    numbers the objective uses; extrapolation uses the step numbers.

    Example:

        .. code-block:: python

            import optuna
            from optuna_evo.pruners import LearningCurvePruner

            study = optuna.create_study(pruner=LearningCurvePruner())

    Args:
        min_steps: Reports a trial must have made before it can be pruned, >= 2.
        min_finished_trials: COMPLETE trials needed before anything is pruned, >= 1.
        n_best: Compare with the ``n_best``-th best COMPLETE value, 1..min_finished_trials.
        margin: Extra distance, in standard deviations of the COMPLETE values, >= 0.
        confidence: Quantile of the predictor's pessimism allowed for, in [0, 1].
        predictor: A fixed predictor (an object with
            ``predict(steps, values, target_step) -> float``, e.g. a
            :class:`~optuna_evo.predictors.FemaleGenome`); ``None`` as described above.
    """

    def __init__(
        self,
        min_steps: int = 5,
        min_finished_trials: int = 5,
        n_best: int = 3,
        margin: float = 0.1,
        confidence: float = 0.9,
        predictor: CurvePredictor | None = None,
    ) -> None:
        self._min_steps = check_int("min_steps", min_steps, 2)
        self._min_finished = check_int("min_finished_trials", min_finished_trials, 1)
        self._n_best = check_int("n_best", n_best, 1)
        if self._n_best > self._min_finished:
            raise ValueError(
                f"`n_best` must be <= `min_finished_trials`={self._min_finished}, "
                f"got {self._n_best}."
            )
        self._margin = check_float("margin", margin, 0)
        self._confidence = check_probability("confidence", confidence)
        if predictor is not None and not callable(getattr(predictor, "predict", None)):
            raise ValueError("`predictor` must have a predict(steps, values, target_step).")
        self._predictor = predictor
        self._lock = threading.Lock()
        # Caches of storage reads, keyed by what invalidates them.
        self._female_cache: dict[tuple[object, int, int], CurvePredictor] = {}
        self._residual_key: tuple[object, ...] | None = None
        self._residuals: dict[tuple[int, float], float | None] = {}

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        del state["_lock"]
        state["_female_cache"], state["_residual_key"], state["_residuals"] = {}, None, {}
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- BasePruner -----------------------------------------------------------------------

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        """Return whether ``trial`` should stop (see the class docstring)."""
        steps, values = trial_curve(trial)
        if values.size == 0:
            return False
        if not math.isfinite(values[-1]):
            return True
        finite = np.isfinite(values)
        if int(finite.sum()) < self._min_steps:
            return False
        trials = study.get_trials(deepcopy=False)
        complete = [
            t
            for t in trials
            if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
        ]
        if len(complete) < self._min_finished:
            return False
        target = final_step(complete)
        if target is None or steps[-1] >= target:
            return False
        predictor = self._predictor_for(study, len(trials))
        predicted = predictor.predict(steps[finite], values[finite], target)
        if not math.isfinite(predicted):
            return False
        sign = 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0
        finals = np.array([sign * float(t.value) for t in complete])  # type: ignore[arg-type]
        # The value to beat is a feasible one, as for study.best_trial: better values of
        # infeasible trials (trial.set_constraint) do not make a trial hopeless.
        feasible = np.sort(finals[[constraint_violation(t) == 0.0 for t in complete]])
        if feasible.size == 0:
            return False
        kth = float(feasible[min(self._n_best, feasible.size) - 1])
        allowance = self._allowance(study, predictor, complete, float(steps[-1]), target, sign)
        if allowance is None:
            return False
        return sign * predicted - allowance > kth + self._margin * float(finals.std())

    # -- helpers --------------------------------------------------------------------------

    def predictor_for(self, study: Study) -> CurvePredictor:
        """The predictor used for ``study`` now (see the class docstring)."""
        return self._predictor_for(study, len(study.get_trials(deepcopy=False)))

    def _predictor_for(self, study: Study, n_trials: int) -> CurvePredictor:
        if self._predictor is not None:
            return self._predictor
        # A new female population is stored only when a trial is created: re-read then. The
        # storage is part of the key: study ids repeat across storages (every in-memory study
        # is study 0) when one pruner serves several studies.
        key = (study._storage, study._study_id, n_trials)
        with self._lock:
            cached = self._female_cache.get(key)
        if cached is None:
            female: FemaleGenome | None = best_female(study, min_males=self._min_finished)
            cached = female if female is not None else DEFAULT_FEMALE
            with self._lock:
                self._female_cache = {key: cached}  # only the newest matters
        return cached

    def _allowance(
        self,
        study: Study,
        predictor: CurvePredictor,
        complete: list[FrozenTrial],
        step: float,
        target: float,
        sign: float,
    ) -> float | None:
        # How much better than predicted (from reports up to `step`) COMPLETE trials ended.
        # Each (trial, step) residual is computed once per predictor and target.
        who = predictor if isinstance(predictor, FemaleGenome) else id(predictor)
        key = (study._storage, study._study_id, who, target, sign)
        with self._lock:
            if self._residual_key != key:
                self._residual_key, self._residuals = key, {}
            cache = self._residuals
        recent = sorted(complete, key=lambda t: t.number)[-_MAX_CALIBRATION_TRIALS:]
        residuals: list[float] = []
        for t in recent:
            if (t.number, step) in cache:
                residual = cache[(t.number, step)]
            else:
                residual = self._residual(t, predictor, step, target, sign)
                with self._lock:
                    cache[(t.number, step)] = residual
            if residual is not None:
                residuals.append(residual)
        if not residuals:
            return None
        return max(float(np.quantile(residuals, self._confidence)), 0.0)

    @staticmethod
    def _residual(
        trial: FrozenTrial, predictor: CurvePredictor, step: float, target: float, sign: float
    ) -> float | None:
        steps, values = trial_curve(trial)
        keep = (steps <= step) & np.isfinite(values)
        if keep.sum() == 0 or keep.sum() == values.size:
            return None  # nothing reported yet at `step`, or nothing left to predict
        predicted = predictor.predict(steps[keep], values[keep], target)
        if not math.isfinite(predicted):
            return None
        return sign * (predicted - float(trial.value))  # type: ignore[arg-type]
