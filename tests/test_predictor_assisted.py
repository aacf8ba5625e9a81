"""Predictor-assisted evolution: architecture crossover, skip/residual genes, the surrogate,
the duplicate cache and the stability guard (issue 7's acceptance tests).

The contract every sampler keeps (Optuna's suite, workers, faults) runs for the assisted
configurations in ``test_sampler_contract.py``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
import statistics
import sys
import textwrap
from typing import Any
import uuid

from evo_testing import assert_names_rule
from evo_testing import run_workers
from evo_testing import storage_for
import numpy as np
import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.study import StudyDirection
from optuna.trial import TrialState
import pytest
import torch
from torch import nn

import optuna_evo
from optuna_evo import Architecture
from optuna_evo import ArchitectureSpace
from optuna_evo import GeneticSampler
from optuna_evo import MAGESampler
from optuna_evo import suggest_architecture
from optuna_evo.objectives.models import MLP
from optuna_evo.operators import BaseMutation
from optuna_evo.operators.crossover import architecture_crossover
from optuna_evo.predictors.duplicates import CONFIG_HASH_KEY
from optuna_evo.predictors.duplicates import config_hash
from optuna_evo.predictors.duplicates import nearest_untaken
from optuna_evo.predictors.surrogate import BaseSurrogate
from optuna_evo.predictors.surrogate import ParamEncoder
from optuna_evo.predictors.surrogate import RandomFeatureEnsemble
from optuna_evo.predictors.surrogate import SurrogateModel
from optuna_evo.samplers import PredictorAssist
from optuna_evo.samplers import assist_summary
from optuna_evo.samplers._assist import Candidate
from optuna_evo.samplers._assist import best_parent_value
from optuna_evo.samplers._assist import fit_scorer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.problems import get_problem  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)

GENES = {
    "layers": [[12, 16, 3], [12, 32, 16, 3], [12, 16, 16, 16, 3]],
    "activations": ["relu", "tanh", "gelu"],
    "blocks": ["linear", "residual"],
    "skips": True,
    "layer_activations": True,
    "max_layers": 5,
}


def _records(study: optuna.Study) -> list[dict]:
    # The very first trial has nothing to draw from, hence no record.
    return [
        t.system_attrs["optuna_evo:assist"]
        for t in study.trials
        if "optuna_evo:assist" in t.system_attrs
    ]


def _lineage(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> optuna_evo.Lineage:
    info = optuna_evo.lineage(trial, study)
    assert info is not None
    return info


# --- architecture genome ---------------------------------------------------------------------


def _random_architecture(space: ArchitectureSpace, rng: np.random.RandomState) -> Architecture:
    arch = space.sample(rng)
    for _ in range(int(rng.randint(6))):
        arch, _ = space.mutate(arch, rng)
    return arch


def _layers(arch: Architecture) -> list[tuple[int, str, str]]:
    return list(zip(arch.widths[1:-1], arch.activations, arch.blocks))


def _random_wired(rng: np.random.RandomState) -> Architecture:
    # Any valid skip edge (i, j), j >= i + 2, not only the space's k -> k + 2: long edges
    # cross cuts and overshoot short children, which is where skip bookkeeping goes wrong.
    n = int(rng.randint(1, 8))
    edges = [(i, j) for i in range(n) for j in range(i + 2, n + 1) if rng.rand() < 0.35]
    return Architecture(
        [12, *(int(w) for w in rng.choice([8, 16, 32], n)), 3],
        [str(v) for v in rng.choice(["relu", "tanh", "gelu"], n)],
        dropout=float(rng.choice([0.0, 0.2])),
        skips=edges,
        blocks=[str(v) for v in rng.choice(["linear", "residual"], n)],
    )


def test_crossover_children_only_contain_parents_genes() -> None:
    space = ArchitectureSpace.from_dict(GENES)
    rng = np.random.RandomState(0)
    mixed = both = crossing = dropped = 0
    for k in range(400):
        # Alternate the space's genomes (what the samplers cross) with arbitrarily wired ones.
        first, second = (
            _random_architecture(space, rng) if k % 2 else _random_wired(rng) for _ in range(2)
        )
        child, (a, b) = architecture_crossover(first, second, rng)
        n_a, n_b, n = first.n_hidden, second.n_hidden, child.n_hidden
        # The documented cut: c in 1 .. max(n_a, n_b) - 1, spliced at min(c, n) in each parent.
        if max(n_a, n_b) >= 2:
            assert any((a, b) == (min(c, n_a), min(c, n_b)) for c in range(1, max(n_a, n_b)))
        assert n == a + n_b - b and min(n_a, n_b) <= n <= max(n_a, n_b)
        # Layer k is the first parent's layer k before the cut, else the second's, shifted.
        assert _layers(child) == _layers(first)[:a] + _layers(second)[b:]
        # Each edge travels with its source layer; edges whose target overshoots the child's
        # output layer are dropped. Exactly these: a lost (or invented) edge fails here.
        shift = a - b
        from_first = {(i, j) for i, j in first.skips if i < a and j <= n}
        from_second = {
            (i + shift, j + shift) for i, j in second.skips if i >= b and j + shift <= n
        }
        assert set(child.skips) == from_first | from_second, (first, second, child, (a, b))
        assert (child.n_inputs, child.n_outputs, child.dropout) == (
            first.n_inputs,
            first.n_outputs,
            first.dropout,
        )
        mixed += 0 < a < n_a or (a > 0 and b < n_b)
        both += bool(from_first and from_second)
        crossing += any(j > a for _, j in from_first)
        dropped += any(i < a and j > n for i, j in first.skips) or any(
            i >= b and j + shift > n for i, j in second.skips
        )
    # Measured at writing (seed 0): mixed 383, both 44, crossing 75, dropped 88.
    assert mixed > 300  # most crossovers really combine both parents
    assert both >= 30  # children holding skip edges of both parents
    assert crossing >= 40 and dropped >= 40  # both edge rules are exercised


def test_crossover_keeps_the_first_parent_when_there_is_no_interior_cut() -> None:
    one = Architecture([4, 8, 2], "relu")
    other = Architecture([4, 5, 2], "tanh")
    assert architecture_crossover(one, other, np.random.RandomState(0)) == (one, (1, 1))
    with pytest.raises(ValueError, match="input/output"):
        architecture_crossover(one, Architecture([5, 8, 2], "relu"), np.random.RandomState(0))


def test_architecture_space_params_round_trip() -> None:
    space = ArchitectureSpace.from_dict(GENES)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    archs: list[Architecture] = []
    study.optimize(lambda t: archs.append(suggest_architecture(t, GENES)) or 0.0, n_trials=30)
    assert any(a.skips for a in archs) and any("residual" in a.blocks for a in archs)
    assert any(len(set(a.activations)) > 1 for a in archs)
    for trial, arch in zip(study.trials, archs):
        assert trial.distributions == space.param_distributions(arch.n_hidden)
        assert space.from_params(trial.params) == arch
        assert space.to_params(arch) == trial.params
        assert all(j == i + 2 for i, j in arch.skips)


def test_mutations_toggle_skips_and_change_blocks() -> None:
    space = ArchitectureSpace.from_dict(GENES)
    rng = np.random.RandomState(1)
    arch = space.sample(rng)
    ops = set()
    for _ in range(500):
        before = arch
        arch, op = space.mutate(arch, rng)
        ops.add(op)
        assert space.min_layers <= arch.n_hidden <= space.max_layers
        assert all(j == i + 2 for i, j in arch.skips)
        if op == "toggle_skip":
            assert len(set(arch.skips) ^ set(before.skips)) == 1
            assert arch.widths == before.widths and arch.blocks == before.blocks
        if op == "change_block":
            assert sum(x != y for x, y in zip(arch.blocks, before.blocks)) == 1
        if op == "change_activation":  # per-layer activations: one layer changes
            assert sum(x != y for x, y in zip(arch.activations, before.activations)) == 1
    assert ops == {
        "add_layer",
        "remove_layer",
        "change_width",
        "change_activation",
        "change_block",
        "toggle_skip",
    }


def test_default_space_keeps_the_old_parameters() -> None:
    space = ArchitectureSpace.from_dict({"layers": [[4, 8, 2]], "activations": ["relu", "tanh"]})
    assert list(space.param_distributions(2)) == [
        "arch_n_hidden",
        "arch_width_0",
        "arch_width_1",
        "arch_activation",
    ]


@pytest.mark.parametrize(
    ("space", "argument"),
    [
        ({"layers": [[4, 8, 2]], "blocks": ["conv"]}, "blocks"),
        ({"layers": [[4, 8, 2]], "blocks": []}, "blocks"),
        ({"layers": [[4, 8, 2]], "skips": "yes"}, "skips"),
        ({"layers": [[4, 8, 2]], "layer_activations": 1}, "layer_activations"),
    ],
)
def test_bad_genome_options(space: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument) as info:
        ArchitectureSpace.from_dict(space)
    assert_names_rule(info.value)


# --- the MLP with skip / residual genes ---------------------------------------------------


def test_skip_and_residual_mlp_parameter_count_by_hand() -> None:
    arch = Architecture(
        [10, 16, 16, 8, 3],
        ["relu", "tanh", "gelu"],
        skips=[(0, 2), (1, 3)],
        blocks=["residual", "residual", "residual"],
    )
    linears = (10 * 16 + 16) + (16 * 16 + 16) + (16 * 8 + 8) + (8 * 3 + 3)
    residual = 10 * 16 + 0 + 16 * 8  # projections where a block's widths differ (10->16, 16->8)
    skips = 0 + 16 * 8  # (0, 2): 16 -> 16 identity; (1, 3): hidden 1 (16) -> output input (8)
    model = MLP(arch)
    assert model.n_params == linears + residual + skips
    assert isinstance(model.residual_projections["1"], nn.Identity)
    assert model.residual_projections["0"].bias is None


def test_residual_block_adds_its_projected_input() -> None:
    torch.manual_seed(0)
    model = MLP(Architecture([4, 8, 8, 3], ["tanh", "relu"], blocks=["residual", "residual"]))
    x = torch.randn(5, 4)
    lin, proj = model.linears, model.residual_projections
    h0 = torch.tanh(lin[0](x)) + proj["0"](x)
    h1 = torch.relu(lin[1](h0)) + h0
    torch.testing.assert_close(model(x), lin[2](h1))


def test_skip_connection_mlp_trains() -> None:
    torch.manual_seed(0)
    x = torch.randn(256, 12)
    y = (x[:, :3].sum(dim=1) > 0).long() + (x[:, 3] > 1).long()
    arch = Architecture(
        [12, 16, 24, 16, 3],
        "relu",
        skips=[(0, 2), (1, 3)],
        blocks=["residual", "linear", "residual"],
    )
    model = MLP(arch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.grad is not None for p in model.parameters())


# --- MAGE and GA with architecture crossover ------------------------------------------------


def _arch_objective(trial: optuna.Trial) -> float:
    arch = suggest_architecture(trial, GENES)
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    trial.set_user_attr("architecture", arch.to_dict())
    linear = arch.blocks.count("linear")
    return abs(arch.n_hidden - 3) + abs(math.log10(lr) + 2) + 0.2 * linear + arch.widths[1] / 100


def test_mage_children_are_crossovers_of_their_parents_plus_recorded_mutations() -> None:
    sampler = MAGESampler(
        "multi", GENES, population_size=6, n_elites=1, crossover_prob=1.0, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(_arch_objective, n_trials=60)
    by_id = {t._trial_id: t for t in study.trials}
    unmutated = 0
    for t in study.trials:
        info = _lineage(study, t)
        arch = Architecture.from_dict(t.user_attrs["architecture"])
        assert Architecture.from_dict(t.system_attrs["optuna_evo:architecture"]) == arch
        if info.role != "child":
            continue
        first, second = (
            Architecture.from_dict(by_id[i].system_attrs["optuna_evo:architecture"])
            for i in info.parent_ids
        )
        a, b = t.system_attrs["optuna_evo:arch_crossover"]
        if "optuna_evo:arch_mutation" not in t.system_attrs:
            unmutated += 1
            assert _layers(arch) == _layers(first)[:a] + _layers(second)[b:]
        # Hyperparameters come from either parent (then maybe mutate).
        assert t.system_attrs["optuna_evo:mutation_prob"] > 0
    assert unmutated >= 10


def test_genetic_sampler_evolves_architectures_as_a_whole() -> None:
    sampler = GeneticSampler(population_size=6, architecture_space=GENES, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_arch_objective, n_trials=40)
    children = [t for t in study.trials if _lineage(study, t).role == "child"]
    assert len(children) > 20
    for t in children:
        planned = Architecture.from_dict(t.system_attrs["optuna_evo:architecture"])
        assert planned == Architecture.from_dict(t.user_attrs["architecture"])
        assert "optuna_evo:arch_crossover" in t.system_attrs


def test_a_study_resumed_with_other_input_widths_evolves_on() -> None:
    # One more input feature: parents planned for 12 inputs cross and mutate into 13-input
    # children (crossing them as they were raised a ValueError in before_trial).
    wider = {**GENES, "layers": [[13, *layers[1:]] for layers in GENES["layers"]]}

    def objective(trial: optuna.Trial) -> float:
        arch = suggest_architecture(trial, wider)
        trial.set_user_attr("architecture", arch.to_dict())
        return float(sum(arch.widths[1:-1]))

    study = optuna.create_study()
    study.sampler = GeneticSampler(population_size=4, architecture_space=GENES, seed=0)
    study.optimize(_arch_objective, n_trials=12)
    study.sampler = GeneticSampler(population_size=4, architecture_space=wider, seed=0)
    study.optimize(objective, n_trials=12)
    for t in study.trials[12:]:
        planned = Architecture.from_dict(t.system_attrs["optuna_evo:architecture"])
        assert planned.n_inputs == 13
        assert planned == Architecture.from_dict(t.user_attrs["architecture"])
    assert any(_lineage(study, t).role == "child" for t in study.trials[12:])


# --- surrogate ----------------------------------------------------------------------------


def test_surrogate_learns_a_smooth_function_with_uncertainty() -> None:
    rng = np.random.RandomState(0)
    x = rng.rand(120, 4)
    y = ((x - 0.3) ** 2).sum(axis=1)
    model = RandomFeatureEnsemble().fit(x, y, np.random.RandomState(1))
    test = rng.rand(200, 4)
    mean, std = model.predict(test)
    truth = ((test - 0.3) ** 2).sum(axis=1)
    assert np.corrcoef(mean, truth)[0, 1] > 0.95
    assert np.all(std >= 0)
    again = RandomFeatureEnsemble().fit(x, y, np.random.RandomState(1)).predict(test)
    np.testing.assert_array_equal(again[0], mean)
    np.testing.assert_array_equal(again[1], std)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_surrogate_is_more_uncertain_far_from_its_data(seed: int) -> None:
    # The std is the members' disagreement: bootstrap fits agree where they saw data and
    # diverge when extrapolating, which is what makes ``mean - kappa * std`` explore. Measured
    # ratios of the medians are 15-28 on these seeds; a constant or noise-level std gives ~1.
    rng = np.random.RandomState(seed)
    x = 0.5 * rng.rand(120, 4)  # the lower corner [0, 0.5]^4 only
    y = ((x - 0.3) ** 2).sum(axis=1)
    model = RandomFeatureEnsemble().fit(x, y, np.random.RandomState(seed + 1))
    _, std_seen = model.predict(x)
    _, std_far = model.predict(0.5 + 0.5 * rng.rand(200, 4))  # the opposite corner
    assert np.median(std_far) > 5 * np.median(std_seen)
    assert np.median(std_seen) < 0.5 * y.std()  # measured 0.14-0.19: confident on its data


def test_encoder_handles_missing_and_foreign_values() -> None:
    dists = {
        "lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True),
        "kind": optuna.distributions.CategoricalDistribution([True, 1, "a"]),
    }
    rows = ParamEncoder(dists).encode([{"lr": 1e-4, "kind": 1}, {"kind": True}, {"lr": 7.0}])
    # columns: kind (3 one-hot), lr, lr missing
    np.testing.assert_array_equal(rows, [[0, 1, 0, 0, 0], [1, 0, 0, 0.5, 1], [0, 0, 0, 1, 0]])


def _sign(direction: str) -> float:
    """+1 when minimising, -1 when maximising: ``sign * f`` is the objective to optimise."""
    return 1.0 if direction == "minimize" else -1.0


def _best_values(
    problem: str, n_trials: int, assist: PredictorAssist | None, direction: str = "minimize"
) -> list[float]:
    """Best values of 5 seeded runs, as minimised values (maximising runs ``-f``)."""
    objective, sign = get_problem(problem).objective, _sign(direction)
    out = []
    for seed in range(5):
        sampler = GeneticSampler(
            population_size=10, crossover="blend", mutation="gaussian", seed=seed, assist=assist
        )
        study = optuna.create_study(direction=direction, sampler=sampler)
        study.optimize(lambda t: sign * objective(t), n_trials=n_trials)
        out.append(sign * study.best_value)
    return out


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_surrogate_assisted_ga_beats_the_same_ga_at_equal_evaluations(direction: str) -> None:
    plain = _best_values("sphere", 120, None, direction)
    assist = PredictorAssist(n_candidates=16, deduplicate=False)
    assisted = _best_values("sphere", 120, assist, direction)
    # Measured at writing: medians 7.2 (plain) and 0.49 (assisted) on the 10-D sphere.
    assert statistics.median(assisted) < 0.5 * statistics.median(plain), (plain, assisted)


class _SpySurrogate(BaseSurrogate):
    """A scripted surrogate over one parameter ``x`` in [0, 1] that records what it is given.

    It predicts ``mean = mean_sign * u`` and ``std = u``, ``u`` being the encoded ``x`` (the
    first column of the encoder, ``x`` itself on [0, 1]), so which candidate an optimistic
    score prefers is known in advance.
    """

    def __init__(self, mean_sign: float = 1.0) -> None:
        self.mean_sign = mean_sign
        self.fitted_targets: list[list[float]] = []  # ``y`` of every fit, in call order
        self.predicted: list[np.ndarray] = []  # ``u`` of every predict call, in call order

    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.RandomState) -> SurrogateModel:
        assert x.shape[0] == y.shape[0]
        self.fitted_targets.append([float(v) for v in y])
        return _SpyModel(self)


class _SpyModel(SurrogateModel):
    def __init__(self, owner: _SpySurrogate) -> None:
        self.owner = owner

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = x[:, 0].copy()
        self.owner.predicted.append(u)
        return self.owner.mean_sign * u, u


def _exploration_choices(n_trials: int, **options: Any) -> list[tuple[np.ndarray, float, bool]]:
    """``(pool, kept, explored)`` of every surrogate-scored choice of a seeded study.

    The spy predicts ``mean = x`` (kappa=0: the best-scored candidate is the pool's lowest
    ``x``); reset mutation at rate 1 makes each pool ``n_candidates`` distinct uniform draws.
    ``_choose`` is wrapped only to see the pool it is offered; what was kept is read back from
    the trial's record (its predicted mean is the kept ``x``).
    """
    from optuna_evo.samplers import _population

    pools: list[np.ndarray] = []
    real_choose = _population._choose

    def spy_choose(pool: list[Candidate], scorer: Any, rate: float, rng: Any) -> Any:
        if scorer is not None:
            pools.append(np.array([c.params["x"] for c in pool]))
        return real_choose(pool, scorer, rate, rng)

    assist = PredictorAssist(
        n_candidates=6,
        surrogate=_SpySurrogate(),
        kappa=0.0,
        min_trials=4,
        deduplicate=False,
        **options,
    )
    sampler = GeneticSampler(
        population_size=4, mutation="reset", mutation_prob=1.0, assist=assist, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_population, "_choose", spy_choose)
        study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=n_trials)
    records = [r for r in _records(study) if r["predicted"] is not None]
    # No cache and no guard: one choice per assisted trial, in trial order.
    assert len(pools) == len(records) >= n_trials - 6
    assert all(len(set(pool)) == 6 for pool in pools)
    return [(pool, r["predicted"], r["explored"]) for pool, r in zip(pools, records)]


def _within_binomial(count: int, n: int, p: float) -> bool:
    # Four standard deviations: seeded runs are deterministic, and a fair stream stays inside.
    return abs(count - n * p) <= 4 * math.sqrt(n * p * (1 - p))


def test_exploration_rate_keeps_random_candidates() -> None:
    assert PredictorAssist().exploration_rate == 0.1  # the documented default
    for rate, n_trials in [(0.0, 40), (1.0, 60), (0.3, 120), (None, 120)]:
        options = {} if rate is None else {"exploration_rate": rate}
        choices = _exploration_choices(n_trials, **options)
        n, explored, not_best = len(choices), 0, 0
        kept_at: set[int] = set()  # pool positions an explored choice kept
        for pool, kept, flag in choices:
            at = int(np.argmin(np.abs(pool - kept)))
            assert pool[at] == pytest.approx(kept, abs=1e-12)  # a candidate of the pool
            if flag:
                explored += 1
                not_best += int(kept > pool.min())
                kept_at.add(at)
            else:  # exploiting keeps the best-scored candidate
                assert kept == pytest.approx(pool.min(), abs=1e-12)
        p = 0.1 if rate is None else rate
        assert _within_binomial(explored, n, p), (rate, explored, n)
        # An explored candidate is uniform over the pool: the best one only 1/6 of the time.
        assert _within_binomial(not_best, explored, 5 / 6), (rate, not_best, explored)
        if rate == 1.0:
            assert explored == n and kept_at == set(range(6)), kept_at  # every position kept
    # Measured at writing: explored 0/36, 56/56, 34/116, 11/116; of those not best 48, 27, 9.


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
@pytest.mark.parametrize(("kappa", "keeps_highest"), [(0.0, False), (2.0, True)])
def test_kappa_weighs_the_uncertainty_in_the_choice_of_a_candidate(
    direction: str, kappa: float, keeps_highest: bool
) -> None:
    # The spy predicts a mean of u (-u when maximising, so u is always worse) and a std of u:
    # the optimistic score is (1 - kappa) * u. kappa=0 keeps the best predicted mean (the
    # lowest u); kappa=2 lets the uncertainty win and keeps the highest u.
    spy = _SpySurrogate(mean_sign=_sign(direction))
    assist = PredictorAssist(
        n_candidates=6,
        surrogate=spy,
        kappa=kappa,
        exploration_rate=0.0,
        min_trials=4,
        deduplicate=False,
    )
    sampler = GeneticSampler(population_size=4, mutation="gaussian", assist=assist, seed=0)
    study = optuna.create_study(direction=direction, sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=20)
    # Without guard or cache a trial scores its pool once, then predicts the kept child alone.
    calls = spy.predicted
    choices = [(pool, kept) for pool, kept in zip(calls, calls[1:]) if len(pool) == 6]
    records = [r for r in _records(study) if r["predicted"] is not None]
    assert len(choices) == len(records) >= 12
    spread = 0
    for (pool, kept), record in zip(choices, records):
        assert len(kept) == 1 and record["predicted"] == pytest.approx(spy.mean_sign * kept[0])
        assert kept[0] == (pool.max() if keeps_highest else pool.min())
        spread += pool.min() < pool.max()
    assert spread >= 10  # the pools really offered a choice


def test_the_surrogate_trains_on_the_newest_max_train_trials_only() -> None:
    spy = _SpySurrogate()
    assist = PredictorAssist(
        n_candidates=2, surrogate=spy, min_trials=3, max_train_trials=5, deduplicate=False
    )
    study = optuna.create_study(sampler=GeneticSampler(population_size=4, assist=assist, seed=0))

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        return float(trial.number)  # a fit's targets name the trials it was trained on

    study.optimize(objective, n_trials=20)
    fits = spy.fitted_targets
    assert fits
    for targets in fits:
        newest = int(targets[-1])
        # The newest COMPLETE trials, in order, at most max_train_trials of them.
        assert targets == [float(n) for n in range(max(0, newest - 4), newest + 1)]
    assert sum(len(targets) == 5 for targets in fits) >= 10  # the cap bound most fits
    assert max(int(targets[-1]) for targets in fits) == 18


def test_drawn_configuration_is_what_the_trial_uses() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1.0, 1.0)
        lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        n = trial.suggest_int("n", 0, 10, step=2)
        flag = trial.suggest_categorical("flag", [None, True, 1.5, "1"])  # None is the best
        return x * x + abs(math.log10(lr) + 3) + abs(n - 4) + (flag is not None)

    study = optuna.create_study(
        sampler=GeneticSampler(population_size=4, assist=PredictorAssist(min_trials=4), seed=0)
    )
    study.optimize(objective, n_trials=30)
    assert any(t.params["flag"] is None for t in study.trials[1:])
    for t in study.trials[1:]:  # the very first trial has no known space to draw from
        assert t.system_attrs["optuna_evo:candidate"] == t.params
        assert t.system_attrs[CONFIG_HASH_KEY] == config_hash(t.params)
        assert t.user_attrs["optuna_evo:assist"] == t.system_attrs["optuna_evo:assist"]


# --- duplicate cache ----------------------------------------------------------------------

SMALL_SPACE_SRC = """
def objective(trial):
    a = trial.suggest_categorical("a", ["x", "y", "z"])
    b = trial.suggest_int("b", 0, 2)
    c = trial.suggest_float("c", 0.0, 1.0, step=0.5)
    return b + c + (a == "y")
"""
_ns: dict = {}
exec(SMALL_SPACE_SRC, _ns)
small_objective = _ns["objective"]
SMALL_SPACE_SIZE = 27

DEDUP_SAMPLERS = {
    "genetic": "GeneticSampler(population_size=4, seed={seed}, assist=PredictorAssist("
    "n_candidates=1, surrogate=None))",
    "genetic-surrogate": "GeneticSampler(population_size=4, mutation='gaussian', seed={seed}, "
    "assist=PredictorAssist(n_candidates=4, min_trials=4))",
    "mage": "MAGESampler(population_size=4, n_elites=0, crossover_prob=0.5, seed={seed}, "
    "assist=PredictorAssist(n_candidates=4, min_trials=4))",
}


def _make(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    namespace = {
        "GeneticSampler": GeneticSampler,
        "MAGESampler": MAGESampler,
        "PredictorAssist": PredictorAssist,
    }
    return eval(DEDUP_SAMPLERS[name].format(seed=seed), namespace)


def _configs(study: optuna.Study) -> list[tuple]:
    return [tuple(sorted(t.params.items())) for t in study.get_trials(deepcopy=False)]


@pytest.mark.parametrize("name", list(DEDUP_SAMPLERS))
def test_no_configuration_is_evaluated_twice_until_the_space_is_exhausted(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    for seed in range(3):
        study = optuna.create_study(sampler=_make(name, seed))
        study.optimize(small_objective, n_trials=SMALL_SPACE_SIZE)
        assert len(set(_configs(study))) == SMALL_SPACE_SIZE
    # Exhausted: the next child is a duplicate, accepted with a warning.
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            study.optimize(small_objective, n_trials=1)
    finally:
        optuna.logging.disable_propagation()
    assert "space may be exhausted" in caplog.text
    assert study.trials[-1].system_attrs["optuna_evo:assist"]["fallback"] == "accepted_duplicate"


def test_finished_trials_without_a_hash_count_as_taken() -> None:
    # Trials added with study.add_trial, or run before assist was on, carry no stored hash.
    dists = {
        "a": optuna.distributions.CategoricalDistribution(["x", "y", "z"]),
        "b": optuna.distributions.IntDistribution(0, 2),
        "c": optuna.distributions.FloatDistribution(0.0, 1.0, step=0.5),
    }
    study = optuna.create_study(sampler=GeneticSampler(population_size=4, seed=0))
    study.optimize(small_objective, n_trials=4)
    first = set(_configs(study))
    for a, b in (("x", 0), ("y", 1), ("z", 2)):
        params = {"a": a, "b": b, "c": 0.5}
        study.add_trial(
            optuna.trial.create_trial(params=params, distributions=dists, value=float(b))
        )
    first |= set(_configs(study)[4:])
    study.sampler = _make("genetic", 0)
    study.optimize(small_objective, n_trials=12)
    later = _configs(study)[len(first) :]
    assert len(set(later)) == len(later) and not set(later) & first


def test_a_custom_operators_numpy_values_are_stored_natively_with_assist(tmp_path) -> None:
    class NumpyUniform(BaseMutation):
        def __call__(self, distribution: Any, value: Any, rng: Any) -> Any:
            if isinstance(distribution, optuna.distributions.IntDistribution):
                return np.int64(rng.randint(distribution.low, distribution.high + 1))
            return np.float64(rng.uniform(distribution.low, distribution.high))

    sampler = GeneticSampler(
        population_size=4,
        mutation=NumpyUniform(),
        mutation_prob=1.0,
        seed=0,
        assist=PredictorAssist(n_candidates=1, surrogate=None),
    )
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'np.db'}", sampler=sampler)
    study.optimize(lambda t: t.suggest_int("n", 0, 50) + t.suggest_float("x", 0, 1), n_trials=12)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    for t in study.trials[4:]:
        assert t.system_attrs["optuna_evo:candidate"] == t.params
        assert type(t.params["n"]) is int and type(t.params["x"]) is float


def test_random_agents_candidates_are_the_architectures_they_run() -> None:
    # GeneticSampler with an architecture space: a random trial's candidate drew one depth to
    # pick its genes and another for arch_n_hidden.
    genes = {"layers": [[12, 16, 3]], "activations": ["relu", "tanh"], "max_layers": 4}

    def objective(trial: optuna.Trial) -> float:
        return float(sum(suggest_architecture(trial, genes).widths[1:-1]))

    sampler = GeneticSampler(
        population_size=10,
        architecture_space=genes,
        seed=0,
        assist=PredictorAssist(n_candidates=1, surrogate=None),
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=10)
    for t in study.trials[1:]:
        assert t.system_attrs["optuna_evo:candidate"] == t.params, t.number


def test_the_same_ga_without_the_cache_repeats_configurations() -> None:
    # The check above can fail: the plain GA revisits configurations of this space.
    study = optuna.create_study(sampler=GeneticSampler(population_size=4, seed=0))
    study.optimize(small_objective, n_trials=SMALL_SPACE_SIZE)
    assert len(set(_configs(study))) < SMALL_SPACE_SIZE


def test_a_running_configuration_is_taken() -> None:
    def objective(trial: optuna.Trial) -> float:
        return float(trial.suggest_categorical("k", [0, 1, 2]))

    assist = PredictorAssist(n_candidates=1, surrogate=None)
    study = optuna.create_study(sampler=GeneticSampler(population_size=4, assist=assist, seed=0))
    study.optimize(objective, n_trials=1)
    running = study.ask()
    objective(running)  # suggested, never told: RUNNING
    second = study.ask()
    objective(second)
    values = {study.trials[0].params["k"], running.params["k"], second.params["k"]}
    assert values == {0, 1, 2}
    stored = study._storage.get_trial_system_attrs(second._trial_id)[CONFIG_HASH_KEY]
    assert stored == config_hash(second.params)


def test_hash_counts_equal_values_as_one_configuration() -> None:
    assert config_hash({"a": -0.0, "b": 1}) == config_hash({"b": 1, "a": 0.0})
    assert config_hash({"a": np.float64(0.25), "b": np.int64(3)}) == config_hash(
        {"a": 0.25, "b": 3}
    )
    assert config_hash({"flag": np.bool_(True)}) == config_hash({"flag": True})
    assert config_hash({"a": 1}) != config_hash({"a": 1.0}) != config_hash({"a": True})


def test_hash_is_rewritten_from_the_actual_params_in_conditional_spaces() -> None:
    def objective(trial: optuna.Trial) -> float:
        kind = trial.suggest_categorical("kind", ["a", "b"])
        x = trial.suggest_float("x_a", 0, 1) if kind == "a" else trial.suggest_int("x_b", 0, 5)
        return float(x)

    study = optuna.create_study(
        sampler=GeneticSampler(population_size=4, assist=PredictorAssist(min_trials=4), seed=0)
    )
    study.optimize(objective, n_trials=24)
    for t in study.trials:
        assert t.system_attrs[CONFIG_HASH_KEY] == config_hash(t.params)


def test_nearest_untaken_changes_as_few_parameters_as_possible() -> None:
    dists = {
        "a": optuna.distributions.CategoricalDistribution(["x", "y"]),
        "b": optuna.distributions.IntDistribution(0, 3),
        "c": optuna.distributions.FloatDistribution(0, 1),  # infinite: never changed
    }
    params = {"a": "x", "b": 0, "c": 0.5}
    rng = np.random.RandomState(0)
    near = {config_hash({"a": "x", "b": b, "c": 0.5}) for b in range(4)} | {
        config_hash({"a": "y", "b": 0, "c": 0.5})
    }
    assert nearest_untaken(params, dists, near, rng) in [
        {"a": "y", "b": b, "c": 0.5} for b in (1, 2, 3)
    ]
    assert nearest_untaken(params, dists, near, rng, frozen=["a"]) is None


def test_the_fallback_claims_its_configuration_against_a_racing_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A rival worker takes each configuration this trial is about to claim, at the same
    # instant: first the child's (so the retries are spent and the fallback runs), then the
    # fallback's nearest untaken one. The trial must lose both races and keep a third.
    from optuna_evo.samplers import _population

    def objective(trial: optuna.Trial) -> float:
        return float(trial.suggest_int("k", 0, 5))

    assist = PredictorAssist(n_candidates=1, surrogate=None, max_retries=0)
    study = optuna.create_study(sampler=GeneticSampler(population_size=4, assist=assist, seed=0))
    study.optimize(objective, n_trials=2)
    storage, rivals = study._storage, []

    def rival_takes(value: str) -> None:
        rival = storage.create_new_trial(study._study_id)  # RUNNING, like another worker's
        storage.set_trial_system_attr(rival, CONFIG_HASH_KEY, value)
        rivals.append(value)

    real_claim, real_nearest = _population.claim, _population.nearest_untaken

    def racing_claim(storage_: object, study_id: int, trial_id: int, value: str) -> object:
        if not rivals:
            rival_takes(value)
        return real_claim(storage_, study_id, trial_id, value)

    def racing_nearest(*args: object, **kwargs: object) -> object:
        params = real_nearest(*args, **kwargs)
        if params is not None and len(rivals) == 1:
            rival_takes(config_hash(params))
        return params

    monkeypatch.setattr(_population, "claim", racing_claim)
    monkeypatch.setattr(_population, "nearest_untaken", racing_nearest)
    study.optimize(objective, n_trials=1)
    last = study.get_trials(states=(TrialState.COMPLETE,))[-1]  # rivals came after it
    stats = last.system_attrs[optuna_evo.samplers._assist.ASSIST_KEY]
    assert len(rivals) == 2 and stats["races"] == 2 and stats["fallback"] == "nearest_untaken"
    assert last.system_attrs[CONFIG_HASH_KEY] not in set(rivals)
    assert last.params not in [t.params for t in study.trials[:2]]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_two_processes_never_evaluate_a_configuration_twice(kind: str, tmp_path: Path) -> None:
    expr, storage = storage_for(kind, tmp_path)
    name = f"dedup-{uuid.uuid4().hex}"
    study = optuna.create_study(study_name=name, storage=storage, sampler=_make("genetic", 0))
    # One finished trial first: a worker's very first trial has no known space to draw a
    # configuration from (see PredictorAssist), so it is only hashed when it finishes.
    study.optimize(small_objective, n_trials=1)
    # Each worker's first trial waits (in its objective) until the other worker runs one too,
    # so the two processes provably run side by side however the OS schedules them; the
    # short sleep then keeps later trials interleaving.
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    prologue = f"""
    import os, pathlib, time
    _first = []
    def side_by_side():
        if not _first:
            _first.append(True)
            (pathlib.Path({str(barrier)!r}) / str(os.getpid())).touch()
            deadline = time.monotonic() + 120
            while len(os.listdir({str(barrier)!r})) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        time.sleep(0.05)
    """
    slow = textwrap.dedent(prologue) + SMALL_SPACE_SRC.replace(
        "    return", "    side_by_side()\n    return"
    )
    sampler = (
        "optuna_evo.GeneticSampler(population_size=4, "
        "assist=optuna_evo.samplers.PredictorAssist(n_candidates=1, surrogate=None))"
    )
    run_workers(expr, name, sampler, slow, n_workers=2, n_trials=(SMALL_SPACE_SIZE - 1) // 2)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == SMALL_SPACE_SIZE and all(t.state == TrialState.COMPLETE for t in trials)
    assert len(set(_configs(study))) == SMALL_SPACE_SIZE
    # The barrier held: the workers' first trials (the first two after trial 0) overlapped.
    first, second = sorted(trials[1:], key=lambda t: t.datetime_start)[:2]
    assert second.datetime_start < first.datetime_complete


# --- stability guard ----------------------------------------------------------------------


def _guarded_study(
    threshold: float, max_retries: int = 10, direction: str = "minimize"
) -> optuna.Study:
    assist = PredictorAssist(
        n_candidates=2, min_trials=6, stability_threshold=threshold, max_retries=max_retries
    )
    sampler = GeneticSampler(
        population_size=6, mutation="reset", mutation_prob=0.5, assist=assist, seed=0
    )
    return optuna.create_study(direction=direction, sampler=sampler)


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_stability_guard_rejects_children_predicted_much_worse_and_logs_the_rate(
    caplog: pytest.LogCaptureFixture, direction: str
) -> None:
    sign, problem = _sign(direction), get_problem("sphere")
    study = _guarded_study(threshold=5.0, direction=direction)
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level(logging.INFO, logger="optuna.optuna_evo"):
            study.optimize(lambda t: sign * problem.objective(t), n_trials=60)
    finally:
        optuna.logging.disable_propagation()
    summary = assist_summary(study)
    records = _records(study)
    assert summary["guard_rejections"] == sum(r["rejected"] for r in records) > 0
    assert summary["guard_checks"] == sum(r["guard_checks"] for r in records)
    rate = summary["guard_rejections"] / summary["guard_checks"]
    assert summary["guard_rejection_rate"] == pytest.approx(rate) and 0 < rate < 1
    assert "stability guard rejected" in caplog.text and "in this study so far" in caplog.text
    # Every child the guard let through was predicted within the threshold of its best parent.
    by_id = {t._trial_id: t for t in study.trials}
    checked = 0
    for t in study.trials[1:]:
        r = t.system_attrs["optuna_evo:assist"]
        if r["guard_checks"] and r["fallback"] is None:
            # "Worse" in the study's direction: higher when minimising, lower when maximising.
            parents = [sign * by_id[i].value for i in _lineage(study, t).parent_ids]
            assert sign * r["predicted"] - min(parents) <= 5.0 + 1e-9
            checked += 1
    assert checked > 10


def test_stability_guard_gives_up_after_bounded_retries(caplog: pytest.LogCaptureFixture) -> None:
    study = _guarded_study(threshold=0.0, max_retries=2)
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            study.optimize(get_problem("sphere").objective, n_trials=40)
    finally:
        optuna.logging.disable_propagation()
    records = _records(study)
    gave_up = [r for r in records if r["fallback"] == "accepted_after_guard"]
    assert gave_up and all(r["rejected"] == 3 for r in gave_up)
    assert "rejected by the stability guard" in caplog.text
    assert len(study.trials) == 40


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_the_guards_reference_is_the_best_feasible_parent(direction: str) -> None:
    sign = _sign(direction)
    parents = [
        optuna.create_trial(value=sign * 1.0, constraints={"c": 0.5}),  # best, infeasible
        optuna.create_trial(value=sign * 3.0, constraints={"c": -1.0}),
        optuna.create_trial(value=sign * 2.0, constraints={"c": 0.0}),  # best feasible
        optuna.create_trial(state=TrialState.PRUNED, intermediate_values={0: sign * 0.0}),
    ]
    direction_ = optuna.study.StudyDirection[direction.upper()]
    assert best_parent_value(parents, direction_) == sign * 2.0
    assert best_parent_value(parents[:1], direction_) == sign * 1.0  # none feasible
    unconstrained = [optuna.create_trial(value=sign * v) for v in (3.0, 1.0, math.inf)]
    assert best_parent_value(unconstrained, direction_) == sign * 1.0
    assert best_parent_value(parents[3:], direction_) is None


@pytest.mark.parametrize("infeasible", [0.5, 1e300, math.inf])
def test_the_constraint_surrogate_keeps_candidates_predicted_feasible(infeasible: float) -> None:
    # Minimise x where x < 0.5 breaks a constraint (by 0.5, by 1e300 or by inf, which
    # set_constraint accepts): the value surrogate alone would keep x = 0.1.
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    trials = [
        optuna.create_trial(
            params={"x": float(x)},
            distributions=space,
            value=float(x),
            constraints={"c": infeasible if x < 0.5 else -1.0},
        )
        for x in np.linspace(0, 1, 21)
    ]
    assist = PredictorAssist(n_candidates=2, min_trials=4, kappa=0.0)
    scorer = fit_scorer(assist, trials, space, StudyDirection.MINIMIZE, np.random.RandomState(0))
    assert scorer is not None and scorer.constraint_model is not None
    candidates = [Candidate({}, {"x": x}, space, str(x)) for x in (0.1, 0.6, 0.9)]
    predicted, _ = scorer.constraint_model.predict(scorer.encoder.encode([{"x": 0.1}]))
    assert predicted[0] > 0
    assert candidates[scorer.best(candidates)].params["x"] in (0.6, 0.9)
    # Without constraints the best predicted value wins.
    plain = [
        optuna.create_trial(params=t.params, distributions=space, value=t.value) for t in trials
    ]
    scorer = fit_scorer(assist, plain, space, StudyDirection.MINIMIZE, np.random.RandomState(0))
    assert scorer is not None and scorer.constraint_model is None
    assert candidates[scorer.best(candidates)].params == {"x": 0.1}


def test_a_loose_guard_never_rejects() -> None:
    study = _guarded_study(threshold=1e9)
    study.optimize(get_problem("sphere").objective, n_trials=30)
    summary = assist_summary(study)
    assert summary["guard_checks"] > 0 and summary["guard_rejections"] == 0


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"n_candidates": 0}, "n_candidates"),
        ({"n_candidates": 2.5}, "n_candidates"),
        ({"n_candidates": 4, "surrogate": None}, "n_candidates"),
        ({"surrogate": "gp"}, "surrogate"),
        ({"kappa": -1.0}, "kappa"),
        ({"kappa": float("nan")}, "kappa"),
        ({"exploration_rate": 1.5}, "exploration_rate"),
        ({"min_trials": 1}, "min_trials"),
        ({"min_trials": 10, "max_train_trials": 5}, "max_train_trials"),
        ({"deduplicate": "yes"}, "deduplicate"),
        ({"stability_threshold": -0.1}, "stability_threshold"),
        ({"stability_threshold": 1.0, "n_candidates": 1, "surrogate": None}, "surrogate"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 10**6}, "max_retries"),
    ],
)
def test_bad_assist_arguments(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument) as info:
        PredictorAssist(**kwargs)
    assert_names_rule(info.value)


def test_assist_options_are_stored_as_native_python_values() -> None:
    # Options read back from JSON or numpy must not leak numpy scalars into storage attrs.
    assist = PredictorAssist(
        n_candidates=np.int64(4), kappa=np.float32(0.5), min_trials=10.0, deduplicate=np.True_
    )
    assert (assist.n_candidates, assist.kappa, assist.min_trials) == (4, 0.5, 10)
    assert type(assist.n_candidates) is int and type(assist.min_trials) is int
    assert type(assist.kappa) is float and assist.deduplicate is True


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: GeneticSampler(assist="on"), "assist"),  # type: ignore[arg-type]
        (lambda: MAGESampler(assist={"n_candidates": 4}), "assist"),  # type: ignore[arg-type]
        (lambda: MAGESampler(crossover_prob=1.5), "crossover_prob"),
        (lambda: GeneticSampler(architecture_space={"layers": []}), "architecture_space"),
        (lambda: RandomFeatureEnsemble(n_members=1), "n_members"),
        (lambda: RandomFeatureEnsemble(n_features=0), "n_features"),
        (lambda: RandomFeatureEnsemble(alpha=0.0), "alpha"),
        (lambda: RandomFeatureEnsemble(lengthscale_range=(1.0, 0.5)), "lengthscale_range"),
    ],
)
def test_bad_sampler_arguments(make: object, argument: str) -> None:
    with pytest.raises(ValueError, match=argument) as info:
        make()  # type: ignore[operator]
    assert_names_rule(info.value)


def test_predictor_assist_is_experimental() -> None:
    with pytest.warns(ExperimentalWarning):
        PredictorAssist()
