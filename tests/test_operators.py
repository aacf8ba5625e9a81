"""Unit tests of the shared operators and the distribution helpers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState
import pytest

from optuna_evo.operators import BlendCrossover
from optuna_evo.operators import GaussianMutation
from optuna_evo.operators import ResetMutation
from optuna_evo.operators import TournamentSelection
from optuna_evo.operators import TruncationSelection
from optuna_evo.operators import UniformCrossover
from optuna_evo.operators import constraint_violation
from optuna_evo.operators import rank_trials
from optuna_evo.operators import select_elites
from optuna_evo.operators._space import contains
from optuna_evo.operators._space import from_internal
from optuna_evo.operators._space import sample_uniform
from optuna_evo.operators._space import to_internal
from optuna_evo.operators.trust import TrustWeightedSelection

DISTRIBUTIONS = [
    FloatDistribution(-1.0, 1.0),
    FloatDistribution(1e-7, 1.0, log=True),
    FloatDistribution(-10.2, 10.2, step=0.1),
    FloatDistribution(0.0, 1.0, step=0.3),  # high is not on the grid
    IntDistribution(0, 10),
    IntDistribution(1, 1000, log=True),
    IntDistribution(-9, 9, step=3),
    CategoricalDistribution(["a", 1, None, 2.5]),
]


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_operators_stay_inside_and_native(dist) -> None:
    rng = np.random.RandomState(0)
    ops = [
        lambda v, w: UniformCrossover(0.5)(dist, [v, w], rng),
        lambda v, w: BlendCrossover(2.0)(dist, [v, w], rng),
        lambda v, w: GaussianMutation(0.5)(dist, v, rng),
        lambda v, w: ResetMutation()(dist, v, rng),
    ]
    for _ in range(300):
        v, w = sample_uniform(dist, rng), sample_uniform(dist, rng)
        for op in ops:
            out = op(v, w)
            assert contains(dist, out), out
            if isinstance(dist, IntDistribution):
                assert type(out) is int
            elif isinstance(dist, FloatDistribution):
                assert type(out) is float


@pytest.mark.parametrize("dist", DISTRIBUTIONS[:-1])
def test_sample_uniform_reaches_both_ends(dist: FloatDistribution | IntDistribution) -> None:
    rng = np.random.RandomState(1)
    xs = [to_internal(dist, sample_uniform(dist, rng)) for _ in range(4000)]
    low, high = to_internal(dist, dist.low), to_internal(dist, dist.high)
    if dist.step is not None and not dist.log:
        # A grid (ints included): every point up to low + floor((high - low) / step) * step,
        # about 20 draws each for the 205 points of the finest grid.
        n_max = math.floor((dist.high - dist.low) / dist.step + 1e-9)
        assert {round((x - low) / dist.step) for x in xs} == set(range(n_max + 1))
        assert max(xs) == pytest.approx(dist.low + n_max * dist.step)
    else:
        # Continuous (internal) coordinates: the outer 5 % at each end holds ~200 draws.
        span = high - low
        assert min(xs) - low < 0.05 * span
        assert high - max(xs) < 0.05 * span


def test_from_internal_clamps_log_lower_bound() -> None:
    dist = FloatDistribution(1e-7, 1.0, log=True)
    assert from_internal(dist, math.log(1e-7) - 1e-12) == 1e-7
    assert from_internal(dist, 99.0) == 1.0


def test_blend_widens_interval_in_log_space() -> None:
    dist = FloatDistribution(1e-6, 1.0, log=True)
    rng = np.random.RandomState(0)
    outs = [BlendCrossover(0.5)(dist, [1e-4, 1e-2], rng) for _ in range(2000)]
    assert min(outs) < 1e-4 and max(outs) > 1e-2  # BLX-0.5 reaches past both parents
    assert min(outs) >= 1e-5 * 0.999 and max(outs) <= 1e-1 * 1.001  # one interval beyond


def test_gaussian_mutation_is_local() -> None:
    dist = FloatDistribution(0.0, 100.0)
    rng = np.random.RandomState(0)
    outs = np.array([GaussianMutation(0.01)(dist, 50.0, rng) for _ in range(2000)])
    assert abs(outs.std() - 1.0) < 0.1


def test_uniform_crossover_swapping_prob() -> None:
    dist = IntDistribution(0, 1)
    rng = np.random.RandomState(0)
    outs = [UniformCrossover(0.2)(dist, [0, 1], rng) for _ in range(5000)]
    assert abs(np.mean(outs) - 0.2) < 0.03


def _study_with_values(values: list[float], direction: str = "minimize") -> optuna.Study:
    study = optuna.create_study(direction=direction)
    for v in values:
        study.add_trial(optuna.create_trial(value=v, params={}, distributions={}))
    return study


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_rank_trials_direction_and_states(direction: str) -> None:
    study = _study_with_values([3.0, 1.0, 2.0], direction)
    study.add_trial(optuna.create_trial(state=TrialState.FAIL, params={}, distributions={}))
    ranked = rank_trials(study.trials, StudyDirection[direction.upper()])
    expected = [1, 2, 0] if direction == "minimize" else [0, 2, 1]
    assert [t.number for t in ranked] == expected


def test_constraint_violation_sums_the_positive_values_of_both_forms() -> None:
    assert constraint_violation(optuna.create_trial(value=0.0)) == 0.0
    feasible = optuna.create_trial(value=0.0, constraints={"a": -1.0, "b": 0.0})
    assert constraint_violation(feasible) == 0.0
    infeasible = optuna.create_trial(value=0.0, constraints={"a": 0.5, "b": -3.0, "c": 2.0})
    assert constraint_violation(infeasible) == pytest.approx(2.5)
    # The list a sampler's constraints_func stores (Optuna 4 and earlier).
    legacy = optuna.create_trial(value=0.0, system_attrs={"constraints": [1.0, -1.0, 0.25]})
    assert constraint_violation(legacy) == pytest.approx(1.25)
    nan = optuna.create_trial(value=0.0, system_attrs={"constraints": [math.nan]})
    assert constraint_violation(nan) == math.inf
    # Both forms: "constraints:0" replaces the list's entry 0, as FrozenTrial.constraints reads.
    both = {"constraints": [1.0, 0.5], "constraints:0": -1.0, "constraints:x": 2.0}
    mixed = optuna.create_trial(value=0.0, system_attrs=both)
    with pytest.warns(UserWarning, match="Overwrite an old format constraint"):
        assert sorted(mixed.constraints.values()) == [-1.0, 0.5, 2.0]
    assert constraint_violation(mixed) == pytest.approx(2.5)


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_rank_trials_puts_feasible_trials_first_then_the_least_violation(
    direction: str,
) -> None:
    study = optuna.create_study(direction=direction)
    rows = [  # (value, constraint): the best values are infeasible
        (0.0, 2.0),
        (10.0, 0.0),
        (5.0, -1.0),
        (1.0, 0.5),
        (9.0, 0.5),
    ]
    for value, c in rows:
        sign = 1.0 if direction == "minimize" else -1.0
        study.add_trial(optuna.create_trial(value=sign * value, constraints={"c": c}))
    study.add_trial(
        optuna.create_trial(
            state=TrialState.PRUNED, intermediate_values={1: 0.0}, constraints={"c": 1.0}
        )
    )
    study.add_trial(optuna.create_trial(state=TrialState.PRUNED, intermediate_values={1: 99.0}))
    ranked = rank_trials(study.trials, StudyDirection[direction.upper()])
    # Feasible by value, then infeasible by violation (ties by value); PRUNED ones last.
    assert [t.number for t in ranked] == [2, 1, 3, 4, 0, 6, 5]


def test_truncation_and_elites() -> None:
    study = _study_with_values([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    ranked = rank_trials(study.trials, StudyDirection.MINIMIZE)
    survivors = TruncationSelection(0.5).survivors(ranked, 6)
    assert [t.value for t in survivors] == [0.0, 1.0, 2.0]
    assert [t.value for t in select_elites(ranked, 2)] == [0.0, 1.0]
    picks = TruncationSelection(0.5).pick(survivors, 2, np.random.RandomState(0))
    assert len(set(picks)) == 2 and all(0 <= i < 3 for i in picks)


def test_tournament_prefers_better_ranks() -> None:
    rng = np.random.RandomState(0)
    sel = TournamentSelection(3)
    picks = [i for _ in range(2000) for i in sel.pick(list(range(10)), 1, rng)]
    counts = np.bincount(picks, minlength=10)
    assert counts[0] > counts[4] > counts[8]
    assert counts[8] == counts[9] == 0  # the two worst can never win a 3-way tournament


# -- argument checks (shared rules of optuna_evo._validation) -------------------------------


@pytest.mark.parametrize("k", [3, np.int64(3), 3.0, np.float32(3.0)])
def test_tournament_size_accepts_integral_numbers_as_a_python_int(k: object) -> None:
    sel = TournamentSelection(k)  # type: ignore[arg-type]
    assert sel.k == 3 and type(sel.k) is int


def test_operator_numbers_are_stored_as_python_floats() -> None:
    values = [
        GaussianMutation(np.float32(0.5)).sigma,
        BlendCrossover(np.int64(1)).alpha,
        UniformCrossover(np.float64(0.25)).swapping_prob,
        TruncationSelection(np.float32(0.5)).fraction,
        TrustWeightedSelection(decay=np.float32(0.5)).decay,
        TrustWeightedSelection(correct_reward=np.int64(3)).correct_reward,
    ]
    assert values == [0.5, 1.0, 0.25, 0.5, 0.5, 3.0]
    assert all(type(v) is float for v in values)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: TournamentSelection(0), r"`tournament_size` must be an integer >= 1, got 0\."),
        (lambda: TournamentSelection(2.5), r"`tournament_size`.*got 2\.5\."),
        (lambda: TournamentSelection(True), r"`tournament_size`.*got True\."),
        (
            lambda: GaussianMutation(math.nan),
            r"`mutation_sigma` must be a finite number > 0, got nan",
        ),
        (lambda: GaussianMutation(math.inf), r"`mutation_sigma`.*got inf\."),
        (lambda: BlendCrossover(math.nan), r"`blend_alpha` must be a finite number >= 0, got nan"),
        (lambda: UniformCrossover(1.5), r"`swapping_prob` must be a finite number in \[0, 1\]"),
        (lambda: TruncationSelection(0.0), r"`survival_fraction` .* in \(0, 1\], got 0\.0\."),
        (lambda: TrustWeightedSelection(decay="0.2"), r"`decay` .* in \[0, 1\), got '0\.2'"),
        (lambda: TrustWeightedSelection(inheritance=math.nan), r"`inheritance`.*got nan"),
        (lambda: TrustWeightedSelection(correct_reward=math.inf), r"`correct_reward`.*got inf"),
        (lambda: TrustWeightedSelection(reward="exp"), r"`reward` must be one of \('linear',"),
        (
            lambda: TrustWeightedSelection(wrong_penalty=10.0),
            r"`wrong_penalty`=10\.0 must be < `correct_reward`=10\.0\.",
        ),
    ],
)
def test_bad_operator_arguments_raise_one_wording(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
