"""The ``optuna-evo`` command line.

``optuna-evo run`` starts (or resumes) a study on a ready task with one of the samplers and a
progress bar; the default is the seed GA paper's run: GeneticSampler tuning the FashionMNIST
CNN, stored in ``sqlite:///optuna-evo.db`` so optuna-dashboard can watch it and a crashed run
resumes where it stopped.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
import sys
from typing import Any
from typing import NoReturn
import warnings

import optuna

import optuna_evo

TASKS = ("fashion-mnist-cnn", "mlp")
SAMPLERS = ("genetic", "tpe", "random", "nsga2")
# On a CPU the full 50k-image epoch takes minutes; these keep the default run short there.
CPU_MAX_TRAIN = 5000
CPU_MAX_VAL = 2000
CPU_EPOCHS = 1


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``optuna-evo`` command."""
    parser = _Parser(prog="optuna-evo", description="Evolutionary search for Optuna.")
    parser.add_argument("--version", action="version", version=optuna_evo.__version__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run (or resume) a study on a ready task")
    run.add_argument("--task", choices=TASKS, default="fashion-mnist-cnn")
    run.add_argument("--sampler", choices=SAMPLERS, default="genetic")
    run.add_argument("--n-trials", type=_positive_int, default=20)
    run.add_argument("--storage", default="sqlite:///optuna-evo.db")
    run.add_argument("--study-name", default=None, help="default: optuna-evo-TASK-SAMPLER")
    run.add_argument("--data-dir", default=None, help="folder with the idx .gz files")
    run.add_argument("--download", action="store_true", help="download data if not found")
    run.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: auto)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--population-size", type=_positive_int, default=10)
    run.add_argument("--epochs", type=_positive_int, default=None)
    run.add_argument(
        "--max-train",
        type=_positive_int,
        default=None,
        help=f"training images per trial (default: all on a GPU, {CPU_MAX_TRAIN} on a CPU)",
    )
    run.add_argument(
        "--max-val",
        type=_positive_int,
        default=None,
        help=f"validation images per trial (default: all on a GPU, {CPU_MAX_VAL} on a CPU)",
    )
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def make_sampler(name: str, seed: int, population_size: int) -> optuna.samplers.BaseSampler:
    """Build a sampler by its CLI name."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "genetic":
            return optuna_evo.GeneticSampler(population_size=population_size, seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population_size, seed=seed)
    raise ValueError(f"`sampler` must be one of {SAMPLERS}, got {name!r}.")


def make_task(args: argparse.Namespace) -> Callable[[optuna.Trial], float]:
    """Build the objective of ``--task`` with the CPU-friendly defaults applied."""
    from optuna_evo.objectives import FashionMNISTCNN
    from optuna_evo.objectives import MLPTask
    from optuna_evo.objectives.data import resolve_device

    device = resolve_device(args.device)
    on_cpu = device.type == "cpu"
    max_train = args.max_train or (CPU_MAX_TRAIN if on_cpu else None)
    max_val = args.max_val or (CPU_MAX_VAL if on_cpu else None)
    kwargs: dict[str, Any] = {
        "device": device,
        "max_train": max_train,
        "max_val": max_val,
        "seed": args.seed,
    }
    if args.epochs is not None or on_cpu:
        kwargs["epochs"] = args.epochs or CPU_EPOCHS
    if args.task == "fashion-mnist-cnn":
        return FashionMNISTCNN(args.data_dir, download=args.download, **kwargs)
    return MLPTask("fashion-mnist", args.data_dir, download=args.download, **kwargs)


def _run(args: argparse.Namespace) -> int:
    task = make_task(args)
    study_name = args.study_name or f"optuna-evo-{args.task}-{args.sampler}"
    study = optuna.create_study(
        storage=args.storage,
        study_name=study_name,
        direction="minimize",
        sampler=make_sampler(args.sampler, args.seed, args.population_size),
        load_if_exists=True,
    )
    done = len(study.trials)
    print(f"study {study_name!r} in {args.storage} ({done} trials already there)")
    study.optimize(task, n_trials=args.n_trials, show_progress_bar=not args.no_progress)
    best = study.best_trial
    print(f"best trial #{best.number}: validation loss {best.value:.4f} with {best.params}")
    if "val_accuracy" in best.user_attrs:
        print(f"  validation accuracy {best.user_attrs['val_accuracy']:.4f}")
    print(f"watch it: optuna-dashboard {args.storage}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``optuna-evo`` console script."""
    args = build_parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if args.command == "run":
            return _run(args)
    except (ValueError, FileNotFoundError) as e:
        # Bad input found after parsing (e.g. no data): one clear line, usage exit code.
        print(f"optuna-evo: error: {e}", file=sys.stderr)
        return 2
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
