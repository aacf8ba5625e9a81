"""The contract every optuna-evo sampler keeps, in one parametrised module.

Optuna's own sampler suite, reproducibility, reseeding, pickling, several worker processes on
PostgreSQL / SQLite / journal storage, and the faults of long runs: a worker killed mid-trial,
objective exceptions, NaN and pruning mid-generation, and a restart of every worker.
"""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import uuid

from evo_testing import STORAGE_KINDS
from evo_testing import assert_consistent_lineage
from evo_testing import backdate_heartbeat
from evo_testing import grpc_proxy
from evo_testing import run_workers
from evo_testing import storage_for
import optuna
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase
from optuna.testing.pytest_samplers import SingleOnlySamplerTestCase
from optuna.trial import TrialState
import pytest

import optuna_evo

optuna.logging.set_verbosity(optuna.logging.WARNING)

# name -> expression building the sampler with a population of 4 (``seed`` in scope).
SAMPLERS = {
    "genetic": "optuna_evo.GeneticSampler(population_size=4, seed=seed)",
    "genetic-tournament": (
        "optuna_evo.GeneticSampler(population_size=4, selection='tournament', "
        "crossover='blend', mutation='gaussian', n_elites=1, seed=seed)"
    ),
    "mage": "optuna_evo.MAGESampler(population_size=4, n_elites=1, seed=seed)",
    "gender": (
        "optuna_evo.GenderSampler(population_size=4, n_top_males=2, n_top_females=2, seed=seed)"
    ),
    # Predictor assistance on: every child is drawn before its trial starts, scored by the
    # surrogate, checked against the duplicate cache and the stability guard.
    "genetic-assisted": (
        "optuna_evo.GeneticSampler(population_size=4, mutation='gaussian', seed=seed, "
        "assist=optuna_evo.samplers.PredictorAssist(n_candidates=4, min_trials=4, "
        "stability_threshold=1.0, max_retries=3))"
    ),
    "mage-multi-assisted": (
        "optuna_evo.MAGESampler('multi', {'layers': [[4, 8, 2]], 'activations': ['relu', 'tanh'], "
        "'blocks': ['linear', 'residual'], 'skips': True}, population_size=4, n_elites=1, "
        "crossover_prob=0.5, seed=seed, assist=optuna_evo.samplers.PredictorAssist("
        "n_candidates=4, min_trials=4, stability_threshold=1.0, max_retries=3))"
    ),
}


def make(name: str, seed: int | None = 0) -> BaseSampler:
    """Build the sampler ``name`` with ``seed``."""
    return eval(SAMPLERS[name], {"optuna_evo": optuna_evo, "seed": seed})


OBJECTIVE_SRC = """
def objective(trial):
    x = trial.suggest_float("x", -5, 5)
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    n = trial.suggest_int("n", 0, 10)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    extra = trial.suggest_float("only_a", 0, 1) if kind == "a" else 0.5
    return x * x + abs(n - 3) + extra + (kind == "b") + abs(lr - 1e-3)
"""
_ns: dict = {}
exec(OBJECTIVE_SRC, _ns)
objective: Callable[[optuna.Trial], float] = _ns["objective"]


@pytest.fixture(params=list(SAMPLERS))
def sampler_name(request: pytest.FixtureRequest) -> str:
    return request.param


class TestOptunaContract(BasicSamplerTestCase, SingleOnlySamplerTestCase):
    """Optuna's own suite, for every sampler."""

    @pytest.fixture
    def sampler(self, sampler_name: str) -> Callable[[], BaseSampler]:
        return lambda: make(sampler_name, seed=1)


def _params(study: optuna.Study) -> list[dict]:
    return [t.params for t in study.trials]


def test_same_seed_same_run(sampler_name: str) -> None:
    def run(seed: int) -> list[dict]:
        study = optuna.create_study(sampler=make(sampler_name, seed))
        study.optimize(objective, n_trials=16)
        assert {optuna_evo.lineage(t, study).generation for t in study.trials} >= {0, 1, 2}
        return _params(study)

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_reseed_rng_changes_the_stream(sampler_name: str) -> None:
    sampler = make(sampler_name, seed=0)
    first = optuna.create_study(sampler=sampler)
    first.optimize(objective, n_trials=4)
    sampler.reseed_rng()
    second = optuna.create_study(sampler=sampler)
    second.optimize(objective, n_trials=4)
    assert _params(first) != _params(second)


def test_pickled_sampler_continues_identically(sampler_name: str) -> None:
    sampler = make(sampler_name, seed=7)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=6)
    twin = optuna.create_study(sampler=pickle.loads(pickle.dumps(sampler)))
    for t in study.trials:
        twin.add_trial(t)
    study.optimize(objective, n_trials=6)
    twin.optimize(objective, n_trials=6)
    assert _params(study)[-6:] == _params(twin)[-6:]


def test_restart_resumes_from_the_stored_generation(sampler_name: str, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'restart.db'}"
    study = optuna.create_study(study_name="r", storage=storage, sampler=make(sampler_name))
    study.optimize(objective, n_trials=12)
    before = max(optuna_evo.lineage(t, study).generation for t in study.trials)
    # Every worker stopped; a new process loads the study with a new sampler object.
    resumed = optuna.load_study(study_name="r", storage=storage, sampler=make(sampler_name, 5))
    resumed.optimize(objective, n_trials=4)
    new = [optuna_evo.lineage(t, resumed) for t in resumed.trials[12:]]
    assert before >= 2 and all(info.generation >= before for info in new)
    assert all(info.parent_ids for info in new)


def test_faults_mid_generation(sampler_name: str) -> None:
    def flaky(trial: optuna.Trial) -> float:
        value = objective(trial)
        if trial.number % 7 == 3:
            raise RuntimeError("objective exception")
        if trial.number % 7 == 4:
            return float("nan")
        if trial.number % 7 == 5:
            return float("inf")
        if trial.number % 7 == 6:
            trial.report(value, 0)
            raise optuna.TrialPruned()
        return value

    study = optuna.create_study(sampler=make(sampler_name))
    study.optimize(flaky, n_trials=40, catch=(RuntimeError,))
    states = {t.state for t in study.trials}
    assert states == {TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED}
    assert_consistent_lineage(study, min_generations=3)


def _continued(
    sampler_name: str, n_earlier: int, n_trials: int
) -> tuple[optuna.Study, optuna.Study]:
    """A random search of ``n_earlier`` trials, and a study given its trials, then run on."""
    earlier = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    earlier.optimize(objective, n_trials=n_earlier)
    study = optuna.create_study(sampler=make(sampler_name))
    study.add_trials(earlier.trials)
    study.optimize(objective, n_trials=n_trials)
    return earlier, study


def test_a_study_with_results_starts_from_them(sampler_name: str) -> None:
    # Results of another sampler (or study.add_trial) are generation 0's: with a population's
    # worth of them, the sampler's first trial is already a generation-1 child of them.
    earlier, study = _continued(sampler_name, n_earlier=10, n_trials=8)
    first = [optuna_evo.lineage(t, study) for t in study.trials[10:14]]
    assert [info.generation for info in first] == [1, 1, 1, 1]
    assert all(info.parent_numbers and max(info.parent_numbers) < 10 for info in first)
    sampler = study.sampler
    assert isinstance(sampler, optuna_evo.samplers.PopulationSampler)
    prior = sampler.get_population(study, 0)
    assert sorted(t.number for t in prior) == list(range(10))
    chosen = {t.number for t in sampler.get_parent_population(study, 1)}
    assert chosen and chosen <= set(range(10))
    # An elite copies the best prior trial unchanged.
    elites = [t for t, info in zip(study.trials[10:14], first) if info.role == "elite"]
    assert len(elites) == getattr(sampler, "_n_elites", 0)
    for t in elites:
        (parent,) = optuna_evo.parents(t, study)
        assert parent.number == earlier.best_trial.number and t.params == parent.params


def test_fewer_results_than_a_population_are_completed_at_random(sampler_name: str) -> None:
    _, study = _continued(sampler_name, n_earlier=3, n_trials=3)
    infos = [optuna_evo.lineage(t, study) for t in study.trials[3:]]
    assert [i.generation for i in infos] == [0, 1, 1]
    assert infos[0].role == "random" and infos[1].role != "random"
    sampler = study.sampler
    assert isinstance(sampler, optuna_evo.samplers.PopulationSampler)
    assert {t.number for t in sampler.selection_candidates(study, 1)} == {0, 1, 2, 3}


def test_constraints_keep_the_search_feasible(sampler_name: str) -> None:
    # The best values lie where x < 0.5, which trial.set_constraint forbids: parents are
    # ranked feasible first (and the surrogate predicts feasibility), so the search stays
    # feasible. Ignoring the constraints, 0 to 4 of the last 20 trials were feasible.
    def constrained(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        y = trial.suggest_float("y", 0.0, 1.0)
        trial.set_constraint("x_at_least_half", 0.5 - x)
        return x + y

    study = optuna.create_study(sampler=make(sampler_name))
    study.optimize(constrained, n_trials=60)
    assert sum(t.params["x"] >= 0.5 for t in study.trials[-20:]) >= 12
    assert study.best_trial.params["x"] >= 0.5


@pytest.mark.parametrize("kind", STORAGE_KINDS)
def test_four_workers_share_one_storage(sampler_name: str, kind: str, tmp_path: Path) -> None:
    _four_workers(sampler_name, *storage_for(kind, tmp_path))


def test_four_workers_through_a_grpc_storage_proxy(sampler_name: str, tmp_path: Path) -> None:
    # Optuna's proxy for many workers: the clients cache trials, the samplers' reads must not
    # go stale through it.
    with grpc_proxy(tmp_path) as (client, storage):
        _four_workers(sampler_name, client, storage)


def _four_workers(sampler_name: str, expr: str, storage: optuna.storages.BaseStorage) -> None:
    name = f"{sampler_name}-{uuid.uuid4().hex}"
    study = optuna.create_study(study_name=name, storage=storage)
    run_workers(
        expr,
        name,
        SAMPLERS[sampler_name].replace("seed=seed", "seed=None"),
        OBJECTIVE_SRC,
        n_workers=4,
        n_trials=10,
    )
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 40 and all(t.state == TrialState.COMPLETE for t in trials)
    assert_consistent_lineage(study, min_generations=3)


def test_worker_killed_mid_trial_is_retried(sampler_name: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    marker = tmp_path / "started"
    # A grace period longer than the test: the killed trial goes stale only because its
    # heartbeat is back-dated below, never because the clock moved on meanwhile.
    storage_src = (
        f"optuna.storages.RDBStorage({url!r}, heartbeat_interval=1, grace_period=600, "
        "heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2))"
    )
    storage = eval(storage_src, {"optuna": optuna})
    study = optuna.create_study(study_name="k", storage=storage)
    code = textwrap.dedent(
        """
        import pathlib, time, warnings
        import optuna, optuna_evo
        warnings.simplefilter("ignore")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        {objective}
        def slow(trial):
            value = objective(trial)
            if trial.number == 9 and {hang}:
                pathlib.Path({marker!r}).touch()
                time.sleep(120)
            return value
        seed = None
        study = optuna.load_study(study_name="k", storage={storage}, sampler={sampler})
        study.optimize(slow, n_trials={n})
        """
    )

    def worker(hang: bool, n: int) -> subprocess.Popen:
        src = code.format(
            objective=OBJECTIVE_SRC,
            hang=hang,
            marker=str(marker),
            storage=storage_src,
            sampler=SAMPLERS[sampler_name],
            n=n,
        )
        return subprocess.Popen([sys.executable, "-c", src], stderr=subprocess.PIPE)

    victim = worker(hang=True, n=12)
    deadline = time.time() + 120
    while not marker.exists():
        assert victim.poll() is None, victim.stderr.read().decode()[-2000:]
        assert time.time() < deadline
        time.sleep(0.2)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    # Its last heartbeat an hour ago, far past the grace period: the next worker fails it.
    backdate_heartbeat(storage, study.get_trials(deepcopy=False)[9]._trial_id)
    survivor = worker(hang=False, n=8)
    _, err = survivor.communicate(timeout=240)
    assert survivor.returncode == 0, err.decode()[-3000:]

    trials = study.get_trials(deepcopy=False)
    killed = trials[9]
    assert killed.state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == 9]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == killed.params
    # The retry keeps the killed trial's place in the evolution.
    assert optuna_evo.lineage(retries[0], study) == optuna_evo.lineage(killed, study)
    assert max(optuna_evo.lineage(t, study).generation for t in trials) >= 3
    assert_consistent_lineage(study, min_generations=4)
