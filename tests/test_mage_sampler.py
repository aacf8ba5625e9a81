"""Tests of MAGESampler, the architecture space and the evolution log."""

from __future__ import annotations

import csv
from pathlib import Path

from evo_testing import assert_names_rule
import numpy as np
import optuna
from optuna.distributions import IntDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

import optuna_evo
from optuna_evo import Architecture
from optuna_evo import ArchitectureSpace
from optuna_evo import GeneticSampler
from optuna_evo import MAGESampler
from optuna_evo import suggest_architecture

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {"layers": [[20, 32, 3], [20, 64, 32, 3]], "activations": ["relu", "tanh", "gelu"]}
INITIAL = {(tuple(w), a) for w in SPACE["layers"] for a in SPACE["activations"]}


def _arch_objective(trial: optuna.Trial) -> float:
    arch = suggest_architecture(trial, SPACE)
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    batch = trial.suggest_categorical("batch_size", [16, 32, 64])
    trial.set_user_attr("n_params", sum(a * b for a, b in zip(arch.widths, arch.widths[1:])))
    return abs(arch.n_hidden - 3) + abs(np.log10(lr) + 2) + batch / 64 + arch.widths[1] / 100


def _architectures(study: optuna.Study) -> list[tuple[tuple[int, ...], str]]:
    out = []
    for t in study.trials:
        n = t.params.get("arch_n_hidden", None)
        widths = [20] + [t.params[f"arch_width_{k}"] for k in range(n)] + [3]
        out.append((tuple(widths), t.params["arch_activation"]))
    return out


def test_single_mode_never_changes_the_architecture() -> None:
    sampler = MAGESampler("single", SPACE, population_size=5, mutation_prob=1.0, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_arch_objective, n_trials=25)
    assert set(_architectures(study)) == {((20, 32, 3), "relu")}
    assert len({t.params["lr"] for t in study.trials}) > 5  # hyperparameters still evolve


def test_multi_mode_goes_beyond_the_initial_list_within_bounds() -> None:
    sampler = MAGESampler("multi", SPACE, population_size=6, mutation_prob=1.0, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_arch_objective, n_trials=60)
    archs = _architectures(study)
    gen0 = [a for t, a in zip(study.trials, archs) if optuna_evo.lineage(t, study).generation == 0]
    assert set(gen0) <= INITIAL
    assert set(archs) - INITIAL, "no architecture outside the initial list appeared"
    # The documented default bounds, written out: min_layers 1, max_layers = deepest entry's
    # 2 hidden layers + 2, min_width = half the narrowest width 32, max_width = twice 64.
    space = ArchitectureSpace.from_dict(SPACE)
    bounds = (space.min_layers, space.max_layers, space.min_width, space.max_width)
    assert bounds == (1, 4, 16, 128)
    for t in study.trials:
        assert t.distributions["arch_n_hidden"] == IntDistribution(1, 4)
        for k in range(t.params["arch_n_hidden"]):
            assert t.distributions[f"arch_width_{k}"] == IntDistribution(16, 128, log=True)
    for widths, activation in archs:
        hidden = widths[1:-1]
        assert 1 <= len(hidden) <= 4
        assert all(16 <= w <= 128 for w in hidden)
        assert activation in SPACE["activations"]
    ops = {t.system_attrs.get("optuna_evo:arch_mutation") for t in study.trials} - {None}
    assert {"add_layer", "remove_layer", "change_width", "change_activation"} <= ops


def test_elites_reappear_with_identical_params_and_parent_link() -> None:
    sampler = MAGESampler("multi", SPACE, population_size=6, n_elites=2, mutation_prob=1.0, seed=1)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_arch_objective, n_trials=36)
    by_id = {t._trial_id: t for t in study.trials}
    elites = [t for t in study.trials if optuna_evo.lineage(t, study).role == "elite"]
    assert len(elites) == 10  # two per generation for generations 1..5
    for t in elites:
        (parent_id,) = optuna_evo.lineage(t, study).parent_ids
        parent = by_id[parent_id]
        assert t.params == parent.params
        assert t.system_attrs["optuna_evo:weight_noise"] == 0.0
    # Each generation opens with its elites, best first: slot k continues the k-th fittest
    # agent so far (fitness is the value: complexity_weight defaults to 0). (mu + lambda) never
    # drops the two fittest agents; an elite's continuation stands for the agent it carries on.
    # Distinct agents may tie (unmutated copies, lr clipped at a bound), so values are compared.
    roles = {t._trial_id: optuna_evo.lineage(t, study) for t in study.trials}
    for g in range(1, 6):
        opening = [t for t in study.trials if roles[t._trial_id].generation == g][:2]
        assert [roles[t._trial_id].role for t in opening] == ["elite", "elite"], g
        earlier = [t for t in study.trials if roles[t._trial_id].generation < g]
        carried = {roles[t._trial_id].parent_ids[0] for t in elites if t in earlier}
        agents = sorted(t.value for t in earlier if t._trial_id not in carried)
        continued = [by_id[roles[t._trial_id].parent_ids[0]].value for t in opening]
        assert continued == agents[:2], (g, continued, agents[:3])


def test_an_enqueued_agent_keeps_the_architecture_it_ran() -> None:
    sampler = MAGESampler("multi", SPACE, population_size=3, n_elites=1, seed=0)
    study = optuna.create_study(sampler=sampler)
    enqueued = {"arch_n_hidden": 3, "arch_activation": "tanh"}
    enqueued.update({f"arch_width_{k}": w for k, w in enumerate((40, 48, 56))})
    study.enqueue_trial(enqueued)

    def objective(trial: optuna.Trial) -> float:
        arch = suggest_architecture(trial, SPACE)
        return 0.0 if trial.number == 0 else 1.0 + sum(arch.widths) / 1000  # trial 0 is best

    study.optimize(objective, n_trials=9)
    ran = Architecture([20, 40, 48, 56, 3], "tanh")
    assert Architecture.from_dict(study.trials[0].system_attrs["optuna_evo:architecture"]) == ran
    elites = [t for t in study.trials if optuna_evo.lineage(t, study).role == "elite"]
    # Generation 1's elite continues it as it ran (its continuation then stands for it).
    assert optuna_evo.lineage(elites[0], study).parent_numbers == (0,)
    assert _architectures(study)[elites[0].number] == ((20, 40, 48, 56, 3), "tanh")


def _value(trial: FrozenTrial) -> float:
    assert trial.value is not None
    return trial.value


def test_rank_scaled_mutation_mutates_the_worst_agents_more() -> None:
    def objective(trial: optuna.Trial) -> float:
        return sum((trial.suggest_float(f"x{i}", -1, 1) - 0.5) ** 2 for i in range(12))

    worst, best = 1.0, 0.1
    sampler = MAGESampler(
        population_size=10,
        n_elites=0,
        mutation_prob=1.0,
        rank_factor=(worst, best),
        tournament_size=1,  # parents of every rank
        seed=0,
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=200)
    changed_by_rank: dict[int, list[float]] = {}
    for t in study.trials:
        info = optuna_evo.lineage(t, study)
        assert info is not None
        if info.role != "mutant":
            continue
        # The parent's rank in the population it was chosen from: fitness is the value alone
        # (complexity_weight=0); ties (an unmutated copy) keep trial order, as rank_trials says.
        population = sampler.get_parent_population(study, info.generation)
        ranked = [p.number for p in sorted(population, key=lambda p: (_value(p), p.number))]
        n = len(ranked)
        (parent,) = optuna_evo.parents(t, study)
        rank = ranked.index(parent.number)
        # The documented schedule, written out: mutation_prob * (best + (worst - best) * r/(n-1)).
        expected = 1.0 * (best + (worst - best) * rank / (n - 1))
        assert t.system_attrs["optuna_evo:mutation_prob"] == pytest.approx(expected), t.number
        changed = np.mean([t.params[k] != parent.params[k] for k in t.params])
        changed_by_rank.setdefault(rank, []).append(float(changed))
    top = [c for r in (0, 1, 2) for c in changed_by_rank.get(r, [])]
    bottom = [c for r in (7, 8, 9) for c in changed_by_rank.get(r, [])]
    assert len(top) > 20 and len(bottom) > 20, changed_by_rank
    # Expected shares 0.1-0.28 against 0.82-1.0 (seeded: 0.17 and 0.85).
    assert np.mean(top) < 0.3 < 0.7 < np.mean(bottom), (np.mean(top), np.mean(bottom))


def test_rank_factor_is_linear() -> None:
    sampler = MAGESampler(mutation_prob=0.5, rank_factor=(1.0, 0.3), population_size=5)
    probs = [sampler.mutation_prob_for_rank(r, 5) for r in range(5)]
    assert probs[0] == pytest.approx(0.15) and probs[-1] == pytest.approx(0.5)
    assert np.allclose(np.diff(probs), np.diff(probs)[0])


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_complexity_penalised_fitness(direction: str) -> None:
    sign = 1.0 if direction == "minimize" else -1.0
    study = optuna.create_study(direction=direction)
    for value, n_params in [(1.0, 1000), (1.05, 10), (2.0, 10)]:
        study.add_trial(
            optuna.create_trial(
                value=sign * value, params={}, distributions={}, user_attrs={"n_params": n_params}
            )
        )
    plain = MAGESampler(complexity_weight=0.0).rank(study.trials, study.direction)
    penalised = MAGESampler(complexity_weight=0.5).rank(study.trials, study.direction)
    assert [t.number for t in plain] == [0, 1, 2]
    assert [t.number for t in penalised] == [1, 0, 2]  # 1.05 + 0.005 beats 1.0 + 0.5
    custom = MAGESampler(complexity_weight=5.0, complexity_fn=lambda t: float(t.number == 1))
    assert [t.number for t in custom.rank(study.trials, study.direction)][-1] == 1


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"search_mode": "both"}, "search_mode"),
        ({"search_mode": "multi"}, "search_space"),
        ({"search_space": {}}, "layers"),
        ({"search_space": {"layers": []}}, "layers"),
        ({"search_space": {"layers": [[4, 2], [5, 2]]}}, "layers"),
        ({"search_space": {"layers": [[4, 8, 2]], "activations": ["swish"]}}, "activations"),
        ({"search_space": {"layers": [[4, 8, 2]], "widths": 3}}, "unknown keys"),
        ({"search_space": {"layers": [[4, 8, 2]], "max_width": None}}, "max_width"),
        ({"search_space": {"layers": [[4, 8, 2]], "max_layers": "two"}}, "max_layers"),
        ({"search_space": {"layers": [[4, 8, 2]], "min_width": 1.7}}, "min_width"),
        ({"search_space": {"layers": [[4, 8, 2]], "min_layers": True}}, "min_layers"),
        ({"rank_factor": (1.0, 0.0)}, "rank_factor"),
        ({"rank_factor": (1.5, 0.3)}, "rank_factor"),
        ({"rank_factor": (1.0,)}, "rank_factor"),
        ({"rank_factor": "ab"}, "rank_factor"),
        ({"rank_factor": (1.0, None)}, r"rank_factor\[1\]"),
        ({"weight_noise": None}, "weight_noise"),
        ({"seed": 1.5}, "seed"),
        ({"complexity_weight": float("nan")}, "complexity_weight"),
        ({"population_size": 1}, "population_size"),
        ({"n_elites": 10}, "n_elites"),
        ({"mutation_prob": 1.2}, "mutation_prob"),
        ({"complexity_weight": -1.0}, "complexity_weight"),
        ({"weight_noise": -0.1}, "weight_noise"),
        ({"tournament_size": 20}, "tournament_size"),
        ({"crossover_prob": -0.1}, "crossover_prob"),
        ({"assist": "on"}, "assist"),
        ({"complexity_fn": "n_params"}, "complexity_fn"),
        ({"mirror_user_attrs": "no"}, "mirror_user_attrs"),
        ({"search_space": {"layers": "abc"}}, "search_space"),
    ],
)
def test_bad_arguments(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument) as info:
        MAGESampler(**kwargs)
    assert_names_rule(info.value)


def test_rank_factor_may_be_a_numpy_pair() -> None:
    pair = MAGESampler(mutation_prob=0.5, rank_factor=np.array([1.0, 0.3]))
    plain = MAGESampler(mutation_prob=0.5, rank_factor=(1.0, 0.3))
    probs = [pair.mutation_prob_for_rank(r, 5) for r in range(5)]
    assert probs == [plain.mutation_prob_for_rank(r, 5) for r in range(5)]
    assert probs[0] == pytest.approx(0.15) and probs[-1] == pytest.approx(0.5)  # best, worst


def _xy_objective(trial: optuna.Trial) -> float:
    return (trial.suggest_float("x", -5, 5) - 1) ** 2 + (trial.suggest_float("y", -5, 5) + 2) ** 2


def test_elites_are_distinct_agents_carried_on_from_their_latest_state() -> None:
    # An agent and its own elite continuation once ranked 1st and 2nd: both elite slots went
    # to one agent, and the parent population filled with copies of it.
    study = optuna.create_study(sampler=MAGESampler(population_size=8, n_elites=2, seed=0))
    study.optimize(_xy_objective, n_trials=8 * 6)
    info = {t.number: optuna_evo.lineage(t, study) for t in study.trials}
    continued: dict[int, int] = {}  # agent -> generation of its first elite continuation
    for t in study.trials:
        if info[t.number].role == "elite":
            (parent,) = info[t.number].parent_numbers
            continued.setdefault(parent, info[t.number].generation)
    for t in study.trials:
        if info[t.number].role != "elite":
            continue
        (parent,) = info[t.number].parent_numbers
        # Never an agent that an earlier generation's elite already carried on.
        assert continued[parent] == info[t.number].generation, t.number
    for g in range(1, 6):
        elites = [t for t in study.trials if info[t.number].generation == g]
        elites = [t for t in elites if info[t.number].role == "elite"]
        parents = {info[t.number].parent_numbers for t in elites}
        assert len(elites) == len(parents) == 2, g


def test_a_failed_or_enqueued_trial_costs_no_generation_its_elite() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1, 1)
        info = optuna_evo.lineage(trial)
        assert info is not None
        if info.role == "elite" and info.generation == 1 and trial.number == 5:
            raise RuntimeError("CUDA out of memory")  # a transient failure
        return x * x

    study = optuna.create_study(sampler=MAGESampler(population_size=5, n_elites=1, seed=0))
    study.optimize(objective, n_trials=11, catch=(RuntimeError,))
    study.enqueue_trial({"x": 0.5})
    study.optimize(objective, n_trials=6)
    by_generation: dict[int, list[str]] = {}
    for t in study.trials:
        info = optuna_evo.lineage(t, study)
        assert info is not None
        if t.state == TrialState.COMPLETE:
            by_generation.setdefault(info.generation, []).append(info.role)
    for g in (1, 2):
        assert by_generation[g].count("elite") == 1, by_generation
    assert "enqueued" in by_generation[2]


def test_a_study_of_another_sampler_class_gets_its_elite() -> None:
    # Generation numbers are per sampler class: GeneticSampler's claim on trial 3 for its
    # generation 1 (an elite that was pruned, so trial 3 stays the best) is no claim on
    # MAGESampler's generation 1, which continues the study.
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -3, 3)
        info = optuna_evo.lineage(trial)
        if info and info.role == "elite" and isinstance(trial.study.sampler, GeneticSampler):
            raise optuna.TrialPruned()
        return x * x

    study = optuna.create_study(sampler=GeneticSampler(population_size=4, n_elites=1, seed=0))
    study.optimize(objective, n_trials=8)
    pruned_elite = optuna_evo.lineage(study.trials[4], study)
    assert pruned_elite is not None and pruned_elite.role == "elite"
    assert study.trials[4].state == TrialState.PRUNED
    study.sampler = MAGESampler(population_size=4, n_elites=1, seed=0)
    study.optimize(objective, n_trials=4)
    roles = [optuna_evo.lineage(t, study) for t in study.trials[8:]]
    assert [info.role for info in roles].count("elite") == 1
    elite = next(info for info in roles if info.role == "elite")
    assert elite.generation == 1 and elite.parent_numbers == pruned_elite.parent_numbers


def test_complexity_fn_scores_complete_trials_and_must_be_finite() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1, 1)
        if trial.number == 1:
            raise optuna.TrialPruned()  # before it could set n_params
        trial.set_user_attr("size", 1.0 + trial.number)
        return x * x

    sampler = MAGESampler(
        population_size=4, complexity_weight=0.5, complexity_fn=lambda t: t.user_attrs["size"]
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=8)  # pruned trial 1 is ranked, never sized
    assert all(t.state != TrialState.FAIL for t in study.trials)
    nan_sized = MAGESampler(
        population_size=2, complexity_weight=0.5, complexity_fn=lambda t: float("nan")
    )
    study = optuna.create_study(sampler=nan_sized)
    with pytest.raises(ValueError, match="`complexity_fn` must return a finite number"):
        study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=4)


def test_architecture_space_mutations_stay_valid() -> None:
    space = ArchitectureSpace.from_dict({**SPACE, "max_layers": 3})
    rng = np.random.RandomState(0)
    arch = Architecture([20, 32, 16, 3], "relu", skips=[(0, 2)])
    seen = set()
    for _ in range(300):
        arch, op = space.mutate(arch, rng)
        seen.add(op)
        assert 1 <= arch.n_hidden <= 3
        assert all(space.min_width <= w <= space.max_width for w in arch.widths[1:-1])
        assert len(set(arch.activations)) == 1
    assert seen == {"add_layer", "remove_layer", "change_width", "change_activation"}


def test_project_brings_any_architecture_inside_the_space() -> None:
    space = ArchitectureSpace.from_dict(
        {"layers": [[8, 16, 16, 2]], "activations": ["relu", "tanh"], "skips": True}
        | {"min_layers": 2, "max_layers": 2}
    )
    deep = Architecture([8, 16, 20, 24, 28, 2], "tanh", skips=[(0, 2), (1, 3), (2, 4)])
    shallow = Architecture([8, 40, 2], "gelu")
    assert space.project(deep) == Architecture([8, 16, 20, 2], "tanh", skips=[(0, 2)])
    assert space.project(shallow) == Architecture([8, 32, 32, 2], "relu")
    for arch in (deep, shallow, Architecture([8, 2], [])):
        projected = space.project(arch)
        for name, distribution in space.param_distributions(projected.n_hidden).items():
            value = space.param_value(projected, name)
            assert value is not None and distribution._contains(
                distribution.to_internal_repr(value)
            ), (name, value)
        assert (
            space.from_params(
                {n: space.param_value(projected, n) for n in space.param_distributions(2)}
            )
            == projected
        )


def test_suggest_architecture_with_any_sampler() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    archs = []
    study.optimize(lambda t: archs.append(suggest_architecture(t, SPACE)) or 0.0, n_trials=10)
    assert all(a.n_inputs == 20 and a.n_outputs == 3 for a in archs)
    assert "arch_n_hidden" in study.trials[0].params


def test_execution_details_and_csv(tmp_path: Path) -> None:
    # Another study first in the same storage: trial ids are no longer trial numbers, and the
    # parents column must show numbers.
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(storage=storage).optimize(lambda t: t.suggest_float("x", 0, 1), 5)
    sampler = MAGESampler("multi", SPACE, population_size=4, seed=0)
    study = optuna.create_study(sampler=sampler, storage=storage)
    study.optimize(_arch_objective, n_trials=12)
    rows = optuna_evo.execution_details(study)
    assert [(r["generation"], r["agent"]) for r in rows[:5]] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (0, 3),
        (1, 0),
    ]
    first = rows[0]
    assert first["architecture"].startswith("20-") and first["architecture"].endswith("-3")
    assert first["activation"] in SPACE["activations"]
    assert first["lr"] == study.trials[0].params["lr"]
    assert first["batch"] == study.trials[0].params["batch_size"]
    assert first["n_params"] == study.trials[0].user_attrs["n_params"]
    path = tmp_path / "log.csv"
    assert optuna_evo.export_csv(study, path) == 12
    with open(path) as f:
        read = list(csv.DictReader(f))
    assert len(read) == 12 and read[4]["role"] in ("elite", "mutant")
    assert float(read[0]["val_loss"]) == pytest.approx(rows[0]["val_loss"])
    # Role and parents of every row are the trial's lineage, parents by trial number.
    bred = 0
    for row, written in zip(rows, read):
        info = optuna_evo.lineage(study.trials[row["trial"]], study)
        assert info is not None
        numbers = [p.number for p in optuna_evo.parents(study.trials[row["trial"]], study)]
        assert list(info.parent_numbers) == numbers
        expected = " ".join(str(n) for n in numbers)
        assert (row["role"], row["parents"]) == (info.role, expected)
        assert (written["role"], written["parents"], written["trial"]) == (
            info.role,
            expected,
            str(row["trial"]),
        )
        bred += bool(numbers)
    assert bred == 8  # generations 1 and 2
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_params_named_like_a_fixed_column_do_not_overwrite_it(tmp_path: Path) -> None:
    study = optuna.create_study(sampler=GeneticSampler(population_size=2, seed=0))
    study.optimize(
        lambda t: t.suggest_float("generation", 10, 20) + t.suggest_int("state", 5, 6), n_trials=4
    )
    rows = optuna_evo.execution_details(study)
    assert [r["generation"] for r in rows] == [0, 0, 1, 1]
    assert all(r["state"] == "COMPLETE" for r in rows)
    for row, trial in zip(rows, study.trials):
        assert row["param_generation"] == trial.params["generation"]
        assert row["param_state"] == trial.params["state"]
    path = tmp_path / "log.csv"
    optuna_evo.export_csv(study, path)
    with open(path) as f:
        header = next(csv.reader(f))
    assert header[-2:] == ["param_generation", "param_state"]


def test_execution_details_of_a_ready_task_under_another_sampler() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:  # what MLPTask records with any sampler
        arch = suggest_architecture(trial, SPACE)
        trial.set_user_attr("architecture", arch.to_dict())
        return float(sum(arch.widths))

    study.optimize(objective, n_trials=3)
    rows = optuna_evo.execution_details(study)
    for row, trial in zip(rows, study.trials):
        widths = trial.user_attrs["architecture"]["widths"]
        assert row["architecture"] == "-".join(map(str, widths)) and row["generation"] == ""
        assert row["activation"] == trial.params["arch_activation"]
