"""Tests of LearningCurvePruner on synthetic HPO problems with known learning curves."""

from __future__ import annotations

import math
import pickle

from evo_testing import assert_names_rule
import numpy as np
import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState
import pytest

from optuna_evo.predictors import DEFAULT_FEMALE
from optuna_evo.predictors import FemaleGenome
from optuna_evo.predictors import load_females
from optuna_evo.pruners import LearningCurvePruner
from optuna_evo.samplers.gender import GenderSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)

N_REPORTS = 40


def curve(x: float, lr: float, seed: int) -> np.ndarray:
    """A configuration's loss curve: larger ``lr`` learns faster but plateaus higher."""
    rate = (math.log10(lr) + 3.0) / 3.0
    t = np.arange(1, N_REPORTS + 1, dtype=float)
    clean = 0.5 + 0.3 * x * x + 0.6 * rate + 2.0 * t ** -(0.2 + 1.5 * rate)
    return clean + np.random.RandomState(seed).normal(0.0, 0.005, N_REPORTS)


class Problem:
    """The synthetic HPO problem; counts the training steps actually run."""

    def __init__(self, sign: float = 1.0, step_scale: int = 1) -> None:
        self.sign = sign
        self.step_scale = step_scale
        self.steps = 0

    def __call__(self, trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -2.0, 2.0)
        lr = trial.suggest_float("lr", 1e-3, 1.0, log=True)
        values = self.sign * curve(x, lr, trial.number)
        for i, value in enumerate(values, start=1):
            self.steps += 1
            trial.report(float(value), i * self.step_scale)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(values[-1])


def run(
    pruner: optuna.pruners.BasePruner,
    seed: int = 0,
    n_trials: int = 60,
    sign: float = 1.0,
    step_scale: int = 1,
    sampler: optuna.samplers.BaseSampler | None = None,
) -> tuple[optuna.Study, int]:
    problem = Problem(sign, step_scale)
    study = optuna.create_study(
        direction="minimize" if sign > 0 else "maximize",
        sampler=sampler or optuna.samplers.RandomSampler(seed=seed),
        pruner=pruner,
    )
    study.optimize(problem, n_trials=n_trials)
    return study, problem.steps


def test_experimental_warning() -> None:
    with pytest.warns(ExperimentalWarning):
        LearningCurvePruner()


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"min_steps": 1}, "min_steps"),
        ({"min_steps": 2.5}, "min_steps"),
        ({"min_finished_trials": 0}, "min_finished_trials"),
        ({"n_best": 0}, "n_best"),
        ({"n_best": 6, "min_finished_trials": 5}, "n_best"),
        ({"margin": -0.1}, "margin"),
        ({"margin": math.nan}, "margin"),
        ({"confidence": 1.5}, "confidence"),
        ({"predictor": "pow3"}, "predictor"),
    ],
)
def test_bad_arguments(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument) as info:
        LearningCurvePruner(**kwargs)
    assert_names_rule(info.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_steps": True}, r"`min_steps` must be an integer >= 2, got True\."),
        ({"min_finished_trials": math.inf}, r"`min_finished_trials`.*got inf\."),
        ({"margin": math.inf}, r"`margin` must be a finite number >= 0, got inf\."),
        ({"confidence": math.nan}, r"`confidence` must be a finite number in \[0, 1\], got nan"),
        ({"n_best": 6, "min_finished_trials": 5}, r"`n_best` must be <= `min_finished_trials`=5"),
    ],
)
def test_bad_arguments_raise_one_wording(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LearningCurvePruner(**kwargs)


@pytest.mark.parametrize("number", [2.0, np.int64(2), np.float32(2.0)])
def test_integral_numbers_are_accepted_as_python_ints(number: object) -> None:
    pruner = LearningCurvePruner(min_steps=number, min_finished_trials=number, n_best=number)
    assert pruner._min_steps == pruner._min_finished == pruner._n_best == 2
    assert {type(pruner._min_steps), type(pruner._min_finished), type(pruner._n_best)} == {int}
    assert type(LearningCurvePruner(margin=np.float32(0.5))._margin) is float


@pytest.mark.parametrize("step_scale", [1, 250])
def test_saves_steps_and_keeps_the_best(step_scale: int) -> None:
    """Same random configurations with and without pruning: >= 30 % fewer training steps,
    same best configuration."""
    saved = []
    for seed in range(3):
        full, full_steps = run(optuna.pruners.NopPruner(), seed, step_scale=step_scale)
        pruned, pruned_steps = run(LearningCurvePruner(), seed, step_scale=step_scale)
        assert [t.params for t in pruned.trials] == [t.params for t in full.trials]
        assert pruned.best_trial.number == full.best_trial.number
        saved.append(1.0 - pruned_steps / full_steps)
        assert saved[-1] >= 0.30, (seed, saved)
    print(f"steps saved (step scale {step_scale}): {np.round(saved, 3)}")


def test_median_pruner_loses_the_best_on_crossing_curves() -> None:
    # Why a curve predictor: comparing current values prunes the slow starters that win.
    lost = 0
    for seed in range(3):
        full, _ = run(optuna.pruners.NopPruner(), seed)
        median, _ = run(optuna.pruners.MedianPruner(), seed)
        lost += median.best_trial.number != full.best_trial.number
    assert lost >= 1


def test_maximize_mirrors_minimize() -> None:
    low, low_steps = run(LearningCurvePruner(), 1)
    high, high_steps = run(LearningCurvePruner(), 1, sign=-1.0)
    assert low_steps == high_steps
    assert [t.state for t in low.trials] == [t.state for t in high.trials]
    assert TrialState.PRUNED in {t.state for t in high.trials}


def test_conservative_gates() -> None:
    pruner = LearningCurvePruner(min_steps=6, min_finished_trials=8, n_best=2)
    study, _ = run(pruner, 2)
    first_complete = [t.number for t in study.trials if t.state == TrialState.COMPLETE][:8]
    assert first_complete == list(range(8))  # nothing pruned before 8 trials completed
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and all(len(t.intermediate_values) >= 6 for t in pruned)

    # Direct calls: a NaN report prunes; a trial at the final step never is.
    def frozen(values: list[float]) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(
            state=TrialState.RUNNING,
            intermediate_values={i + 1: v for i, v in enumerate(values)},
            params={},
        )

    assert pruner.prune(study, frozen([1.0, math.nan]))
    assert not pruner.prune(study, frozen([1.0]))
    assert not pruner.prune(study, frozen([100.0] * N_REPORTS))
    assert pruner.prune(study, frozen([100.0] * 10))


def test_self_calibration_absorbs_a_biased_predictor() -> None:
    class Pessimist:
        """Predicts the last value plus one: far worse than anything finishes."""

        def predict(self, steps: np.ndarray, values: np.ndarray, target_step: float) -> float:
            return float(values[-1]) + 1.0

    full, _ = run(optuna.pruners.NopPruner(), 0)
    study, _ = run(LearningCurvePruner(predictor=Pessimist()), 0)
    assert study.best_trial.number == full.best_trial.number
    # A zero confidence allowance trusts the raw predictions: then it prunes far more.
    harsh, harsh_steps = run(LearningCurvePruner(predictor=Pessimist(), confidence=0.0), 0)
    _, calibrated_steps = run(LearningCurvePruner(predictor=Pessimist()), 0)
    assert harsh_steps < calibrated_steps


def test_one_pruner_for_several_in_memory_studies() -> None:
    # Every in-memory study is study 0 of its own storage: the pruner's caches must not carry
    # one study's calibration into the next.
    def decision(pruner: LearningCurvePruner, final_offset: float) -> bool:
        study = optuna.create_study(pruner=pruner)
        for k in range(5):  # finals = last report + final_offset
            reports = {s: 1.0 + 0.1 * k + 1.0 / (s + 1) for s in range(10)}
            study.add_trial(
                optuna.trial.create_trial(
                    value=reports[9] + final_offset, intermediate_values=reports
                )
            )
        trial = study.ask()
        for s in range(4):
            trial.report(3.0 + 1.0 / (s + 1), s)
        return trial.should_prune()

    def make() -> LearningCurvePruner:
        return LearningCurvePruner(min_steps=3, min_finished_trials=3, n_best=1)

    fresh = decision(make(), 0.0)
    shared = make()
    decision(shared, -10.0)  # finals far better than the curves promise
    assert decision(shared, 0.0) == fresh


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_value_to_beat_is_a_feasible_one(sign: float) -> None:
    def decision(constraints: list[float]) -> bool:
        study = optuna.create_study(direction="minimize" if sign > 0 else "maximize")
        pruner = LearningCurvePruner(
            min_steps=3, min_finished_trials=3, n_best=1, predictor=FemaleGenome.last_value()
        )
        for k, c in enumerate(constraints):  # flat curves: finals 1, 2, 3, 4, 5
            final = sign * (1.0 + k)
            study.add_trial(
                optuna.trial.create_trial(
                    value=final,
                    intermediate_values={s: final for s in range(10)},
                    constraints={"c": c},
                )
            )
        reports = {s: sign * 3.5 for s in range(4)}
        running = optuna.trial.create_trial(state=TrialState.RUNNING, intermediate_values=reports)
        return pruner.prune(study, running)

    assert decision([-1.0] * 5)  # 3.5 cannot beat the best, 1
    # The trials that ended at 1, 2 and 3 broke a constraint: the best feasible is 4.
    assert not decision([1.0, 1.0, 0.5, 0.0, -1.0])
    assert not decision([1.0] * 5)  # nothing feasible to beat yet
    assert decision([1.0, 1.0, 0.0, 0.0, 0.0])  # the best feasible is 3


def test_predictor_choice() -> None:
    fixed = FemaleGenome.last_value()
    assert LearningCurvePruner(predictor=fixed).predictor_for(optuna.create_study()) is fixed
    standalone, _ = run(LearningCurvePruner(), 0, n_trials=10)
    assert LearningCurvePruner().predictor_for(standalone) == DEFAULT_FEMALE

    sampler = GenderSampler(population_size=8, early_steps=8, seed=0)
    study, _ = run(LearningCurvePruner(), n_trials=40, sampler=sampler)
    population = load_females(study)
    assert population is not None and population.scored and population.n_males >= 5
    assert LearningCurvePruner().predictor_for(study) == population.best
    # Too little evidence for the pruner's own threshold: the default is used.
    assert LearningCurvePruner(min_finished_trials=1000).predictor_for(study) == DEFAULT_FEMALE


def test_pickled_pruner_prunes_like_a_new_one() -> None:
    # Its overhead (~0.1 ms a report) is measured in benchmarks/, not asserted here.
    settings = {"min_steps": 4, "margin": 0.2}
    used = LearningCurvePruner(**settings)
    run(used, 0)  # fills its caches of storage reads, which must not travel
    copy = pickle.loads(pickle.dumps(used))
    assert (copy._min_steps, copy._margin) == (4, 0.2)
    assert copy._female_cache == {} and copy._residuals == {}
    study, steps = run(copy, 1)
    fresh, fresh_steps = run(LearningCurvePruner(**settings), 1)
    assert [t.state for t in study.trials] == [t.state for t in fresh.trials]
    assert steps == fresh_steps
    assert any(t.state == TrialState.PRUNED for t in study.trials)


def test_steps_above_2_53() -> None:
    # Step counters in tokens or nanoseconds: the curve used to be looked up again by
    # int(float(step)), a KeyError for odd steps above 2**53.
    big = 2**53

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        for i in range(1, 11):
            trial.report(x + 1.0 / i, big + 1000 * i + 1)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return x + 0.1

    study = optuna.create_study(
        sampler=GenderSampler(population_size=3, n_top_males=2, n_top_females=2, early_steps=2),
        pruner=LearningCurvePruner(min_steps=2, min_finished_trials=2, n_best=1),
    )
    study.optimize(objective, n_trials=9)
    assert {t.state for t in study.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert all(min(t.intermediate_values) == big + 1001 for t in study.trials)
