"""The ``optuna-evo`` command line.

- ``optuna-evo run`` starts (or resumes) a study on a ready task with one of the samplers and a
  progress bar. The default is the seed GA paper's run: GeneticSampler tuning the FashionMNIST
  CNN, stored in ``sqlite:///optuna-evo.db`` so optuna-dashboard can watch it and a crashed run
  resumes where it stopped.
- ``optuna-evo worker`` joins a study that ``run`` created, on this or another machine: the
  task, sampler and budget are read from the study, so a worker needs only the storage.
- ``optuna-evo report`` writes the evolution plots as HTML (and PNG when kaleido is there).
- ``optuna-evo export-csv`` writes the evolution log (:func:`optuna_evo.export_csv`).

The objective's settings (task, sampler, population size, seed and budget, with the CPU
defaults already applied) are stored in the study's user attr :data:`CONFIG_KEY` when ``run``
creates it; every later ``run`` and ``worker`` rebuilds exactly that objective, so all trials
of a study are comparable wherever they ran. Only the device and the data directory are
per machine.

MAGE runs (``--sampler mage``) keep every agent's weights, and ``--task genreg`` runs every
trial's best genome (user attr ``genome_artifact_id``), in
:func:`optuna_evo.checkpoint.default_artifact_store`: the folder named by
``OPTUNA_EVO_ARTIFACT_DIR``, else the absolute path of ``./optuna-evo-artifacts`` where ``run``
created the study (stored with its settings). Workers on several machines must share it.

``gender`` runs need a learning curve (GenderSampler rates a trial's early speed, its
LearningCurvePruner extrapolates): trials report about :data:`REPORTS_PER_TRIAL` times, so the
image tasks, which otherwise report once per epoch, report several times an epoch there
(their ``reports_per_epoch``, stored with the settings); epochs and images stay the same.

``run`` and ``worker`` record heartbeats of running trials (``--heartbeat``): a trial whose
worker was killed is failed and re-run by the next trial to start, with the same params and
the same place in the evolution.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
import contextlib
import functools
import importlib.util
import json
import os
from pathlib import Path
import sys
from typing import TYPE_CHECKING
from typing import Any
from typing import NoReturn
import warnings

import optuna
import sqlalchemy.exc

import optuna_evo

if TYPE_CHECKING:
    import torch

TASKS = ("fashion-mnist-cnn", "mlp", "char-lm", "genreg")
"""``--task`` choices: the seed CNN and an MLP on FashionMNIST, a character-level transformer
on tiny shakespeare, GENREG's hyperparameters on FashionMNIST."""

SAMPLERS = ("genetic", "mage", "gender", "tpe", "random", "nsga2")
"""``--sampler`` choices."""

DEFAULT_TASK = "fashion-mnist-cnn"
DEFAULT_SAMPLER = "genetic"
DEFAULT_STORAGE = "sqlite:///optuna-evo.db"
DEFAULT_POPULATION = 10
DEFAULT_N_TRIALS = 20
DEFAULT_HEARTBEAT_S = 60
MAX_SEED = 2**32 - 1
"""Largest ``--seed``: the samplers seed NumPy, whose seeds are 32-bit."""
MAX_RETRIES = 3
"""Re-runs of a trial whose worker died (see :func:`open_storage`)."""

CONFIG_KEY = "optuna_evo:cli"
"""Study user attr holding the settings ``run`` created the study with."""

SAMPLER_TASKS: dict[str, tuple[str, ...]] = {"mage": ("mlp",)}
"""Samplers that need a particular objective: MAGE evolves MLP architectures."""

BUDGET_TASKS: dict[str, tuple[str, ...]] = {
    "epochs": ("fashion-mnist-cnn", "mlp"),
    "max_train": ("fashion-mnist-cnn", "mlp", "genreg"),
    "max_val": ("fashion-mnist-cnn", "mlp", "genreg"),
    "max_steps": ("char-lm", "genreg"),
    "lm_size": ("char-lm",),
}
"""Which tasks each budget option applies to."""

MAGE_SPACE: dict[str, Any] = {
    "layers": [[784, 128, 10], [784, 256, 10], [784, 256, 128, 10]],
    "activations": ["relu", "tanh", "gelu"],
}
"""MAGE's architecture space for ``--task mlp`` (FashionMNIST: 784 inputs, 10 classes)."""

REPORTS_PER_TRIAL = 8
"""Intermediate values a char-lm / genreg trial reports, and at least those of a ``gender`` run
on the image tasks: more than :data:`GENDER_EARLY_STEPS` and :data:`GENDER_PRUNE_AFTER`, so
that GenderSampler and its pruner have a learning curve."""
GENDER_EARLY_STEPS = 3
"""Reports GenderSampler rates a trial's early speed on (and its predictors see)."""
GENDER_PRUNE_AFTER = 5
"""Reports a trial makes before LearningCurvePruner may prune it (never at its last one)."""

# On a CPU a full run takes hours; these keep the default run to seconds per trial there.
CPU_MAX_TRAIN = 5000
CPU_MAX_VAL = 2000
CPU_EPOCHS = 1
CPU_LM_STEPS = 100
CPU_GENREG_GENERATIONS = 20
CPU_GENREG_MAX_TRAIN = 1000
CPU_GENREG_MAX_VAL = 1000
# The tasks' own defaults, used on a GPU.
GPU_EPOCHS = {"fashion-mnist-cnn": 5, "mlp": 3}
GPU_STEPS = {"char-lm": 2000, "genreg": 300}

_OBJECTIVE_KEYS = (
    "task",
    "sampler",
    "population_size",
    "seed",
    "epochs",
    "max_train",
    "max_val",
    "max_steps",
    "lm_size",
)


def small_char_lm() -> type:
    """:class:`~optuna_evo.objectives.SmallCharLM` (``--lm-size small``), imported on first
    use so that the command starts without importing torch."""
    from optuna_evo.objectives.tasks import SmallCharLM

    return SmallCharLM


class CLIError(Exception):
    """A bad argument found after parsing; ``main`` prints it as written and exits 2.

    One line, unless it is a list a person has to read (the places data was looked for).
    """


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``[low, high]`` (no upper bound for ``None``)."""
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {value}")
        return value

    return parse


_positive_int = _int_in(1)
_seed = _int_in(0, MAX_SEED)


def _add_storage_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help=f"default: {DEFAULT_STORAGE}")
    parser.add_argument(
        "--study-name", default=None, help="default: the only study in the storage"
    )


def _add_heartbeat_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--heartbeat",
        type=_int_in(0),
        default=DEFAULT_HEARTBEAT_S,
        help="seconds between a running trial's heartbeats; a trial silent for twice as long "
        f"(its worker was killed) is re-run, up to {MAX_RETRIES} times; 0 = off "
        f"(default: {DEFAULT_HEARTBEAT_S})",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``optuna-evo`` command."""
    parser = _Parser(prog="optuna-evo", description="Evolutionary search for Optuna.")
    parser.add_argument("--version", action="version", version=optuna_evo.__version__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run (or resume) a study on a ready task")
    # Objective options default to None so that resuming a study can tell "not given" from a
    # value that contradicts the stored settings.
    run.add_argument("--task", choices=TASKS, default=None, help=f"default: {DEFAULT_TASK}")
    run.add_argument(
        "--sampler", choices=SAMPLERS, default=None, help=f"default: {DEFAULT_SAMPLER}"
    )
    run.add_argument(
        "--n-trials",
        type=_positive_int,
        default=DEFAULT_N_TRIALS,
        help="trials to run now; a resumed study gets this many more "
        f"(default: {DEFAULT_N_TRIALS})",
    )
    run.add_argument("--storage", default=DEFAULT_STORAGE, help=f"default: {DEFAULT_STORAGE}")
    run.add_argument("--study-name", default=None, help="default: optuna-evo-TASK-SAMPLER")
    run.add_argument(
        "--data-dir", default=None, help="folder with the idx .gz files (or tiny shakespeare)"
    )
    run.add_argument("--download", action="store_true", help="download data if not found")
    run.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: auto)")
    run.add_argument(
        "--seed",
        type=_seed,
        default=None,
        help=f"seed of the sampler and of the trials (trial n trains with seed + n), 0 to "
        f"{MAX_SEED} (default: 0)",
    )
    run.add_argument(
        "--population-size",
        type=_int_in(2),
        default=None,
        help=f"trials per generation (default: {DEFAULT_POPULATION})",
    )
    run.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help="epochs per trial, cnn / mlp (default: "
        f"{GPU_EPOCHS['fashion-mnist-cnn']} / {GPU_EPOCHS['mlp']} on a GPU, "
        f"{CPU_EPOCHS} on a CPU)",
    )
    run.add_argument(
        "--max-train",
        type=_positive_int,
        default=None,
        help=f"training images per trial (default: all on a GPU; on a CPU {CPU_MAX_TRAIN}, "
        f"genreg {CPU_GENREG_MAX_TRAIN})",
    )
    run.add_argument(
        "--max-val",
        type=_positive_int,
        default=None,
        help=f"validation images per trial (default: all on a GPU, {CPU_MAX_VAL} on a CPU; "
        f"genreg {CPU_GENREG_MAX_VAL})",
    )
    run.add_argument(
        "--max-steps",
        type=_positive_int,
        default=None,
        help="optimizer steps (char-lm) or GENREG generations (genreg) per trial (default: "
        f"{GPU_STEPS['char-lm']} / {GPU_STEPS['genreg']} on a GPU, "
        f"{CPU_LM_STEPS} / {CPU_GENREG_GENERATIONS} on a CPU)",
    )
    run.add_argument(
        "--lm-size",
        choices=("small", "paper"),
        default=None,
        help="char-lm search space: the paper's (up to 6 layers x 384) or a CPU-sized one "
        "(default: paper on a GPU, small on a CPU)",
    )
    _add_heartbeat_arg(run)
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    worker = sub.add_parser(
        "worker", help="join a study that `optuna-evo run` created (reads its settings)"
    )
    _add_storage_args(worker)
    worker.add_argument(
        "--n-trials",
        type=_positive_int,
        default=None,
        help="trials this worker runs (default: the creating run's --n-trials)",
    )
    worker.add_argument("--data-dir", default=None, help="default: the creating run's")
    worker.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: auto)")
    worker.add_argument(
        "--seed",
        type=_seed,
        default=None,
        help=f"sampler seed, 0 to {MAX_SEED} (default: the study's for optuna-evo samplers, "
        "fresh for Optuna's)",
    )
    _add_heartbeat_arg(worker)
    worker.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    report = sub.add_parser("report", help="write the evolution plots as HTML (and PNG)")
    _add_storage_args(report)
    report.add_argument(
        "--out",
        required=True,
        help="output folder (created if needed); an earlier report's plots there are "
        "replaced, or removed when skipped",
    )

    export = sub.add_parser("export-csv", help="write the evolution log as CSV")
    _add_storage_args(export)
    export.add_argument("--out", required=True, help="CSV file to write")
    return parser


# -- storage -------------------------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def open_storage(url: str, must_exist: bool, heartbeat_s: int = 0) -> optuna.storages.BaseStorage:
    """Open an RDB storage URL, turning every failure into a :class:`CLIError`.

    Failures include a database whose schema an older or newer Optuna set up (Optuna's
    message says to run ``optuna storage upgrade`` or to update Optuna). With ``must_exist``
    a missing SQLite file is an error instead of a new empty database.
    With ``heartbeat_s`` > 0 a running trial records a heartbeat that often; one silent for
    twice as long (its worker was killed) is failed by the next trial to start anywhere and
    re-run with the same params and place in the evolution, up to :data:`MAX_RETRIES` times.
    """
    path = sqlite_file(url)
    if must_exist and path is not None and not os.path.exists(path):
        raise CLIError(f"no SQLite database at {path!r} (storage {url})")
    try:
        if heartbeat_s > 0:
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=heartbeat_s,
                grace_period=2 * heartbeat_s,
                **_retry_stale_trials(),
            )
        return optuna.storages.get_storage(url)
    except (ImportError, ValueError, sqlalchemy.exc.SQLAlchemyError) as e:
        raise CLIError(f"cannot open storage {url!r}: {_one_line(e)}") from None
    except RuntimeError as e:
        # Optuna's schema check: the remedy (`optuna storage upgrade`) is in its message.
        raise CLIError(f"cannot open storage {url!r}: {_one_line(e)}") from None


def sqlite_file(url: str) -> str | None:
    """The database file of a ``sqlite:///`` URL; ``None`` for other storages and memory."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :].split("?")[0]
    return None if path in ("", ":memory:") else path


def _retry_stale_trials() -> dict[str, Any]:
    # Optuna 4.9 renamed the callback and its argument; 4.8 has only the old names.
    if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):
        callback = optuna.storages.RetryHeartbeatStaleTrialCallback(MAX_RETRIES)
        return {"heartbeat_stale_trial_callback": callback}
    return {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(MAX_RETRIES)}


def find_study_name(storage: optuna.storages.BaseStorage, url: str, name: str | None) -> str:
    """Return ``name`` if the storage has that study; with no name, its only study's name."""
    names = [s.study_name for s in storage.get_all_studies()]
    shown = ", ".join(repr(n) for n in names[:10]) + (", ..." if len(names) > 10 else "")
    if name is None:
        if len(names) == 1:
            return names[0]
        if not names:
            raise CLIError(f"no study in {url}")
        raise CLIError(f"{len(names)} studies in {url} ({shown}); pass --study-name")
    if name not in names:
        there = f" (studies there: {shown})" if names else " (it holds no study)"
        raise CLIError(f"no study named {name!r} in {url}{there}")
    return name


# -- settings, objective, sampler ----------------------------------------------------------


def new_settings(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """The objective settings of a new study: the flags given, CPU / GPU defaults otherwise."""
    task = args.task or DEFAULT_TASK
    on_cpu = device.type == "cpu"
    settings: dict[str, Any] = {
        "task": task,
        "sampler": args.sampler or DEFAULT_SAMPLER,
        "population_size": args.population_size or DEFAULT_POPULATION,
        "seed": 0 if args.seed is None else args.seed,
        "epochs": None,
        "max_train": None,
        "max_val": None,
        "max_steps": None,
        "lm_size": None,
        "reports_per_epoch": None,
    }
    if task in ("fashion-mnist-cnn", "mlp"):
        settings["epochs"] = args.epochs or (CPU_EPOCHS if on_cpu else GPU_EPOCHS[task])
        if settings["sampler"] == "gender":
            # One report an epoch is no curve for GenderSampler and its pruner.
            settings["reports_per_epoch"] = -(-REPORTS_PER_TRIAL // settings["epochs"])
        settings["max_train"] = args.max_train or (CPU_MAX_TRAIN if on_cpu else None)
        settings["max_val"] = args.max_val or (CPU_MAX_VAL if on_cpu else None)
        if task == "mlp" and settings["sampler"] == "mage":
            settings["artifact_dir"] = _artifact_dir()
    elif task == "char-lm":
        settings["max_steps"] = args.max_steps or (CPU_LM_STEPS if on_cpu else GPU_STEPS[task])
        settings["lm_size"] = args.lm_size or ("small" if on_cpu else "paper")
    else:
        settings["max_steps"] = args.max_steps or (
            CPU_GENREG_GENERATIONS if on_cpu else GPU_STEPS[task]
        )
        settings["max_train"] = args.max_train or (CPU_GENREG_MAX_TRAIN if on_cpu else None)
        settings["max_val"] = args.max_val or (CPU_GENREG_MAX_VAL if on_cpu else None)
        settings["artifact_dir"] = _artifact_dir()  # every trial's best genome is kept
    return settings


def _artifact_dir() -> str:
    # Absolute, so that a worker started in another folder finds the artifacts (on another
    # machine, $OPTUNA_EVO_ARTIFACT_DIR names the shared folder there).
    from optuna_evo.checkpoint import default_artifact_dir

    return str(default_artifact_dir().resolve())


def _artifact_store(settings: dict[str, Any]) -> Any:
    """The default artifact store in the study's stored folder (see the module docstring)."""
    from optuna_evo.checkpoint import default_artifact_store

    return default_artifact_store(settings.get("artifact_dir"))


def check_settings(settings: dict[str, Any], args: argparse.Namespace) -> None:
    """Reject a task the sampler cannot drive and budget flags the task does not use."""
    task, sampler = settings["task"], settings["sampler"]
    allowed = SAMPLER_TASKS.get(sampler)
    if allowed is not None and task not in allowed:
        raise CLIError(
            f"--sampler {sampler} needs --task {' or '.join(allowed)} "
            f"(it evolves MLP architectures), got --task {task}"
        )
    for key, tasks in BUDGET_TASKS.items():
        if getattr(args, key) is not None and task not in tasks:
            flag = "--" + key.replace("_", "-")
            raise CLIError(f"{flag} does not apply to --task {task} (only {', '.join(tasks)})")


def _check_resume(stored: dict[str, Any], args: argparse.Namespace, name: str) -> None:
    for key in _OBJECTIVE_KEYS:
        given = getattr(args, key)
        if given is not None and given != stored.get(key):
            flag = "--" + key.replace("_", "-")
            raise CLIError(
                f"study {name!r} was created with {flag} {stored.get(key)}; "
                "pass the same value or leave it out"
            )


def describe(settings: dict[str, Any]) -> str:
    """One line naming the objective settings, e.g. for the start of a run."""
    parts = [f"task {settings['task']}", f"sampler {settings['sampler']}"]
    parts.append(f"population {settings['population_size']}")
    for key in ("epochs", "reports_per_epoch", "max_train", "max_val", "max_steps", "lm_size"):
        if settings.get(key) is not None:
            parts.append(f"{key.replace('_', '-')} {settings[key]}")
    return ", ".join(parts)


def make_objective(
    settings: dict[str, Any],
    device: torch.device,
    data_dir: str | None,
    download: bool,
) -> Callable[[optuna.Trial], float]:
    """Build the stored objective on ``device`` and load its data (missing data fails here).

    The returned callable has a ``direction`` attribute (``"minimize"`` or ``"maximize"``).
    """
    from optuna_evo.objectives import FashionMNISTCNN
    from optuna_evo.objectives import MLPTask

    task = settings["task"]
    seed = settings["seed"]
    objective: Any
    if task == "fashion-mnist-cnn":
        objective = FashionMNISTCNN(
            data_dir,
            device,
            epochs=settings["epochs"],
            reports_per_epoch=settings.get("reports_per_epoch") or 1,
            max_train=settings["max_train"],
            max_val=settings["max_val"],
            seed=seed,
            download=download,
        )
    elif task == "mlp":
        architecture_fn, store = None, None
        if settings["sampler"] == "mage":  # MAGE plans the architecture of every agent
            architecture_fn = functools.partial(
                optuna_evo.suggest_architecture, search_space=MAGE_SPACE
            )
            # ... and its children continue from their parent's weights.
            store = _artifact_store(settings)
        objective = MLPTask(
            "fashion-mnist",
            data_dir,
            device,
            epochs=settings["epochs"],
            reports_per_epoch=settings.get("reports_per_epoch") or 1,
            architecture_fn=architecture_fn,
            max_train=settings["max_train"],
            max_val=settings["max_val"],
            seed=seed,
            download=download,
            artifact_store=store,
        )
    elif task == "char-lm":
        from optuna_evo.objectives import CharLM

        steps = settings["max_steps"]
        small = settings["lm_size"] == "small"
        objective = (small_char_lm() if small else CharLM)(
            data_dir,
            device,
            max_steps=steps,
            eval_interval=_report_interval(steps),
            eval_iters=4 if small else 20,
            block_size=64 if small else 256,
            seed=seed,
            download=download,
        )
    elif task == "genreg":
        from optuna_evo.genreg import GenregObjective
        from optuna_evo.genreg import load_task

        generations = settings["max_steps"]
        data = load_task(
            "fashion-mnist",
            data_dir=data_dir,
            device=device,
            max_train=settings["max_train"],
            max_val=settings["max_val"],
            max_test=1,  # the objective never looks at the test split
            download=download,
        )
        # Studies made before genomes were kept have no folder in their settings: keep none.
        store = _artifact_store(settings) if "artifact_dir" in settings else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return GenregObjective(
                generations=generations,
                report_every=_report_interval(generations),
                device=device,
                seed=seed,
                task=data,
                artifact_store=store,
            )
    else:
        raise CLIError(f"unknown task {task!r} in the study's settings")
    objective.load_data()
    return objective


def make_sampler(settings: dict[str, Any], seed: int | None) -> optuna.samplers.BaseSampler:
    """Build the sampler of ``settings`` (by its CLI name) with ``seed``."""
    name = settings["sampler"]
    size = settings["population_size"]
    top = min(size, max(2, size // 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "genetic":
            return optuna_evo.GeneticSampler(population_size=size, seed=seed)
        if name == "mage":
            return optuna_evo.MAGESampler(
                "multi", MAGE_SPACE, population_size=size, n_elites=max(1, size // 4), seed=seed
            )
        if name == "gender":
            return optuna_evo.GenderSampler(
                population_size=size,
                n_top_males=top,
                n_top_females=top,
                early_steps=GENDER_EARLY_STEPS,
                seed=seed,
            )
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=size, seed=seed)
    raise CLIError(f"unknown sampler {name!r} in the study's settings")


def make_pruner(settings: dict[str, Any]) -> optuna.pruners.BasePruner:
    """GenderSampler's learning-curve pruner for ``gender``; no pruning otherwise.

    Optuna's default MedianPruner would prune CPU runs (one epoch, one report) after their
    only report, throwing away finished trials, and MAGE's agents always train their local
    epochs.
    """
    if settings["sampler"] == "gender":
        return optuna_evo.LearningCurvePruner(min_steps=GENDER_PRUNE_AFTER)
    return optuna.pruners.NopPruner()


def _report_interval(steps: int) -> int:
    """Steps (char-lm) or generations (genreg) between reports: about REPORTS_PER_TRIAL."""
    return max(1, steps // REPORTS_PER_TRIAL)


def reports_per_trial(settings: dict[str, Any]) -> int:
    """Intermediate values a finished trial of ``settings`` has reported."""
    if settings["task"] in ("fashion-mnist-cnn", "mlp"):
        # At most: an epoch shorter than reports_per_epoch steps reports once per step.
        return int(settings["epochs"]) * int(settings.get("reports_per_epoch") or 1)
    steps = int(settings["max_steps"])
    return -(-steps // _report_interval(steps))  # every interval, and after the last step


def gender_warning(settings: dict[str, Any]) -> str | None:
    """One line saying why a ``gender`` run's trials report too few values, or ``None``.

    GenderSampler rates early speed on trials with more than GENDER_EARLY_STEPS reports, and
    LearningCurvePruner prunes only between report GENDER_PRUNE_AFTER and the last one.
    """
    if settings["sampler"] != "gender":
        return None
    n = reports_per_trial(settings)
    if n > max(GENDER_EARLY_STEPS, GENDER_PRUNE_AFTER):
        return None
    flag = "--epochs" if settings["task"] in ("fashion-mnist-cnn", "mlp") else "--max-steps"
    return (
        f"a trial reports {n} intermediate value{'s' * (n != 1)}, too few for --sampler "
        f"gender (its early-speed rating needs more than {GENDER_EARLY_STEPS}, its pruner more "
        f"than {GENDER_PRUNE_AFTER}): start a study with {flag} {REPORTS_PER_TRIAL} or more"
    )


def _resolve_device(name: str | None) -> torch.device:
    import torch

    from optuna_evo.objectives.data import resolve_device

    try:
        device = resolve_device(name)
    except (RuntimeError, ValueError) as e:
        raise CLIError(f"bad --device {name!r}: {_one_line(e)}") from None
    # Checked here because torch only fails at the first tensor, deep inside a trial.
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CLIError(f"--device {name}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CLIError(f"--device {name}: this machine has {torch.cuda.device_count()} GPUs")
    return device


# -- running -------------------------------------------------------------------------------


class _DashboardRefresh:
    """Callback that re-saves the dashboard figures after every ``every`` trials."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.done = 0

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.done += 1
        if self.done % self.every == 0:
            from optuna_evo.visualization import save_to_dashboard

            save_to_dashboard(study)


def _optimize(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    settings: dict[str, Any],
    n_trials: int,
    progress: bool,
    storage_url: str,
) -> None:
    from optuna_evo.visualization import save_to_dashboard

    callbacks = []
    if settings["sampler"] not in ("tpe", "random"):  # the others have generations
        callbacks.append(_DashboardRefresh(settings["population_size"]))
    try:
        study.optimize(
            objective, n_trials=n_trials, show_progress_bar=progress, callbacks=callbacks
        )
    finally:
        # Also after Ctrl-C: the dashboard then shows the trials that did finish.
        save_to_dashboard(study)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    metric = "validation accuracy" if settings["task"] == "genreg" else "validation loss"
    if not complete:
        print("no trial completed (see the failed trials' user attr fail_reason)")
    else:
        best = study.best_trial
        print(f"best trial #{best.number}: {metric} {best.value:.4f} with {best.params}")
        if "val_accuracy" in best.user_attrs:
            print(f"  validation accuracy {best.user_attrs['val_accuracy']:.4f}")
    print(f"watch it: optuna-dashboard {storage_url}")


def _load_objective(
    settings: dict[str, Any],
    device: torch.device,
    data_dir: str | None,
    download: bool,
    download_flag: str | None,
) -> Callable[[optuna.Trial], float]:
    """:func:`make_objective`, with missing data explained in this command's flags."""
    from optuna_evo.objectives.data import DataNotFoundError

    try:
        return make_objective(settings, device, data_dir, download)
    except DataNotFoundError as e:
        # The library's message names Python arguments (data_dir=, download=True).
        flags = {"data_dir": "--data-dir ", "data_path": "--data-dir ", "download": download_flag}
        raise CLIError(e.explain(flags)) from None


def _warn_gender(settings: dict[str, Any]) -> None:
    warning = gender_warning(settings)
    if warning is not None:
        print(f"optuna-evo: warning: {warning}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    device = _resolve_device(args.device)
    path = sqlite_file(args.storage)
    new_file = path if path is not None and not os.path.exists(path) else None
    storage = open_storage(args.storage, must_exist=False, heartbeat_s=args.heartbeat)
    try:
        return _run_in(args, device, storage)
    except CLIError:
        # A refused run leaves no empty database behind (the next `run` would find it).
        if new_file is not None and not storage.get_all_studies():
            os.remove(new_file)
        raise


def _run_in(
    args: argparse.Namespace, device: torch.device, storage: optuna.storages.BaseStorage
) -> int:
    task = args.task or DEFAULT_TASK
    sampler = args.sampler or DEFAULT_SAMPLER
    study_name = args.study_name or f"optuna-evo-{task}-{sampler}"
    stored = None
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        study_id = None
    if study_id is not None:
        stored = storage.get_study_user_attrs(study_id).get(CONFIG_KEY)
        if stored is None and storage.get_all_trials(study_id, deepcopy=False):
            raise CLIError(
                f"study {study_name!r} in {args.storage} was not created by `optuna-evo run`; "
                "pick another --study-name (its trials are of another objective)"
            )
    if stored is not None:
        settings = dict(stored)
        check_settings(settings, args)
        _check_resume(stored, args, study_name)
    else:
        settings = new_settings(args, device)
        settings["n_trials"] = args.n_trials
        check_settings(settings, args)
    data_dir = os.path.abspath(args.data_dir) if args.data_dir else settings.get("data_dir")
    settings["data_dir"] = data_dir
    settings["download"] = bool(args.download or settings.get("download"))
    # Data first: a missing dataset must not leave an empty study behind.
    objective = _load_objective(settings, device, data_dir, settings["download"], "--download")
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction=objective.direction,  # type: ignore[attr-defined]
        sampler=make_sampler(settings, settings["seed"]),
        pruner=make_pruner(settings),
        load_if_exists=True,
    )
    if stored is None:
        study.set_user_attr(CONFIG_KEY, settings)
    done = len(study.get_trials(deepcopy=False))
    print(f"study {study_name!r} in {args.storage} ({done} trials already there)")
    print(f"{describe(settings)}; device {device}")
    _warn_gender(settings)
    _optimize(study, objective, settings, args.n_trials, not args.no_progress, args.storage)
    return 0


def _load_settings(storage: optuna.storages.BaseStorage, name: str) -> dict[str, Any]:
    study_id = storage.get_study_id_from_name(name)
    settings = storage.get_study_user_attrs(study_id).get(CONFIG_KEY)
    if settings is None:
        raise CLIError(
            f"study {name!r} was not created by `optuna-evo run`, so its task and sampler are "
            "unknown; start workers of your own objective with optuna.load_study"
        )
    return dict(settings)


def _worker(args: argparse.Namespace) -> int:
    device = _resolve_device(args.device)
    storage = open_storage(args.storage, must_exist=True, heartbeat_s=args.heartbeat)
    name = find_study_name(storage, args.storage, args.study_name)
    settings = _load_settings(storage, name)
    data_dir = os.path.abspath(args.data_dir) if args.data_dir else settings.get("data_dir")
    # A worker downloads only if the creating run did: it has no --download to suggest.
    download = bool(settings.get("download"))
    objective = _load_objective(settings, device, data_dir, download, None)
    seed = args.seed
    if seed is None and settings["sampler"] in ("genetic", "mage", "gender"):
        # Their per-trial streams are seeded by (seed, trial number): sharing the seed keeps
        # the run reproducible and the workers still explore differently. Optuna's samplers
        # would draw the same points in every worker, so they get a fresh seed.
        seed = settings["seed"]
    study = optuna.load_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(settings, seed),
        pruner=make_pruner(settings),
    )
    n_trials = args.n_trials or settings.get("n_trials") or DEFAULT_N_TRIALS
    done = len(study.get_trials(deepcopy=False))
    print(f"worker joins study {name!r} in {args.storage} ({done} trials there)")
    print(f"{describe(settings)}; device {device}")
    _warn_gender(settings)
    _optimize(study, objective, settings, n_trials, not args.no_progress, args.storage)
    return 0


def _kaleido_available() -> bool:
    return importlib.util.find_spec("kaleido") is not None


# The plots `report` writes, as {stem}.html (and {stem}.png) in --out.
_REPORT_STEMS = ("genealogy", "generations", "optimization_history", "predictor_accuracy")


@contextlib.contextmanager
def _writing_out(out: str) -> Iterator[None]:
    """Turn an ``OSError`` of writing ``--out`` into a one-line :class:`CLIError`."""
    try:
        yield
    except OSError as e:  # a file in the way, no such folder, no permission, disk full, ...
        reason = e.strerror or _one_line(e)
        # The path that failed may be a folder above --out, or a file written inside it.
        failed = e.filename
        same = failed is None or os.path.normpath(os.fsdecode(failed)) == os.path.normpath(out)
        where = "" if same else f" ({os.fsdecode(failed)})"
        raise CLIError(f"cannot write --out {out!r}: {reason}{where}") from None


# The files a report wrote, so that the next one into the folder removes only its own.
_REPORT_MANIFEST = ".optuna-evo-report.json"


def _earlier_report(out: Path) -> set[str]:
    """Names of the plot files the previous ``report`` into ``out`` wrote (from its manifest)."""
    try:
        names = json.loads((out / _REPORT_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()  # none, or unreadable: remove nothing
    plots = {f"{stem}{suffix}" for stem in _REPORT_STEMS for suffix in (".html", ".png")}
    return {n for n in names if n in plots} if isinstance(names, list) else set()


def _report(args: argparse.Namespace) -> int:
    from optuna_evo.predictors.population import stored_female_generations
    from optuna_evo.visualization import plot_genealogy
    from optuna_evo.visualization import plot_generations
    from optuna_evo.visualization import plot_predictor_accuracy

    storage = open_storage(args.storage, must_exist=True)
    name = find_study_name(storage, args.storage, args.study_name)
    study = optuna.load_study(study_name=name, storage=storage)
    if len(study.directions) > 1:
        raise CLIError(f"study {name!r} is multi-objective; the plots need a single objective")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} is a file; give a folder for the report")
    with _writing_out(args.out):
        out.mkdir(parents=True, exist_ok=True)
    plots: dict[str, Callable[[optuna.Study], Any]] = {
        "genealogy": plot_genealogy,
        "generations": plot_generations,
        "optimization_history": optuna.visualization.plot_optimization_history,
    }
    if stored_female_generations(study):  # only GenderSampler studies have predictors
        plots["predictor_accuracy"] = plot_predictor_accuracy
    png = _kaleido_available()
    if not png:
        print("note: kaleido is not installed, so no PNG files (pip install kaleido)")
    # The plots log why a figure is empty; this command prints it once itself.
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # Plots of an earlier report (maybe of another study) that this run does not rewrite
    # would pass for this study's: they are removed below. Files report did not write stay.
    earlier = _earlier_report(out)
    written: set[str] = set()
    try:
        for stem in _REPORT_STEMS:
            plot = plots.get(stem)
            figure = plot(study) if plot is not None else None
            if figure is not None and not figure.data:
                notes = [a.text for a in figure.layout.annotations] or ["no COMPLETE trial"]
                print(f"skipped {stem}: {notes[0]}")
            elif figure is not None:
                # Pages of several studies side by side (or in a browser's tabs) say whose.
                title = figure.layout.title.text
                figure.update_layout(title_text=f"{title} — {name}" if title else name)
                html = out / f"{stem}.html"
                with _writing_out(args.out):
                    # plotly.min.js is written once beside the pages, so they open offline.
                    figure.write_html(html, include_plotlyjs="directory")
                written.add(html.name)
                print(f"wrote {html}")
                if png:
                    try:
                        figure.write_image(out / f"{stem}.png")
                        written.add(f"{stem}.png")
                        print(f"wrote {out / f'{stem}.png'}")
                    except Exception as e:  # kaleido needs a Chrome it can start
                        print(f"note: no PNG of {stem}: {_one_line(e)}")
    finally:
        optuna.logging.set_verbosity(verbosity)
    with _writing_out(args.out):
        for stale in sorted(earlier - written):
            if (out / stale).is_file():
                (out / stale).unlink()
                print(f"removed {out / stale} (from an earlier report)")
        (out / _REPORT_MANIFEST).write_text(json.dumps(sorted(written)), encoding="utf-8")
    return 0


def _export_csv(args: argparse.Namespace) -> int:
    storage = open_storage(args.storage, must_exist=True)
    name = find_study_name(storage, args.storage, args.study_name)
    study = optuna.load_study(study_name=name, storage=storage)
    if os.path.isdir(args.out):
        raise CLIError(f"--out {args.out!r} is a folder; give the CSV file's path")
    with _writing_out(args.out):
        n = optuna_evo.export_csv(study, args.out)
    print(f"wrote {n} rows of study {name!r} to {args.out}")
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _run,
    "worker": _worker,
    "report": _report,
    "export-csv": _export_csv,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``optuna-evo`` console script."""
    args = build_parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            # Command-line users cannot act on "this API may change" warnings.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return _COMMANDS[args.command](args)
    except CLIError as e:
        # Bad input found after parsing (no data, unknown study, ...), worded for the
        # command line: usage exit code.
        print(f"optuna-evo: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as e:
        # The library's own checks: one clear line.
        print(f"optuna-evo: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("optuna-evo: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
