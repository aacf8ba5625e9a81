"""Tests of the ``optuna-evo`` command line."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import optuna
from optuna.trial import TrialState
import pytest

import optuna_evo
from optuna_evo.cli import main


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "--sampler", "cmaes-ish"], "--sampler"),
        (["run", "--n-trials", "0"], "--n-trials"),
        (["run", "--task", "nope"], "--task"),
        (["fly"], "invalid choice"),
    ],
)
def test_bad_arguments_one_line_exit_2(argv: list[str], fragment: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err


def test_console_script_is_installed() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "optuna_evo.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == optuna_evo.__version__


def test_run_then_resume_on_sqlite(tmp_path: Path, capsys) -> None:
    storage = f"sqlite:///{tmp_path / 'cli.db'}"
    argv = [
        "run",
        "--storage",
        storage,
        "--device",
        "cpu",
        "--max-train",
        "256",
        "--max-val",
        "128",
        "--population-size",
        "2",
        "--no-progress",
        "--study-name",
        "s",
    ]
    assert main([*argv, "--n-trials", "3"]) == 0
    assert main([*argv, "--n-trials", "1"]) == 0  # resumes the same study
    assert "3 trials already there" in capsys.readouterr().out
    study = optuna.load_study(study_name="s", storage=storage)
    trials = study.get_trials()
    assert len(trials) == 4
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert set(trials[0].params) == {"lr", "momentum", "weight_decay"}
    assert trials[0].user_attrs["n_params"] == 1_199_882
    info = optuna_evo.lineage(trials[-1], study)
    assert info is not None and info.generation >= 1
