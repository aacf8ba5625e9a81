"""MAGE agents that continue from their parent's weights, in one process and in two."""

from __future__ import annotations

from pathlib import Path
import uuid

from evo_testing import assert_consistent_lineage
from evo_testing import run_workers
from evo_testing import storage_for
import optuna
from optuna.trial import TrialState
import pytest
import torch

import optuna_evo
from optuna_evo import checkpoint
from optuna_evo.objectives import MLP
from optuna_evo.objectives import make_synthetic

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {"layers": [[20, 32, 4], [20, 16, 16, 4]], "activations": ["relu", "tanh"]}

# The agent objective, shared verbatim with the worker processes.
AGENT_SRC = """
import torch
import torch.nn.functional as F
from optuna.artifacts import FileSystemArtifactStore
import optuna_evo
from optuna_evo import checkpoint
from optuna_evo.objectives import MLP, TrainConfig, make_synthetic, train

DATA = make_synthetic(n=1500, n_features=20, n_classes=4, seed=0, device="cpu")
SPACE = {"layers": [[20, 32, 4], [20, 16, 16, 4]], "activations": ["relu", "tanh"]}


def make_objective(store):
    def objective(trial):
        arch = optuna_evo.suggest_architecture(trial, SPACE)
        lr = trial.suggest_float("lr", 1e-3, 3e-2, log=True)
        torch.manual_seed(trial.number)
        model = MLP(arch)
        report = checkpoint.load_parent(trial, model, store)
        with torch.no_grad():
            start = F.cross_entropy(model(DATA.val_x), DATA.val_y).item()
        trial.set_user_attr("start_loss", start)
        trial.set_user_attr("loaded", report is not None)
        trial.set_user_attr("exact", bool(report is not None and report.exact))
        config = TrainConfig(
            optimizer="adam", lr=lr, batch_size=64, max_steps=25, eval_interval=25,
            device="cpu", seed=trial.number,
        )
        result = train(model, DATA, config, trial)
        checkpoint.save(trial, model, store)
        return result.best_val_loss
    return objective
"""


def _agent_module() -> dict:
    namespace: dict = {}
    exec(AGENT_SRC, namespace)
    return namespace


def test_children_start_from_their_parents_weights(tmp_path: Path) -> None:
    from optuna.artifacts import FileSystemArtifactStore

    store = FileSystemArtifactStore(str(tmp_path))
    agent = _agent_module()
    sampler = optuna_evo.MAGESampler(
        "multi", SPACE, population_size=4, n_elites=1, mutation_prob=0.5, seed=0
    )
    study = optuna.create_study(sampler=sampler, pruner=optuna.pruners.NopPruner())
    study.optimize(agent["make_objective"](store), n_trials=16)
    fresh = [t.user_attrs["start_loss"] for t in study.trials if not t.user_attrs["loaded"]]
    inherited = [t.user_attrs["start_loss"] for t in study.trials if t.user_attrs["loaded"]]
    assert len(inherited) >= 10
    assert max(inherited) < min(fresh), (inherited, fresh)
    # Elites continue exactly from their own previous checkpoint.
    for t in study.trials:
        if optuna_evo.lineage(t, study).role == "elite":
            assert t.user_attrs["exact"]
    # A finished agent's weights reload for evaluation. With max_steps == eval_interval the
    # run evaluates once, at its end, so the value (best_val_loss) is the loss of exactly the
    # weights saved: only float32 summation order (train sums per-sample losses) differs.
    best = study.best_trial
    model = MLP(optuna_evo.Architecture.from_dict(best.system_attrs["optuna_evo:architecture"]))
    assert checkpoint.load(best, model, store, study=study).exact
    model.eval()  # as train's evaluation
    data = make_synthetic(n=1500, n_features=20, n_classes=4, seed=0, device="cpu")
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(data.val_x), data.val_y).item()
    assert loss == pytest.approx(best.value, rel=1e-5)


def test_weight_noise_reaches_mutants_only(tmp_path: Path) -> None:
    from optuna.artifacts import FileSystemArtifactStore

    store = FileSystemArtifactStore(str(tmp_path))
    sampler = optuna_evo.MAGESampler(population_size=2, n_elites=1, weight_noise=0.5, seed=0)
    study = optuna.create_study(sampler=sampler)
    deltas: dict[str, list[float]] = {"elite": [], "mutant": []}

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("lr", 0.0, 1.0)
        model = torch.nn.Linear(50, 50)
        report = checkpoint.load_parent(trial, model, store)
        if report is not None:
            parent = optuna_evo.parents(trial)[0]
            reference = torch.nn.Linear(50, 50)
            checkpoint.load(parent, reference, store, study=study)
            diff = (model.weight - reference.weight).std().item()
            deltas[optuna_evo.lineage(trial).role].append(diff)
        checkpoint.save(trial, model, store)
        return float(trial.number)

    study.optimize(objective, n_trials=8)
    assert deltas["elite"] and all(d == 0.0 for d in deltas["elite"])
    assert deltas["mutant"] and all(0.4 < d < 0.6 for d in deltas["mutant"])


def test_two_processes_share_sqlite_and_artifact_store(tmp_path: Path) -> None:
    expr, storage = storage_for("sqlite", tmp_path)
    name = f"mage-{uuid.uuid4().hex}"
    study = optuna.create_study(study_name=name, storage=storage)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    run_workers(
        expr,
        name,
        "optuna_evo.MAGESampler('multi', SPACE, population_size=4, n_elites=1)",
        AGENT_SRC + f"\nobjective = make_objective(FileSystemArtifactStore({str(artifacts)!r}))\n",
        n_workers=2,
        n_trials=8,
    )
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 16 and all(t.state == TrialState.COMPLETE for t in trials)
    assert_consistent_lineage(study, min_generations=3)
    assert sum(t.user_attrs["loaded"] for t in trials) >= 6
