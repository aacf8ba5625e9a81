"""Tests of the ``optuna-evo`` command line: every subcommand run for real on a CPU."""

from __future__ import annotations

import csv
from pathlib import Path
import re
import shutil
import sqlite3
import subprocess
import sys

from evo_testing import backdate_heartbeat
from evo_testing import synthetic_text
import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState
import plotly.graph_objects as go
import pytest
import torch

import optuna_evo
from optuna_evo import checkpoint
from optuna_evo import cli
from optuna_evo.cli import CONFIG_KEY
from optuna_evo.cli import main
from optuna_evo.genreg import load_genome
from optuna_evo.history import COLUMNS
from optuna_evo.predictors.population import male_curves

REPO = Path(__file__).resolve().parents[1]
# Tiny budgets: a trial trains on 256 images (or a few steps) in well under a second.
QUICK = ["--device", "cpu", "--no-progress"]
QUICK_IMAGES = [*QUICK, "--max-train", "256", "--max-val", "128"]


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # genreg and mage runs keep artifacts; never in the folder pytest was started from.
    monkeypatch.setenv(checkpoint.ARTIFACT_DIR_ENV, str(tmp_path / "env-artifacts"))


def _storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("optuna-evo"), err
    return err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "--sampler", "cmaes-ish"], "--sampler"),
        (["run", "--n-trials", "0"], "--n-trials"),
        (["run", "--task", "nope"], "--task"),
        (["run", "--population-size", "1"], "--population-size"),
        (["run", "--max-steps", "-3"], "--max-steps"),
        (["run", "--epochs", "0"], "--epochs: expected an integer >= 1, got 0"),
        (["run", "--max-val", "0"], "--max-val"),
        (["run", "--heartbeat", "-1"], "--heartbeat: expected an integer >= 0"),
        # numpy's seeds are 32-bit: refused at parsing, naming the flag and its range
        (["run", "--seed", "-1"], "--seed: expected an integer in [0, 4294967295], got -1"),
        (["run", "--seed", str(2**32)], "--seed: expected an integer in [0, 4294967295]"),
        (["run", "--task", "genreg", "--seed", "-1"], "--seed: expected an integer in [0, "),
        (["worker", "--seed", "-1"], "--seed: expected an integer in [0, 4294967295]"),
        (["worker", "--n-trials", "x"], "--n-trials"),
        (["report"], "--out"),
        (["export-csv", "--storage", "sqlite:///x.db"], "--out"),
        (["fly"], "invalid choice"),
    ],
)
def test_bad_arguments_one_line_exit_2(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert fragment in _one_error_line(capsys)


def test_run_help_states_defaults_in_words(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    options = capsys.readouterr().out.split("\noptions:\n")[1]
    # Each option's entry, its wrapped lines joined: "--n-trials N_TRIALS  trials to ...".
    entries = re.split(r"\n  (?=-)", options.strip())
    lines = {entry.split()[0]: " ".join(entry.split()) for entry in entries}
    assert f"(default: {cli.DEFAULT_N_TRIALS})" in lines["--n-trials"]
    assert "(default: 2000 / 300 on a GPU, 100 / 20 on a CPU)" in lines["--max-steps"]
    assert "(default: 0)" in lines["--seed"]
    assert not any("{'" in line for line in lines.values())  # no Python dict printed


def test_console_script_is_installed() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "optuna_evo.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == optuna_evo.__version__
    # The `optuna-evo` entry point itself: beside this interpreter first (a virtualenv's bin/
    # need not be on PATH), else on PATH.
    script = shutil.which("optuna-evo", path=str(Path(sys.executable).parent))
    script = script or shutil.which("optuna-evo")
    if script is None:
        pytest.skip("the optuna-evo console script is not installed (pip install -e .)")
    out = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: optuna-evo ") and "export-csv" in out.stdout


def test_run_then_resume_on_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = _storage(tmp_path)
    argv = ["run", "--storage", storage, *QUICK_IMAGES, "--population-size", "2"]
    argv += ["--study-name", "s"]
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
    config = study.user_attrs[CONFIG_KEY]
    assert config["task"] == "fashion-mnist-cnn" and config["sampler"] == "genetic"
    assert (config["epochs"], config["max_train"], config["max_val"]) == (1, 256, 128)


def test_mage_mlp_run_worker_report_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = _storage(tmp_path)
    artifacts = tmp_path / "artifacts"
    monkeypatch.setenv(checkpoint.ARTIFACT_DIR_ENV, str(artifacts))
    loaded: dict[int, checkpoint.LoadReport | None] = {}
    load_parent = checkpoint.load_parent

    def spy(trial: optuna.Trial, *args: object, **kwargs: object) -> object:
        loaded[trial.number] = load_parent(trial, *args, **kwargs)  # type: ignore[arg-type]
        return loaded[trial.number]

    monkeypatch.setattr(checkpoint, "load_parent", spy)
    argv = ["run", "--task", "mlp", "--sampler", "mage", "--population-size", "3"]
    assert main([*argv, "--storage", storage, *QUICK_IMAGES, "--n-trials", "3"]) == 0
    # A worker needs only the storage: task, sampler and budget come from the study.
    assert main(["worker", "--storage", storage, "--no-progress", "--n-trials", "4"]) == 0
    out = capsys.readouterr().out
    assert "worker joins study 'optuna-evo-mlp-mage'" in out
    assert "task mlp, sampler mage, population 3, epochs 1, max-train 256" in out

    study = optuna.load_study(study_name="optuna-evo-mlp-mage", storage=storage)
    trials = study.get_trials()
    assert len(trials) == 7 and all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:  # MAGE planned every architecture (suggest_architecture's params)
        assert {"arch_n_hidden", "arch_activation", "lr", "optimizer"} <= set(t.params)
        widths = t.user_attrs["optuna_evo:architecture"]["widths"]
        assert widths[0] == 784 and widths[-1] == 10
        assert t.user_attrs["architecture"]["widths"] == widths  # the MLP that was trained
    roles = {optuna_evo.lineage(t, study).role for t in trials}
    assert "elite" in roles and "mutant" in roles
    # Every agent saved its weights; the second generation started from its parent's.
    assert all(checkpoint.CHECKPOINT_KEY in t.system_attrs for t in trials)
    assert len(list(artifacts.iterdir())) == 7
    assert sorted(loaded) == list(range(7))
    assert all(loaded[n] is None for n in range(3))  # generation 0: fresh weights
    for n in range(3, 7):  # elites and mutants: their parent's tensors (sliced where resized)
        report = loaded[n]
        assert report is not None and (report.copied or report.partial), (n, report)
    system = study._storage.get_study_system_attrs(study._study_id)
    assert any(k.startswith("dashboard:plot_data:optuna-evo-genealogy:") for k in system)

    monkeypatch.setattr(cli, "_kaleido_available", lambda: False)
    report = tmp_path / "report"
    assert main(["report", "--storage", storage, "--out", str(report)]) == 0
    out = capsys.readouterr().out
    assert "kaleido is not installed" in out
    names = {p.name for p in report.iterdir()}
    assert names == {
        "genealogy.html",
        "generations.html",
        "optimization_history.html",
        "plotly.min.js",
        ".optuna-evo-report.json",  # what this report wrote, for the next one into the folder
    }
    page = (report / "genealogy.html").read_text()
    assert "Genealogy Plot" in page and '"Trial 6 (COMPLETE)' in page
    assert 'src="plotly.min.js"' in page

    table = tmp_path / "evolution.csv"
    assert main(["export-csv", "--storage", storage, "--out", str(table)]) == 0
    assert "wrote 7 rows" in capsys.readouterr().out
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7 and list(rows[0])[: len(COLUMNS)] == list(COLUMNS)
    assert {r["trial"] for r in rows} == {str(n) for n in range(7)}
    assert all(r["architecture"].startswith("784-") for r in rows)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_a_trial_whose_worker_died_is_run_again(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    argv = ["run", "--storage", storage, *QUICK_IMAGES, "--population-size", "2"]
    argv += ["--study-name", "s", "--heartbeat", "1"]
    assert main([*argv, "--n-trials", "2"]) == 0
    # A worker killed mid-trial: a RUNNING trial with params whose heartbeats stopped.
    rdb = optuna.storages.RDBStorage(storage, heartbeat_interval=1)
    study = optuna.load_study(study_name="s", storage=rdb, sampler=cli_sampler(storage))
    dead = study.ask()
    lr = dead.suggest_float("lr", 1e-4, 1.0, log=True)  # the retry runs with this value
    rdb.record_heartbeat(dead._trial_id)
    # Its last heartbeat an hour ago, far past the 2 s grace period, without waiting for it:
    # Optuna compares the stored time with the database's clock.
    backdate_heartbeat(rdb, dead._trial_id)
    assert main([*argv, "--n-trials", "1"]) == 0  # resumes: fails the dead trial, re-runs it
    trials = study.get_trials()
    assert trials[dead.number].state == TrialState.FAIL
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert retry.state == TrialState.COMPLETE and retry.params["lr"] == lr
    # Same place in the evolution: the retry keeps the dead trial's lineage.
    assert optuna_evo.lineage(retry, study) == optuna_evo.lineage(trials[dead.number], study)


def cli_sampler(storage: str) -> optuna.samplers.BaseSampler:
    """The sampler `optuna-evo worker` would build for the study ``s``."""
    study = optuna.load_study(study_name="s", storage=storage)
    return cli.make_sampler(study.user_attrs[CONFIG_KEY], 0)


def test_mage_workers_in_other_folders_share_the_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(checkpoint.ARTIFACT_DIR_ENV, raising=False)
    storage = _storage(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    argv = ["run", "--task", "mlp", "--sampler", "mage", "--population-size", "2"]
    assert main([*argv, "--storage", storage, *QUICK_IMAGES, "--n-trials", "2"]) == 0
    monkeypatch.chdir(tmp_path / "b")  # a worker started elsewhere
    assert main(["worker", "--storage", storage, "--no-progress", "--n-trials", "2"]) == 0
    study = optuna.load_study(study_name="optuna-evo-mlp-mage", storage=storage)
    assert all(t.state == TrialState.COMPLETE for t in study.get_trials())
    folder = tmp_path / "a" / "optuna-evo-artifacts"
    assert study.user_attrs[CONFIG_KEY]["artifact_dir"] == str(folder.resolve())
    assert (
        len(list(folder.iterdir())) == 4 and not (tmp_path / "b" / "optuna-evo-artifacts").exists()
    )


def test_char_lm_with_gender_sampler(tmp_path: Path) -> None:
    # A stand-in for tiny shakespeare, which a fresh clone lacks: its folder, as users pass it.
    data_dir = synthetic_text(tmp_path / "tinyshakespeare").parent
    storage = _storage(tmp_path)
    argv = ["run", "--task", "char-lm", "--sampler", "gender", "--population-size", "2"]
    argv += ["--max-steps", "8", "--n-trials", "3", "--storage", storage, *QUICK]
    argv += ["--data-dir", str(data_dir)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared CPU
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    study = optuna.load_study(study_name="optuna-evo-char-lm-gender", storage=storage)
    trials = study.get_trials()
    assert len(trials) == 3 and all(t.state == TrialState.COMPLETE for t in trials)
    config = study.user_attrs[CONFIG_KEY]
    assert config["lm_size"] == "small"  # the CPU-sized space
    assert config["data_dir"] == str(data_dir)  # what workers will read
    assert all(t.params["n_embd"] in (32, 64) for t in trials)
    # 8 steps / REPORTS_PER_TRIAL: a validation report after every step
    assert len(trials[0].intermediate_values) == 8
    assert "optuna_evo:female_parents" in trials[-1].user_attrs
    assert optuna_evo.lineage(trials[-1], study).generation == 1
    # GenderSampler stored its predictor population, so the report adds its accuracy plot.
    assert main(["report", "--storage", storage, "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "predictor_accuracy.html").is_file()


def test_gender_run_on_a_cpu_has_a_learning_curve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The image tasks report once per epoch: a gender run reports several times an epoch.
    # 2048 images: even the largest batch (256) gives 8 steps, one report each.
    storage = _storage(tmp_path)
    argv = ["run", "--task", "mlp", "--sampler", "gender", "--population-size", "2"]
    argv += ["--n-trials", "3", "--storage", storage, *QUICK, "--max-train", "2048"]
    assert main([*argv, "--max-val", "64"]) == 0
    assert "warning" not in capsys.readouterr().err
    study = optuna.load_study(study_name="optuna-evo-mlp-gender", storage=storage)
    config = study.user_attrs[CONFIG_KEY]
    assert (config["epochs"], config["reports_per_epoch"]) == (1, cli.REPORTS_PER_TRIAL)
    early_steps = cli.make_sampler(config, 0).early_steps
    trials = study.get_trials()
    assert len(trials) == 3 and all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:  # enough for GenderSampler's early speed and for the pruner to act
        assert len(t.intermediate_values) > max(early_steps, cli.GENDER_PRUNE_AFTER)
    # GenderSampler rates trials with more than early_steps reports only.
    assert len(male_curves(trials, early_steps)) == 3


def test_gender_defaults_and_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parse = cli.build_parser().parse_args
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    for task in ("fashion-mnist-cnn", "mlp"):
        argv = ["run", "--task", task, "--sampler", "gender"]
        settings = cli.new_settings(parse(argv), cpu)
        # The same epochs and images as the other samplers, reported 8 times a trial.
        assert (settings["epochs"], settings["max_train"]) == (1, 5000)
        assert settings["reports_per_epoch"] == 8
        on_gpu = cli.new_settings(parse(argv), gpu)
        assert on_gpu["epochs"] * on_gpu["reports_per_epoch"] >= 8
        assert on_gpu["epochs"] == cli.GPU_EPOCHS[task]
        assert cli.new_settings(parse([*argv, "--epochs", "3"]), cpu)["reports_per_epoch"] == 3
        assert cli.gender_warning(settings) is None
        other = cli.new_settings(parse(["run", "--task", task]), cpu)
        assert (other["epochs"], other["reports_per_epoch"]) == (1, None)
    for task in ("char-lm", "genreg"):  # they report about 8 times whatever the budget
        for steps in ([], ["--max-steps", "6"], ["--max-steps", "17"], ["--max-steps", "300"]):
            argv = ["run", "--task", task, "--sampler", "gender", *steps]
            settings = cli.new_settings(parse(argv), cpu)
            assert cli.reports_per_trial(settings) >= 6
            assert cli.gender_warning(settings) is None
    # Too few reports, chosen by hand: one warning line naming the flag that gives more.
    few = cli.new_settings(parse(["run", "--task", "genreg", "--sampler", "gender"]), cpu)
    few["max_steps"] = 5
    assert "--max-steps 8 or more" in (cli.gender_warning(few) or "")
    storage = _storage(tmp_path)
    argv = ["run", "--task", "genreg", "--sampler", "gender", "--max-steps", "4"]
    assert main([*argv, "--n-trials", "1", "--storage", storage, *QUICK_IMAGES]) == 0
    (line,) = [e for e in capsys.readouterr().err.splitlines() if "warning" in e]
    assert line.startswith("optuna-evo: warning: a trial reports 4 intermediate values")
    assert "--max-steps 8 or more" in line


@pytest.mark.parametrize("sampler", cli.SAMPLERS)
def test_only_gender_runs_get_the_learning_curve_pruner(sampler: str) -> None:
    task = "mlp" if sampler == "mage" else "fashion-mnist-cnn"  # mage runs only the mlp task
    argv = ["run", "--task", task, "--sampler", sampler]
    settings = cli.new_settings(cli.build_parser().parse_args(argv), torch.device("cpu"))
    pruner = cli.make_pruner(settings)
    if sampler == "gender":
        assert isinstance(pruner, optuna_evo.LearningCurvePruner)
        assert pruner._min_steps == cli.GENDER_PRUNE_AFTER
    else:  # Optuna's default MedianPruner would prune a CPU trial after its only report
        assert isinstance(pruner, optuna.pruners.NopPruner)


def test_genreg_with_nsga2_maximizes_and_keeps_every_genome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(checkpoint.ARTIFACT_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    storage = _storage(tmp_path)
    argv = ["run", "--task", "genreg", "--sampler", "nsga2", "--population-size", "2"]
    argv += ["--max-steps", "2", "--n-trials", "2", "--storage", storage, *QUICK_IMAGES]
    assert main(argv) == 0
    study = optuna.load_study(study_name="optuna-evo-genreg-nsga2", storage=storage)
    assert study.direction == StudyDirection.MAXIMIZE  # GENREG returns an accuracy
    trials = study.get_trials()
    assert len(trials) == 2 and all(0.0 <= t.value <= 1.0 for t in trials)
    assert all(t.user_attrs["generations"] == 2 for t in trials)
    # Each trial's best genome is in the default folder, the one named in the settings.
    folder = tmp_path / "optuna-evo-artifacts"
    assert study.user_attrs[CONFIG_KEY]["artifact_dir"] == str(folder.resolve())
    store = optuna.artifacts.FileSystemArtifactStore(str(folder))
    for trial in trials:
        path = tmp_path / f"genome{trial.number}.safetensors"
        optuna.artifacts.download_artifact(
            artifact_store=store,
            file_path=str(path),
            artifact_id=trial.user_attrs["genome_artifact_id"],
        )
        genome = load_genome(path)
        assert genome.config["trial"] == trial.number
        assert genome.config["val_accuracy"] == trial.value
    # A study created before genomes were kept has no folder in its settings: none is made.
    shutil.rmtree(folder)
    old = cli.new_settings(cli.build_parser().parse_args(argv), torch.device("cpu"))
    del old["artifact_dir"]
    cli.make_objective(old, torch.device("cpu"), None, download=False)
    assert not folder.exists()


def test_report_of_a_non_evolutionary_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = _storage(tmp_path)
    argv = ["run", "--sampler", "random", "--n-trials", "2", "--storage", storage]
    assert main([*argv, *QUICK_IMAGES, "--study-name", "r"]) == 0
    monkeypatch.setattr(cli, "_kaleido_available", lambda: False)
    capsys.readouterr()
    assert main(["report", "--storage", storage, "--study-name", "r", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "skipped genealogy: No trial has a generation" in out
    assert "skipped generations: No COMPLETE trial has a generation" in out
    assert (tmp_path / "optimization_history.html").is_file()
    assert not (tmp_path / "genealogy.html").exists()


def test_report_writes_png_when_kaleido_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = _storage(tmp_path)
    study = optuna.create_study(
        storage=storage, sampler=optuna_evo.GeneticSampler(population_size=2, seed=0)
    )
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4)
    monkeypatch.setattr(cli, "_kaleido_available", lambda: True)

    def write_image(figure: go.Figure, path: Path) -> None:
        if "History" in figure.layout.title.text:  # kaleido fails, e.g. no Chrome to start
            raise RuntimeError("Kaleido requires Google Chrome to be installed.")
        Path(path).write_bytes(b"PNG")

    monkeypatch.setattr(go.Figure, "write_image", write_image)
    assert main(["report", "--storage", storage, "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert {p.name for p in (tmp_path / "r").glob("*.png")} == {
        "genealogy.png",
        "generations.png",
    }
    assert "note: no PNG of optimization_history: Kaleido requires Google Chrome" in out


def _api_study(storage: str, name: str) -> None:
    study = optuna.create_study(storage=storage, study_name=name)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "--sampler", "mage"], "--sampler mage needs --task mlp"),
        (["run", "--task", "char-lm", "--epochs", "2"], "--epochs does not apply"),
        (["run", "--task", "mlp", "--max-steps", "5"], "--max-steps does not apply"),
        (["run", "--storage", "nope://x"], "cannot open storage 'nope://x'"),
        (["run", "--storage", "sqlite:////no/such/dir/x.db"], "cannot open storage"),
        (["run", "--device", "warp-drive"], "bad --device 'warp-drive'"),
        (["worker", "--storage", "sqlite:///{tmp}/missing.db"], "no SQLite database"),
        (["report", "--storage", "sqlite:///{tmp}/missing.db", "--out", "{tmp}"], "no SQLite"),
        (["worker", "--storage", "{db}", "--study-name", "zz"], "no study named 'zz'"),
        (["report", "--storage", "{db}", "--study-name", "zz", "--out", "{tmp}"], "'zz'"),
        (["export-csv", "--storage", "{db}", "--out", "{tmp}/x.csv"], "2 studies in"),
        (["worker", "--storage", "{db}", "--study-name", "api"], "not created by `optuna-evo"),
        (["run", "--storage", "{db}", "--study-name", "api"], "not created by `optuna-evo run`"),
        (["run", "--storage", "{db}", "--study-name", "cli", "--max-train", "9"], "created with"),
        (["run", "--storage", "{db}", "--study-name", "cli", "--sampler", "tpe"], "created with"),
    ],
)
def test_errors_after_parsing_one_line_exit_2(
    argv: list[str],
    fragment: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the default storage is a file in the working directory
    db = _storage(tmp_path)
    _api_study(db, "api")
    optuna.create_study(storage=db, study_name="cli").set_user_attr(
        CONFIG_KEY, cli.new_settings(cli.build_parser().parse_args(["run"]), torch.device("cpu"))
    )
    argv = [a.format(tmp=tmp_path, db=db) for a in argv]
    if argv[0] == "run":
        argv += ["--no-progress"]
    assert main(argv) == 2
    assert fragment in _one_error_line(capsys)
    # A refused command creates no study in any database, nor a missing one it was given.
    studies = [
        summary.study_name
        for db_file in tmp_path.glob("*.db")
        for summary in optuna.get_all_study_summaries(f"sqlite:///{db_file}")
    ]
    assert sorted(studies) == ["api", "cli"]
    # Nor an empty database file where there was none (the default storage included).
    assert sorted(p.name for p in tmp_path.glob("*.db")) == [Path(db[len("sqlite:///") :]).name]


@pytest.mark.parametrize(
    "argv, remedy",
    [
        (["run"], "  - pass --data-dir <directory holding train-images-idx3-ubyte.gz, "),
        (["run", "--task", "char-lm"], "  - pass --data-dir <path of input.txt"),
        (["run", "--task", "genreg"], "  - pass --data-dir <directory holding "),
        (["worker", "--study-name", "cli"], "  - pass --data-dir <directory holding "),
    ],
)
def test_missing_data_is_explained_in_flags(
    argv: list[str],
    remedy: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    db = _storage(tmp_path)
    settings = cli.new_settings(cli.build_parser().parse_args(["run"]), torch.device("cpu"))
    optuna.create_study(storage=db, study_name="cli").set_user_attr(CONFIG_KEY, settings)
    nothing = tmp_path / "nothing"
    argv = [*argv, "--storage", db, "--data-dir", str(nothing), "--no-progress"]
    assert main(argv) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("optuna-evo: error: ") and lines[0].endswith(" Looked in:")
    assert f"  - {nothing}" in lines[1]  # one place a line, not flattened into one
    assert "To provide the data:" in lines and remedy in "\n".join(lines)
    message = "\n".join(lines)
    assert "data_dir=" not in message and "data_path=" not in message
    assert "download=True" not in message
    # A worker downloads only if its study's run did: no --download for it to pass.
    offered = any(line.startswith("  - pass --download to fetch") for line in lines)
    assert offered == (argv[0] == "run")
    assert [s.study_name for s in optuna.get_all_study_summaries(db)] == ["cli"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_device_without_cuda(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--device", "cuda"]) == 2
    assert "CUDA is not available" in _one_error_line(capsys)


def test_cpu_defaults_keep_trials_small() -> None:
    parse = cli.build_parser().parse_args
    cpu = torch.device("cpu")
    cnn = cli.new_settings(parse(["run"]), cpu)
    assert (cnn["epochs"], cnn["max_train"], cnn["max_val"]) == (1, 5000, 2000)
    lm = cli.new_settings(parse(["run", "--task", "char-lm"]), cpu)
    assert (lm["max_steps"], lm["lm_size"]) == (cli.CPU_LM_STEPS, "small")
    genreg = cli.new_settings(parse(["run", "--task", "genreg"]), cpu)
    assert (genreg["max_steps"], genreg["max_train"]) == (20, 1000)
    gpu = cli.new_settings(parse(["run", "--task", "char-lm"]), torch.device("cuda"))
    assert (gpu["max_steps"], gpu["lm_size"]) == (2000, "paper")


def _ga_study(storage: str, name: str = "ga") -> optuna.Study:
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        sampler=optuna_evo.GeneticSampler(population_size=2, seed=0),
    )
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4)
    return study


@pytest.mark.parametrize(
    "command, out, fragment",
    [
        # a file in place of the report's folder
        ("report", "{file}", "--out '{file}' is a file"),
        # a file in place of a folder above it
        ("report", "{file}/sub", "cannot write --out '{file}/sub': Not a directory"),
        # a folder in place of the CSV file
        ("export-csv", "{tmp}", "--out '{tmp}' is a folder"),
        ("export-csv", "{file}/x.csv", "cannot write --out '{file}/x.csv': Not a directory"),
        ("export-csv", "{tmp}/no/x.csv", "cannot write --out '{tmp}/no/x.csv': No such file"),
    ],
    ids=["report-file", "report-under-file", "csv-folder", "csv-under-file", "csv-no-folder"],
)
def test_out_that_cannot_be_written_one_line_exit_2(
    command: str,
    out: str,
    fragment: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = _storage(tmp_path)
    _ga_study(storage)
    monkeypatch.setattr(cli, "_kaleido_available", lambda: False)
    in_the_way = tmp_path / "afile"
    in_the_way.write_text("not a folder")
    names = {"file": in_the_way, "tmp": tmp_path}
    capsys.readouterr()
    assert main([command, "--storage", storage, "--out", out.format(**names)]) == 2
    assert fragment.format(**names) in _one_error_line(capsys)
    assert in_the_way.read_text() == "not a folder"


def test_report_write_refused_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = _storage(tmp_path)
    _ga_study(storage)
    monkeypatch.setattr(cli, "_kaleido_available", lambda: False)

    def write_html(figure: go.Figure, path: Path, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))  # e.g. a read-only folder

    monkeypatch.setattr(go.Figure, "write_html", write_html)
    out = tmp_path / "r"
    capsys.readouterr()
    assert main(["report", "--storage", storage, "--out", str(out)]) == 2
    line = _one_error_line(capsys)
    assert f"cannot write --out '{out}': Permission denied ({out / 'genealogy.html'})" in line


def _needs_upgrade(storage: str) -> None:
    # What a database set up by an older Optuna looks like: an earlier schema revision.
    connection = sqlite3.connect(storage[len("sqlite:///") :])
    with connection:  # commits
        connection.execute("UPDATE alembic_version SET version_num = 'v3.0.0.d'")
    connection.close()


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "--out", "{tmp}/r"],
        ["export-csv", "--out", "{tmp}/x.csv"],
        ["worker", "--device", "cpu", "--no-progress"],  # heartbeats: RDBStorage itself
        ["run", "--device", "cpu", "--no-progress"],
    ],
    ids=["report", "export-csv", "worker", "run"],
)
def test_storage_that_needs_an_upgrade_one_line_exit_2(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = _storage(tmp_path)
    _ga_study(storage)
    _needs_upgrade(storage)
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main([*argv, "--storage", storage]) == 2
    line = _one_error_line(capsys)
    assert f"cannot open storage '{storage}': " in line
    assert "optuna storage upgrade" in line  # Optuna's remedy
    assert not (tmp_path / "r").exists() and not (tmp_path / "x.csv").exists()


def test_report_replaces_an_earlier_report_and_names_the_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = _storage(tmp_path)
    _ga_study(storage, "ga")
    tpe = optuna.create_study(storage=storage, study_name="tpe")
    tpe.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    monkeypatch.setattr(cli, "_kaleido_available", lambda: True)
    titles: dict[str, str] = {}
    write_html = go.Figure.write_html

    def record_html(figure: go.Figure, path: Path, **kwargs: object) -> None:
        titles[Path(path).stem] = figure.layout.title.text
        write_html(figure, path, **kwargs)

    def write_image(figure: go.Figure, path: Path) -> None:
        if "History" in figure.layout.title.text:  # kaleido fails for this one
            raise RuntimeError("Kaleido requires Google Chrome to be installed.")
        Path(path).write_bytes(b"PNG")

    monkeypatch.setattr(go.Figure, "write_html", record_html)
    monkeypatch.setattr(go.Figure, "write_image", write_image)
    out = tmp_path / "r"
    out.mkdir()
    # The user's files, two of them named like report's plots: no report wrote them.
    (out / "predictor_accuracy.html").write_text("mine")
    (out / "notes.txt").write_text("mine")

    assert main(["report", "--storage", storage, "--study-name", "ga", "--out", str(out)]) == 0
    assert titles == {
        "genealogy": "Genealogy Plot — ga",
        "generations": "Generations Plot — ga",
        "optimization_history": "Optimization History Plot — ga",
    }
    html = (out / "genealogy.html").read_text(encoding="utf-8")
    # Plotly writes the dash as is with orjson installed, escaped ("\u2014") without it.
    assert "Genealogy Plot — ga" in html or "Genealogy Plot \\u2014 ga" in html
    assert sorted(p.name for p in out.iterdir() if p.suffix in (".html", ".png", ".txt")) == [
        "genealogy.html",
        "genealogy.png",
        "generations.html",
        "generations.png",
        "notes.txt",
        "optimization_history.html",  # its PNG failed
        "predictor_accuracy.html",  # the user's, kept
    ]
    assert "removed" not in capsys.readouterr().out

    titles.clear()
    assert main(["report", "--storage", storage, "--study-name", "tpe", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "skipped genealogy: " in printed and "skipped generations: " in printed
    assert titles == {"optimization_history": "Optimization History Plot — tpe"}
    # ga's genealogy and generations would pass for tpe's: gone; the user's files stay.
    assert sorted(p.name for p in out.iterdir() if p.suffix in (".html", ".png", ".txt")) == [
        "notes.txt",
        "optimization_history.html",
        "predictor_accuracy.html",
    ]
    assert f"removed {out / 'genealogy.png'} (from an earlier report)" in printed
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "predictor_accuracy.html").read_text() == "mine"
