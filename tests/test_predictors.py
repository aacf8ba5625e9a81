"""Tests of the learning-curve families, female genomes and their fitness."""

from __future__ import annotations

from collections.abc import Callable
import json
import math

from evo_testing import assert_names_rule
import numpy as np
import optuna
from optuna.study import StudyDirection
import pytest

from optuna_evo.predictors import DEFAULT_FEMALE
from optuna_evo.predictors import FAMILIES
from optuna_evo.predictors import GENE_SPACE
from optuna_evo.predictors import FemaleGenome
from optuna_evo.predictors import FemalePopulation
from optuna_evo.predictors import MaleCurve
from optuna_evo.predictors import RankedFemale
from optuna_evo.predictors import early_speed
from optuna_evo.predictors import evaluate_female
from optuna_evo.predictors import fit_curve
from optuna_evo.predictors import rank_correlation
from optuna_evo.predictors import rank_females
from optuna_evo.predictors import trial_curve
from optuna_evo.predictors.curves import CLIP_SPANS
from optuna_evo.predictors.curves import ends_finite
from optuna_evo.predictors.population import speed_window
from optuna_evo.predictors.surrogate import RandomFeatureEnsemble


def _only(family: str, **kwargs: float) -> FemaleGenome:
    weights = tuple(1.0 if f == family else 0.0 for f in FAMILIES)
    return FemaleGenome(weights=weights, **kwargs)  # type: ignore[arg-type]


def crossing_curves(
    n: int, rng: np.random.RandomState, n_steps: int = 40, noise: float = 0.01
) -> list[MaleCurve]:
    """Power-law loss curves where fast starters plateau higher, so early ranks mislead."""
    t = np.arange(1, n_steps + 1, dtype=float)
    males = []
    for _ in range(n):
        speed = rng.uniform(0.0, 1.0)
        floor = 0.5 + 0.8 * speed + rng.uniform(0.0, 0.6)
        clean = floor + 2.0 * t ** -(0.2 + 1.3 * speed)
        males.append(MaleCurve.from_arrays(t, clean + rng.normal(0.0, noise, n_steps), clean[-1]))
    return males


# -- curve families ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "family, curve",
    [
        ("pow3", lambda x: 1.0 + 2.0 * x**-0.7),
        ("exp3", lambda x: 1.0 + 2.0 * np.exp(-0.1 * x)),
        ("logpower", lambda x: 3.0 / (1.0 + (x / 5.0) ** 0.8)),
        ("linear", lambda x: 5.0 - 0.01 * x),
        ("pow3", lambda x: 0.9 - 0.5 * x**-0.5),  # an increasing (accuracy-like) curve
    ],
)
def test_family_extrapolates_its_own_curve(family: str, curve) -> None:
    steps = np.arange(0, 12, dtype=float)
    values = curve(steps + 1.0)  # the families see x = step + 1
    truth = float(curve(np.array([61.0]))[0])
    predicted = _only(family).predict(steps, values, 60)
    last = float(values[-1])
    # Much closer to the truth than the last value is (grids are coarse, so not exact).
    assert abs(predicted - truth) < 0.25 * abs(last - truth) + 1e-9, (predicted, truth, last)


@pytest.mark.parametrize(
    "steps, values, expected",
    [
        ([], [], math.nan),
        ([3], [2.5], 2.5),
        ([1, 2, 3, 4], [1.0, 1.0, 1.0, 1.0], 1.0),
        ([1, 2, 3], [math.nan, math.inf, 0.7], 0.7),
    ],
)
def test_degenerate_prefixes_fall_back_to_last_value(steps, values, expected) -> None:
    for genome in (DEFAULT_FEMALE, _only("pow3"), _only("logpower"), _only("linear")):
        predicted = genome.predict(steps, values, 100)
        if math.isnan(expected):
            assert math.isnan(predicted)
        else:
            assert predicted == pytest.approx(expected)


def test_predictions_finite_and_clipped_on_random_curves() -> None:
    rng = np.random.RandomState(0)
    for _ in range(200):
        n = rng.randint(2, 15)
        steps = np.sort(rng.choice(1000, size=n, replace=False)).astype(float)
        values = rng.normal(0, 10, n) * rng.choice([1e-6, 1.0, 1e6])
        fit = fit_curve(steps, values)
        target = steps[-1] + rng.randint(1, 10_000)
        preds = fit.predict(target)
        assert preds.shape == (len(FAMILIES),)
        assert np.isfinite(preds).all()
        span = values.max() - values.min()
        pace = max(1.0, (target - steps[-1]) / (steps[-1] - steps[0]))
        assert np.all(np.abs(preds - values[-1]) <= CLIP_SPANS * span * pace * (1 + 1e-9))
    # Unsorted input and a target before the end.
    assert DEFAULT_FEMALE.predict([3, 1, 2], [1.0, 3.0, 2.0], 1) == pytest.approx(1.0)


def test_predictions_of_many_power_law_curves_rank_like_the_truth() -> None:
    # Its speed (~0.07 ms a call) is measured in benchmarks/, not asserted here.
    rng = np.random.RandomState(0)
    steps = np.arange(1, 21, dtype=float)
    shapes = [(rng.uniform(1, 3), rng.uniform(0.2, 1.5)) for _ in range(300)]
    predicted = [DEFAULT_FEMALE.predict(steps, 1 + a * steps**-b, 200) for a, b in shapes]
    truth = [1 + a * 201.0**-b for a, b in shapes]  # the families see x = step + 1
    assert np.isfinite(predicted).all()
    assert rank_correlation(predicted, truth) > 0.9


# -- genomes ---------------------------------------------------------------------------------


def test_genome_round_trips_through_json() -> None:
    rng = np.random.RandomState(0)
    for _ in range(20):
        genome = FemaleGenome.random(rng)
        data = json.loads(json.dumps(genome.to_dict()))
        assert FemaleGenome.from_dict(data) == genome
        assert FemaleGenome.from_genes(genome.genes()) == genome
        assert len(json.dumps(data)) < 250  # small in storage
    population = FemalePopulation(3, 4, 10, (RankedFemale(None, DEFAULT_FEMALE, 0.5, 0.9, 0.8),))
    assert FemalePopulation.from_dict(json.loads(json.dumps(population.to_dict()))) == population


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"weights": (1.0, 0.0)}, "weights"),
        ({"weights": (1.0, -1.0, 0.0, 0.0, 0.0)}, "weights"),
        ({"weights": (1.0, math.nan, 0.0, 0.0, 0.0)}, "weights"),
        ({"window": 0}, "window"),
        ({"window": 2.5}, "window"),
        ({"horizon": 0.0}, "horizon"),
        ({"bias": math.inf}, "bias"),
    ],
)
def test_bad_genome(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument) as info:
        FemaleGenome(**kwargs)
    assert_names_rule(info.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"weights": (1.0, -1.0, 0.0, 0.0, 0.0)}, r"`weights\[1\]` must be a finite number >= 0"),
        ({"weights": (1.0, 0.0, 0.0, 0.0, True)}, r"`weights\[4\]`.*got True\."),
        ({"window": True}, r"`window` must be an integer >= 1, got True\."),
        ({"window": math.inf}, r"`window`.*got inf\."),
        ({"horizon": math.inf}, r"`horizon` must be a finite number > 0, got inf\."),
        ({"bias": math.nan}, r"`bias` must be a finite number, got nan\."),
    ],
)
def test_bad_genome_raises_one_wording(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FemaleGenome(**kwargs)


def test_genome_stores_numpy_and_integral_numbers_as_python_values() -> None:
    genome = FemaleGenome(
        weights=tuple(np.float32(w) for w in (0.5, 0.0, 0.25, 0.25, 0.0)),
        window=np.int64(8),
        horizon=np.float64(2.0),
        bias=np.int8(0),
    )
    assert genome == FemaleGenome((0.5, 0.0, 0.25, 0.25, 0.0), 8, 2.0, 0.0)
    assert {type(w) for w in genome.weights} == {float}
    assert type(genome.window) is int and type(genome.horizon) is float
    assert type(genome.bias) is float
    assert json.loads(json.dumps(genome.to_dict()))["window"] == 8
    assert FemaleGenome(window=8.0).window == 8 and type(FemaleGenome(window=8.0).window) is int


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_members": np.float64(1.5)}, r"`n_members` must be an integer >= 2, got"),
        ({"n_features": True}, r"`n_features` must be an integer >= 1, got True\."),
        ({"alpha": math.inf}, r"`alpha` must be a finite number > 0, got inf\."),
        ({"lengthscale_range": (0.1, math.inf)}, r"`lengthscale_range\[1\]`.*got inf\."),
        ({"lengthscale_range": (0.0, 1.0)}, r"`lengthscale_range\[0\]` .* > 0, got 0\.0\."),
        ({"lengthscale_range": (1.0, 0.5)}, r"`lengthscale_range` must be \(low, high\)"),
    ],
)
def test_bad_surrogate_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RandomFeatureEnsemble(**kwargs)


def test_surrogate_stores_python_numbers() -> None:
    ensemble = RandomFeatureEnsemble(
        n_members=np.int64(4), n_features=16.0, alpha=np.float32(0.5), lengthscale_range=(1, 2)
    )
    assert (ensemble.n_members, ensemble.n_features) == (4, 16)
    assert type(ensemble.n_members) is int and type(ensemble.n_features) is int
    assert type(ensemble.alpha) is float and ensemble.alpha == 0.5
    assert ensemble.lengthscale_range == (1.0, 2.0)
    assert {type(v) for v in ensemble.lengthscale_range} == {float}


def test_crossover_and_mutation_stay_in_gene_space() -> None:
    rng = np.random.RandomState(1)
    a, b = FemaleGenome.random(rng), FemaleGenome.random(rng)
    children = [a.crossover(b, rng).mutate(rng, 1.0) for _ in range(100)]
    for child in children:
        for name, value in child.genes().items():
            dist = GENE_SPACE[name]
            assert dist._contains(dist.to_internal_repr(value)), (name, value)
    assert len(set(children)) > 90  # they vary
    assert a.mutate(rng, 0.0) == a
    assert a.crossover(a, rng) == a  # BLX-α of equal parents is that parent
    # Without mutation, BLX-0.5 draws from [lo - d/2, hi + d/2] (d = hi - lo) in each gene's
    # internal coordinate (log for ``horizon``), clamped to GENE_SPACE, which only pulls a value
    # inwards. The slack is the stored rounding alone: to the nearest integer for ``window``,
    # to 6 decimals (at most 5e-7; in log space 5e-7 / 0.25 at the smallest horizon) otherwise.
    slack = {name: 5e-7 for name in GENE_SPACE} | {"window": 0.5, "horizon": 5e-7 / 0.25}
    genes_a, genes_b = a.genes(), b.genes()
    reach: list[float] = []  # how far outside the parents' interval, in units of d
    for child in (a.crossover(b, rng) for _ in range(50)):
        for name, value in child.genes().items():
            x, lo, hi = value, *sorted((genes_a[name], genes_b[name]))
            if name == "horizon":
                x, lo, hi = math.log(x), math.log(lo), math.log(hi)
            d = hi - lo
            assert lo - 0.5 * d - slack[name] <= x <= hi + 0.5 * d + slack[name], (name, value)
            if name != "window" and d > 0.1:
                reach.append(max(lo - x, x - hi, 0.0) / d)
    assert max(reach) > 0.4  # the widening is used: more than BLX-0.4 (or plain interval)


# -- fitness ---------------------------------------------------------------------------------


def test_rank_correlation() -> None:
    assert rank_correlation([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert rank_correlation([1, 1, 1], [1, 2, 3]) == 0.0


def test_fitness_needs_three_males_and_rewards_accuracy() -> None:
    rng = np.random.RandomState(0)
    males = crossing_curves(30, rng)
    assert evaluate_female(DEFAULT_FEMALE, males[:2], 8).fitness is None
    good = evaluate_female(DEFAULT_FEMALE, males, 8)
    # A predictor that overshoots the extrapolation badly is worse on every count.
    bad = evaluate_female(_only("linear", horizon=4.0), males, 8)
    assert good.n_males == 30
    assert good.fitness is not None and bad.fitness is not None
    assert good.fitness > bad.fitness and good.error < bad.error  # type: ignore[operator]
    ranked = rank_females([(7, _only("linear", horizon=4.0)), (None, DEFAULT_FEMALE)], males, 8)
    assert [m.trial for m in ranked] == [None, 7]
    assert ranked[0].fitness == good.fitness
    # Unscored candidates keep their order.
    assert [m.trial for m in rank_females([(1, DEFAULT_FEMALE), (2, DEFAULT_FEMALE)], [], 8)] == [
        1,
        2,
    ]


def test_males_use_only_their_first_reports() -> None:
    rng = np.random.RandomState(0)
    (male,) = crossing_curves(1, rng)
    early = male.predict(DEFAULT_FEMALE, 5)
    assert early == pytest.approx(DEFAULT_FEMALE.predict(male.steps[:5], male.values[:5], 40))
    # Changing the later reports cannot change a prediction from the first five.
    tampered = MaleCurve.from_arrays(male.steps, np.r_[male.values[:5], np.zeros(35)], 0.0)
    assert tampered.predict(DEFAULT_FEMALE, 5) == pytest.approx(early)


def test_evolved_females_beat_last_value_in_rank_correlation() -> None:
    """Evolve females on 60 finished males; compare on 200 held-out males."""
    k = 8  # of 40 reports
    gains = []
    for seed in range(3):
        rng = np.random.RandomState(seed)
        train, held_out = crossing_curves(60, rng), crossing_curves(200, rng)
        candidates = [(i, FemaleGenome.random(rng)) for i in range(10)]
        top: list[RankedFemale] = []
        for generation in range(8):
            ranked = rank_females(candidates + [(m.trial, m.genome) for m in top], train, k)
            top = ranked[:4]
            candidates = []
            for i in range(10):
                a, b = rng.choice(len(top), size=2, replace=False)
                child = top[a].genome.crossover(top[b].genome, rng).mutate(rng, 0.3)
                candidates.append((100 * (generation + 1) + i, child))
        evolved = evaluate_female(top[0].genome, held_out, k)
        last = evaluate_female(FemaleGenome.last_value(), held_out, k)
        assert evolved.rho > last.rho + 0.02, (seed, evolved, last)  # type: ignore[operator]
        assert evolved.error < last.error  # type: ignore[operator]
        gains.append(evolved.rho - last.rho)  # type: ignore[operator]
    print(f"held-out rank correlation gain over last value: {np.round(gains, 3)}")


# -- early speed -------------------------------------------------------------------------------


def test_early_speed_formula() -> None:
    steps, values = [10, 20, 30, 40], [4.0, 3.0, 2.0, 1.0]
    # (4 - 2) / (30 - 10): the drop per step between the first and third reports.
    assert early_speed(steps, values, 3) == pytest.approx(0.1)
    assert early_speed(steps, values, 3, StudyDirection.MAXIMIZE) == pytest.approx(-0.1)
    assert early_speed(steps, values, 4) == pytest.approx(0.1)
    assert early_speed(steps, values, 1) == -4.0
    assert early_speed(steps, values, 1, StudyDirection.MAXIMIZE) == 4.0
    # A given window: values interpolated linearly at its ends (3.5 at 15, 1.5 at 35).
    assert early_speed(steps, values, 3, window=(15.0, 35.0)) == pytest.approx(0.1)
    assert early_speed(steps, values, 1, window=(25.0, 25.0)) == pytest.approx(-2.5)
    assert early_speed([], [], 3) is None
    assert early_speed([1], [1.0], 3) is None
    assert early_speed([1, 2], [math.nan, 1.0], 3) is None
    fast, slow = [5.0, 2.0, 1.0], [5.0, 4.5, 4.0]
    assert early_speed([1, 2, 3], fast, 3) > early_speed([1, 2, 3], slow, 3)  # type: ignore[operator]


def test_early_speed_is_neutral_for_a_curve_that_stops_short() -> None:
    # The old code measured a run pruned after 5 reports over steps 1..5, where the curve is
    # steeper than over the 1..8 of a full run, so pruning made a run look faster.
    steps = np.arange(1, 41, dtype=float)
    values = 1.0 + 2.0 / (1.0 + steps)
    assert early_speed(steps, values, 8) == pytest.approx((values[0] - values[7]) / 7.0)
    assert early_speed(steps[:5], values[:5], 8) is None
    assert early_speed(steps[:5], values[:5], 3, window=(1.0, 8.0)) is None
    assert early_speed(steps[3:], values[3:], 3, window=(1.0, 8.0)) is None  # starts late


def test_early_speed_does_not_divide_by_the_first_value() -> None:
    # Maximised accuracies starting at 0: the old relative speed divided by |v_1| + 1e-12
    # and ranked the crawling curve ~1e9 times faster than the jumping ones.
    crawl, jump, jump_higher = [0.0, 0.005, 0.01], [0.01, 0.4, 0.8], [0.1, 0.6, 0.9]
    speeds = [
        early_speed([0, 1, 2], v, 3, StudyDirection.MAXIMIZE) for v in (crawl, jump, jump_higher)
    ]
    assert speeds == pytest.approx([0.005, 0.395, 0.4])


def test_speed_window_puts_step_grids_on_common_steps() -> None:
    # One curve shape on a dense grid (1, 2, 3, ...) and, shifted down, on a sparse one
    # (2, 5, 8, ...): compared over one range they improve equally fast.
    dense = np.arange(1, 21, dtype=float)
    sparse = np.arange(2, 21, 3, dtype=float)
    dense_values = 1.0 + 2.0 / (1.0 + dense)
    sparse_values = 0.95 + 2.0 / (1.0 + sparse)
    curves = [(dense, dense_values), (sparse, sparse_values)]
    window = speed_window(curves, 3)
    assert window == (2.0, 8.0)  # the latest first and third reports
    speeds = [early_speed(s, v, 3, window=window) for s, v in curves]
    assert speeds[0] == pytest.approx(speeds[1])
    assert speed_window(curves, 1) == (2.0, 2.0)
    assert speed_window([(dense[:2], dense_values[:2])], 3) is None
    # Non-finite reports do not count as reports.
    assert speed_window([([1, 2, 3, 4], [1.0, math.nan, 0.5, 0.4])], 3) == (1.0, 4.0)


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: early_speed([1, 2], [2.0, 1.0], 0), "early_steps"),
        (lambda: early_speed([1, 2], [2.0, 1.0], 0, window=(1.0, 2.0)), "early_steps"),
        (lambda: early_speed([1, 2], [2.0, 1.0], 2, window=(2.0, 1.0)), "window"),
        (lambda: early_speed([1, 2], [2.0, 1.0], 2, window=(math.nan, 1.0)), "window"),
        (lambda: speed_window([([1, 2], [2.0, 1.0])], 0), "early_steps"),
    ],
)
def test_early_speed_bad_arguments(call: Callable[[], object], argument: str) -> None:
    with pytest.raises(ValueError, match=argument) as info:
        call()
    assert_names_rule(info.value)


def test_trial_curve_keeps_steps_above_2_53() -> None:
    # Steps were looked up again as int(float(step)), which loses odd steps above 2**53.
    big = 2**53
    reports = {big + 3: 0.3, big + 1: 0.1, 7: 0.0, big + 2: 0.2}
    trial = optuna.trial.create_trial(value=0.3, intermediate_values=reports, params={})
    steps, values = trial_curve(trial)
    assert values.tolist() == [0.0, 0.1, 0.2, 0.3]
    assert steps.tolist() == [7.0, float(big + 1), float(big + 2), float(big + 3)]


@pytest.mark.parametrize("genome", [DEFAULT_FEMALE, FemaleGenome.last_value(), _only("linear")])
def test_predict_is_nan_when_the_last_report_diverged(genome: FemaleGenome) -> None:
    # A run that blew up must not be predicted from the finite start before the blow-up.
    steps = [3, 1, 2, 4]  # unsorted: "last" means the largest step
    assert math.isnan(genome.predict(steps, [1.5, 3.0, 2.0, math.nan], 20))
    assert math.isnan(genome.predict(steps, [1.5, 3.0, 2.0, -math.inf], 20))
    assert math.isfinite(genome.predict(steps, [1.5, 3.0, math.nan, 1.0], 20))
    assert math.isfinite(genome.predict(steps, [math.nan, 3.0, 2.0, 1.0], 20))
    assert ends_finite([], []) and ends_finite([1, 2], [math.nan, 1.0])
    assert not ends_finite([2, 1], [math.inf, 1.0])
