"""Tests of the evolution log (execution_details / export_csv): no parameter is lost."""

from __future__ import annotations

import csv
import os
from pathlib import Path
import subprocess
import sys

import optuna
from optuna.trial import TrialState
import pytest

import optuna_evo
from optuna_evo.architecture import suggest_architecture
from optuna_evo.history import COLUMNS

SPACE = {"layers": [[20, 32, 3], [20, 64, 32, 3]], "activations": ["relu", "tanh"]}


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_arch_named_params_without_an_architecture_are_columns(tmp_path: Path) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        depth = trial.suggest_int("arch_depth", 1, 4)
        # The architecture module's own names, drawn by hand: no architecture is recorded.
        width = trial.suggest_int("arch_width_0", 8, 64)
        act = trial.suggest_categorical("arch_activation", ["relu", "tanh"])
        return depth + width / 100 + (act == "relu")

    study.optimize(objective, n_trials=3)
    rows = optuna_evo.execution_details(study)
    for row, trial in zip(rows, study.trials):
        assert row["arch_depth"] == trial.params["arch_depth"]
        assert row["arch_width_0"] == trial.params["arch_width_0"]
        assert row["arch_activation"] == trial.params["arch_activation"]
        assert row["architecture"] == "" and row["activation"] == ""
    assert optuna_evo.export_csv(study, tmp_path / "log.csv") == 3
    fields, read = _read(tmp_path / "log.csv")
    assert fields[len(COLUMNS) :] == ["arch_activation", "arch_depth", "arch_width_0"]
    assert [int(r["arch_depth"]) for r in read] == [t.params["arch_depth"] for t in study.trials]


def test_only_what_the_architecture_column_shows_is_folded() -> None:
    space = {**SPACE, "skips": True, "blocks": ["linear", "residual"]}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))

    def objective(trial: optuna.Trial) -> float:
        arch = suggest_architecture(trial, space)
        trial.set_user_attr("architecture", arch.to_dict())
        return float(trial.suggest_int("arch_depth", 0, 3) + arch.n_hidden)

    study.optimize(objective, n_trials=6)
    rows = optuna_evo.execution_details(study)
    for row, trial in zip(rows, study.trials):
        layers = row["architecture"].split(" ")[0].replace("r", "")
        assert layers == "-".join(map(str, trial.user_attrs["architecture"]["widths"]))
        assert row["activation"] == trial.params["arch_activation"]
        assert row["arch_depth"] == trial.params["arch_depth"]  # a user param, not a gene
        assert row["arch_block_0"] == trial.params["arch_block_0"]  # not shown by the string
        assert row["arch_skip_0"] == trial.params.get("arch_skip_0", "")
    assert not any(k in rows[0] for k in ("arch_n_hidden", "arch_width_0", "arch_activation"))
    assert any(t.params.get("arch_skip_0") is not None for t in study.trials)


def test_batch_and_batch_size_both_kept(tmp_path: Path) -> None:
    study = optuna.create_study(sampler=optuna_evo.GeneticSampler(population_size=2, seed=0))

    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_int("batch_size", 16, 64) + trial.suggest_int("batch", 1, 9)

    study.optimize(objective, n_trials=4)
    rows = optuna_evo.execution_details(study)
    for row, trial in zip(rows, study.trials):
        assert row["batch"] == trial.params["batch_size"]
        assert row["param_batch"] == trial.params["batch"]
    optuna_evo.export_csv(study, tmp_path / "log.csv")
    fields, read = _read(tmp_path / "log.csv")
    assert fields == [*COLUMNS, "param_batch"]
    assert [int(r["param_batch"]) for r in read] == [t.params["batch"] for t in study.trials]


def test_batch_alone_fills_the_batch_column() -> None:
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_int("batch", 1, 9), n_trials=2)
    rows = optuna_evo.execution_details(study)
    assert [r["batch"] for r in rows] == [t.params["batch"] for t in study.trials]
    assert "param_batch" not in rows[0]


def test_multi_objective_values_get_one_column_each(tmp_path: Path) -> None:
    study = optuna.create_study(
        directions=["minimize", "maximize"],
        sampler=optuna.samplers.NSGAIISampler(population_size=2, seed=0),
    )

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0, 1)
        y = trial.suggest_float("value_1", 0, 1)  # named like an objective column
        if trial.number == 3:
            raise RuntimeError("a failed trial has no values")
        return x, x + y

    study.optimize(objective, n_trials=4, catch=(RuntimeError,))
    rows = optuna_evo.execution_details(study)
    for row, trial in zip(rows, study.trials):
        assert row["val_loss"] == ""
        if trial.state == TrialState.COMPLETE:
            assert [row["value_0"], row["value_1"]] == pytest.approx(trial.values)
        else:
            assert row["value_0"] == row["value_1"] == ""
        assert row["param_value_1"] == trial.params["value_1"] and row["x"] == trial.params["x"]
    optuna_evo.export_csv(study, tmp_path / "log.csv")
    fields, read = _read(tmp_path / "log.csv")
    assert fields == [*COLUMNS, "value_0", "value_1", "param_value_1", "x"]
    assert float(read[0]["value_1"]) == pytest.approx(study.trials[0].values[1])


def test_single_objective_has_val_loss_whatever_the_direction() -> None:
    study = optuna.create_study(direction="maximize")
    study.optimize(lambda t: t.suggest_float("value_0", 0, 1), n_trials=2)
    rows = optuna_evo.execution_details(study)
    assert [r["val_loss"] for r in rows] == [t.value for t in study.trials]
    assert "value_0" in rows[0] and "param_value_0" not in rows[0]  # no objective columns


def test_empty_multi_objective_study_header(tmp_path: Path) -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    assert optuna_evo.export_csv(study, tmp_path / "log.csv") == 0
    assert _read(tmp_path / "log.csv")[0] == [*COLUMNS, "value_0", "value_1"]


def test_a_param_named_like_a_prefixed_column_is_kept() -> None:
    study = optuna.create_study()
    study.optimize(
        lambda t: t.suggest_int("state", 0, 3) + t.suggest_int("param_state", 0, 3), n_trials=2
    )
    row = optuna_evo.execution_details(study)[0]
    assert row["param_state"] == study.trials[0].params["param_state"]
    assert row["param_param_state"] == study.trials[0].params["state"]


def test_architecture_column_tells_blocks_and_skips_apart() -> None:
    plain = optuna_evo.Architecture(widths=[20, 32, 32, 3], activations="relu")
    residual = optuna_evo.Architecture(
        widths=[20, 32, 32, 3], activations="relu", blocks=["residual", "linear"]
    )
    skipped = optuna_evo.Architecture(widths=[20, 32, 32, 3], activations="relu", skips=[(0, 2)])
    study = optuna.create_study()
    for arch in (plain, residual, skipped):
        trial = study.ask()
        trial.set_user_attr("architecture", arch.to_dict())  # what a ready task records
        study.tell(trial, 1.0)
    columns = [row["architecture"] for row in optuna_evo.execution_details(study)]
    assert columns == ["20-32-32-3", "20-32r-32-3", "20-32-32-3 skip 0>2"]


# Run in a child process, whose locale encoding is chosen before Python starts; its command
# line is ASCII (escapes), which is all an ASCII locale can pass.
_NON_ASCII_STUDY = r"""
import sys
import optuna
import optuna_evo
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study()
trial = study.ask()
trial.suggest_float("\u5b66\u4e60\u7387", 1e-4, 1e-1, log=True)
trial.suggest_categorical("note", ["caf\u00e9"])
study.tell(trial, 1.0)
print(optuna_evo.export_csv(study, sys.argv[1]))
"""


def test_export_csv_is_utf8_under_a_non_utf8_locale(tmp_path: Path) -> None:
    package_root = str(Path(optuna_evo.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "LC_ALL": "C",  # an ASCII locale: Python would write the file in ASCII
        "PYTHONUTF8": "0",
        "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("PYTHONIOENCODING", None)
    path = tmp_path / "log.csv"
    probe = [sys.executable, "-X", "utf8=0", "-c"]
    encoding = subprocess.run(
        [*probe, "import locale; print(locale.getpreferredencoding(False))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if encoding.lower().replace("-", "") in ("utf8", "utf_8"):
        pytest.skip("this platform has no non-UTF-8 locale to run under")
    proc = subprocess.run(
        [*probe, _NON_ASCII_STUDY, str(path)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"
    text = path.read_bytes().decode("utf-8")  # raises if written in another encoding
    fields, rows = _read(path)
    assert fields[-2:] == ["note", "学习率"] and rows[0]["note"] == "café"
    assert "学习率" in text


def test_export_csv_tells_a_none_choice_from_a_missing_param(tmp_path: Path) -> None:
    choices = optuna.distributions.CategoricalDistribution([None, "adam"])
    study = optuna.create_study()
    for params in ({"opt": None}, {"opt": "adam", "extra": None}, {"opt": None, "extra": "adam"}):
        study.add_trial(
            optuna.trial.create_trial(
                params=params, distributions={k: choices for k in params}, value=1.0
            )
        )
    # The API keeps the values themselves.
    rows = optuna_evo.execution_details(study)
    assert [(r["opt"], r["extra"]) for r in rows] == [(None, ""), ("adam", None), (None, "adam")]
    optuna_evo.export_csv(study, tmp_path / "log.csv")
    _, read = _read(tmp_path / "log.csv")
    assert [(r["opt"], r["extra"]) for r in read] == [
        ("None", ""),  # never suggested: empty
        ("adam", "None"),
        ("None", "adam"),
    ]
