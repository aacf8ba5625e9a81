"""The seed GA-hyperparameter paper's FashionMNIST runs, and samplers compared at equal budget.

Part 1 reproduces the paper's setup with :class:`~optuna_evo.objectives.FashionMNISTCNN`: the
two-conv CNN, SGD whose ``lr`` (1e-4 to 1, log), ``momentum`` (0 to 0.9) and ``weight_decay``
(0 to 0.1) the GA chooses, batch 64, StepLR with gamma 0.7 every epoch, 50k / 10k train /
validation split. It runs the baseline (one fixed SGD setting, below) and four GA runs, as we
read the paper's table:

========  ==========  ===========  =============
run       population  generations  mutation_prob
========  ==========  ===========  =============
run 1     10          3            0
run 2     5           2            0
run 3     10          3            0.2
run 4     10          5            0.2
========  ==========  ===========  =============

and reports, per run, the final training loss, the best validation loss, the validation and
test accuracy of the best trial, and the run's wall time. The paper's own figures are not
available offline, so the report holds our measurements only.

Part 2 compares GeneticSampler (defaults) with TPESampler, NSGAIISampler, CmaEsSampler and
RandomSampler on the same objective at an equal trial budget, ``--seeds`` seeds each: median
and spread of the best validation accuracy, summed training time, and a plotly figure of the
median best-so-far validation accuracy against trials (HTML next to the report). All use their
defaults but one: NSGAIISampler gets GeneticSampler's population size (10). With Optuna's
default of 50, a 30-trial budget never leaves NSGA-II's random first generation, and with the
same seed it then draws exactly RandomSampler's trials (measured: identical rows).
``--samplers`` runs only some of them, or adds ``GeneticSampler [variant]`` (the CPU suite's
tuned blend crossover + Gaussian mutation).

Every study runs on its own, so several can run at once: ``--jobs`` worker processes (8 on a
GPU by default) share the device, which keeps the full setup under 10 minutes on one GPU. The
best values do not depend on ``--jobs``; wall and training times include the sharing.

Usage::

    python benchmarks/seed_ga_fashion_mnist.py                  # GPU, the full setup
    python benchmarks/seed_ga_fashion_mnist.py --quick --out /tmp/seed_ga.md   # CPU smoke run

``--quick`` shrinks the data (1,024 / 512 images, 1 epoch), the CNN (8 / 16 channels, 32
hidden), the runs (population 2) and the comparison (4 trials, 2 seeds) so the whole script
runs on a CPU in about a minute; its figures mean nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import as_completed
from dataclasses import dataclass
import datetime
import inspect
import multiprocessing
import os
from pathlib import Path
import platform
import statistics
import sys
import time
from typing import Any
import warnings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Run from a plain checkout.

import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import torch  # noqa: E402

from benchmarks._common import GA_VARIANT_KWARGS  # noqa: E402
from benchmarks._common import save_report  # noqa: E402
import optuna_evo  # noqa: E402
from optuna_evo.objectives import FashionMNISTCNN  # noqa: E402

# pytorch/examples' classic MNIST SGD setting, the usual hand-picked starting point.
BASELINE = {"lr": 0.01, "momentum": 0.5, "weight_decay": 0.0}


@dataclass(frozen=True)
class GARun:
    """One of the paper's GA runs."""

    name: str
    population: int
    generations: int
    mutation_prob: float


PAPER_RUNS = (
    GARun("run 1", 10, 3, 0.0),
    GARun("run 2", 5, 2, 0.0),
    GARun("run 3", 10, 3, 0.2),
    GARun("run 4", 10, 5, 0.2),
)

GA_POPULATION: int = (
    inspect.signature(optuna_evo.GeneticSampler).parameters["population_size"].default
)
"""GeneticSampler's default population size, given to NSGAIISampler too (see Part 2)."""

COMPARED: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "GeneticSampler": lambda s: optuna_evo.GeneticSampler(seed=s),
    "TPESampler": lambda s: optuna.samplers.TPESampler(seed=s),
    "NSGAIISampler": lambda s: optuna.samplers.NSGAIISampler(
        population_size=GA_POPULATION, seed=s
    ),
    "CmaEsSampler": lambda s: optuna.samplers.CmaEsSampler(
        seed=s, warn_independent_sampling=False
    ),
    "RandomSampler": lambda s: optuna.samplers.RandomSampler(seed=s),
}
"""The samplers part 2 compares by default."""

OPTIONAL: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "GeneticSampler [variant]": lambda s: optuna_evo.GeneticSampler(seed=s, **GA_VARIANT_KWARGS),
}
"""Samplers part 2 runs only when ``--samplers`` names them (the CPU suite's tuned variant)."""

SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {**COMPARED, **OPTIONAL}
"""Every sampler part 2 can run, in report order."""


def _finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.state == TrialState.COMPLETE]


@dataclass(frozen=True)
class Job:
    """One study of the benchmark: the baseline, a paper run, or a (sampler, seed) pair."""

    label: str
    sampler: str
    """``"baseline"``, ``"paper"`` (a :class:`GARun`) or a key of :data:`SAMPLERS`."""
    seed: int
    trials: int
    run: GARun | None = None
    evaluate_test: bool = False


def paper_jobs(runs: tuple[GARun, ...], seed: int) -> list[Job]:
    """The baseline and the paper's GA runs (they report test accuracy)."""
    jobs = [Job("baseline", "baseline", seed, 1, evaluate_test=True)]
    for run in runs:
        label = (
            f"{run.name} (pop {run.population}, {run.generations} gen, mut {run.mutation_prob})"
        )
        trials = run.population * run.generations
        jobs.append(Job(label, "paper", seed, trials, run=run, evaluate_test=True))
    return jobs


def comparison_jobs(budget: int, seeds: list[int], samplers: list[str] | None = None) -> list[Job]:
    """Every compared sampler (or those named), ``budget`` trials per seed."""
    names = [n for n in SAMPLERS if n in (samplers or COMPARED)]
    return [Job(f"{name} seed {s}", name, s, budget) for name in names for s in seeds]


_TASKS: dict[tuple, FashionMNISTCNN] = {}
"""One objective per worker process and setting, so its data goes to the device once."""


def run_job(job: Job, task_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run one study; return the best trial's figures and the best-so-far accuracy curve."""
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kwargs = {**task_kwargs, "evaluate_test": job.evaluate_test}
    key = tuple(sorted(kwargs.items()))
    if key not in _TASKS:
        _TASKS[key] = FashionMNISTCNN(**kwargs)
    task = _TASKS[key]
    start = time.perf_counter()
    if job.sampler == "baseline":
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=job.seed))
        study.enqueue_trial(BASELINE)
    elif job.run is not None:
        study = optuna.create_study(
            sampler=optuna_evo.GeneticSampler(
                population_size=job.run.population,
                mutation_prob=job.run.mutation_prob,
                seed=job.seed,
            )
        )
    else:
        study = optuna.create_study(sampler=SAMPLERS[job.sampler](job.seed))
    study.optimize(task, n_trials=job.trials)
    wall = time.perf_counter() - start
    done = _finished(study)
    best = study.best_trial if done else None
    curve, best_acc = [], 0.0
    for t in study.trials:
        if t.state == TrialState.COMPLETE:
            best_acc = max(best_acc, float(t.user_attrs.get("val_accuracy", 0.0)))
        curve.append(best_acc)
    return {
        "run": job.label,
        "trials": f"{len(done)}/{job.trials}",
        "train_loss": best.user_attrs.get("train_loss") if best else None,
        "best_val_loss": best.value if best else None,
        "val_accuracy": best.user_attrs.get("val_accuracy") if best else None,
        "test_accuracy": best.user_attrs.get("test_accuracy") if best else None,
        "params": best.params if best else {},
        "wall": wall,
        "best": best_acc,
        "curve": curve,
        "train_s": sum(float(t.user_attrs.get("train_seconds", 0.0)) for t in study.trials),
        "failed": sum(t.state == TrialState.FAIL for t in study.trials),
    }


def run_jobs(jobs: list[Job], task_kwargs: dict[str, Any], n_jobs: int) -> list[dict[str, Any]]:
    """Run ``jobs`` (in ``n_jobs`` spawned processes when > 1); results in ``jobs``' order.

    Each study is sequential, so its result does not depend on ``n_jobs``; only its times do,
    since the processes share the device.
    """
    results: list[dict[str, Any] | None] = [None] * len(jobs)

    def done(i: int, row: dict[str, Any]) -> None:
        results[i] = row
        print(
            f"{row['run']}: best val loss {_fmt(row['best_val_loss'])}, best val accuracy "
            f"{row['best']:.4f}, {row['wall']:.0f} s",
            flush=True,
        )

    # Longest studies first, so that the pool's last process does not start a long one late.
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i].trials)
    if n_jobs <= 1:
        for i in order:
            done(i, run_job(jobs[i], task_kwargs))
    else:
        # CUDA cannot be used in a forked child; spawned workers load the data once each.
        ctx = multiprocessing.get_context("spawn")
        threads = max(1, (os.cpu_count() or 1) // n_jobs)  # no oversubscribed CPU threads
        with ProcessPoolExecutor(
            max_workers=n_jobs,
            mp_context=ctx,
            initializer=torch.set_num_threads,
            initargs=(threads,),
        ) as pool:
            futures = {pool.submit(run_job, jobs[i], task_kwargs): i for i in order}
            for future in as_completed(futures):
                done(futures[future], future.result())
    return [r for r in results if r is not None]


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def write_report(
    args: argparse.Namespace,
    device: str,
    paper: list[dict],
    compared: dict[str, list[dict]],
    total: float,
) -> str:
    """Markdown report of both parts; also writes the best-so-far figure next to it."""
    out = Path(args.out)
    fig_path = out.with_suffix(".html")
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Seed GA paper on FashionMNIST, and samplers at equal budget",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Command: `python benchmarks/seed_ga_fashion_mnist.py {' '.join(sys.argv[1:])}`",
        f"- Device: {device}; machine: {platform.platform()}, {os.cpu_count()} logical cores",
        f"- Versions: Python {platform.python_version()}, torch {torch.__version__}, "
        f"optuna {optuna.__version__}, optuna-evo {optuna_evo.__version__}",
        f"- Data: FashionMNIST, {args.max_train or 50000} train / {args.max_val or 10000} "
        f"validation images, test set 10,000; {args.epochs} epoch(s) per trial",
        f"- Total runtime: {total:.0f} s; {args.jobs} studies at a time"
        + (
            " in worker processes sharing the device, so wall and training times include "
            "that sharing"
            if args.jobs > 1
            else ""
        ),
        "",
        "## Part 1: the paper's runs",
        "",
    ]
    if not paper:
        lines.append("Not run (`--skip-paper`).")
    else:
        lines += [
            f"Baseline: SGD with {BASELINE}. Values are those of each run's best trial (lowest "
            "best validation loss). The paper's own figures are not available offline, so only "
            "our measurements are listed.",
            "",
            "| Run | Trials | Final train loss | Best val loss | Val accuracy | Test accuracy "
            "| Wall (s) | Best params |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
    for r in paper:
        params = ", ".join(f"{k}={v:.3g}" for k, v in r["params"].items())
        lines.append(
            f"| {r['run']} | {r['trials']} | {_fmt(r['train_loss'])} | "
            f"{_fmt(r['best_val_loss'])} | {_fmt(r['val_accuracy'])} | "
            f"{_fmt(r['test_accuracy'])} | {r['wall']:.1f} | {params} |"
        )
    lines += [
        "",
        f"## Part 2: {args.budget} trials per run, seeds {args.seeds}",
        "",
        "Defaults, the seed set, and `NSGAIISampler(population_size="
        f"{GA_POPULATION})`: Optuna's default of 50 would never leave its random first "
        f"generation within {args.budget} trials.",
        "",
        "| Sampler | Median best val accuracy | IQR | Min - max | Training time per run (s, "
        "median) | Failed trials |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    medians = {}
    fig = go.Figure()
    for name, runs in compared.items():
        bests = [r["best"] for r in runs]
        medians[name] = statistics.median(bests)
        q1, q3 = _quartiles(bests)
        lines.append(
            f"| {name} | {medians[name]:.4f} | {q1:.4f} - {q3:.4f} | {min(bests):.4f} - "
            f"{max(bests):.4f} | {statistics.median(r['train_s'] for r in runs):.1f} | "
            f"{sum(r['failed'] for r in runs)} |"
        )
        curve = [statistics.median(c) for c in zip(*(r["curve"] for r in runs))]
        fig.add_trace(go.Scatter(x=list(range(1, len(curve) + 1)), y=curve, name=name))
    fig.update_layout(
        title="Median best-so-far validation accuracy",
        xaxis_title="Trial",
        yaxis_title="Best validation accuracy",
    )
    fig.write_html(fig_path, include_plotlyjs="cdn")
    lines.append("")
    others = [n for n in ("TPESampler", "RandomSampler", "NSGAIISampler") if n in medians]
    if "GeneticSampler" in medians and others:
        ga = medians["GeneticSampler"]
        beats = [n for n in others if ga >= medians[n]]
        lines += [
            "Goal: GeneticSampler's median best >= TPESampler's and above RandomSampler and "
            f"NSGAIISampler. Measured: GeneticSampler {ga:.4f}; at least as good as "
            f"{', '.join(beats) if beats else 'none'} of {', '.join(others)}.",
            "",
        ]
    lines += [
        f"Figure: `{fig_path.name}` (median over seeds of the best-so-far validation accuracy).",
        "",
    ]
    text = "\n".join(lines)
    save_report(out, text)
    return text


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder with the idx .gz files")
    parser.add_argument("--download", action="store_true", help="torchvision download")
    parser.add_argument("--device", default=None, help="cuda, cpu (default: auto)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per trial")
    parser.add_argument("--budget", type=int, default=30, help="trials per compared run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--max-train", type=int, default=None)
    parser.add_argument("--max-val", type=int, default=None)
    parser.add_argument("--skip-paper", action="store_true", help="only part 2")
    parser.add_argument(
        "--samplers",
        nargs="+",
        choices=list(SAMPLERS),
        default=None,
        help=f"part 2: only these (default: all but {', '.join(OPTIONAL)})",
    )
    parser.add_argument("--out", default=None, help="report path (.md)")
    parser.add_argument("--quick", action="store_true", help="CPU smoke run")
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="studies run at once in worker processes sharing the device (cuda: 8, cpu: 1)",
    )
    args = parser.parse_args(argv)
    runs: tuple[GARun, ...] = PAPER_RUNS
    widths: dict[str, int] = {}  # the paper's CNN: SeedCNN's defaults
    if args.quick:
        widths = {"c1": 8, "c2": 16, "hidden": 32}
        args.epochs, args.budget, args.seeds = 1, 4, [0, 1]
        args.max_train, args.max_val = args.max_train or 1024, args.max_val or 512
        runs = tuple(GARun(r.name, 2, 2, r.mutation_prob) for r in PAPER_RUNS)
    if args.epochs < 1 or args.budget < 2:
        parser.error("--epochs must be >= 1 and --budget >= 2")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.jobs is None:
        args.jobs = min(8, os.cpu_count() or 1) if device.startswith("cuda") else 1
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    device_name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "CPU"
    if args.out is None:
        stamp = datetime.date.today().isoformat()
        tag = device_name.replace(" ", "-") if not args.quick else "quick"
        args.out = f"benchmarks/results/seed_ga_fashion_mnist_{tag}_{stamp}.md"
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    task_kwargs = {
        "data_dir": args.data_dir,
        "device": device,
        "epochs": args.epochs,
        "max_train": args.max_train,
        "max_val": args.max_val,
        "download": args.download,
        **widths,
    }
    start = time.perf_counter()
    paper = [] if args.skip_paper else paper_jobs(runs, seed=0)
    compare = comparison_jobs(args.budget, args.seeds, args.samplers)
    rows = run_jobs(paper + compare, task_kwargs, args.jobs)
    compared: dict[str, list[dict]] = {}
    for job, row in zip(compare, rows[len(paper) :]):
        compared.setdefault(job.sampler, []).append(row)
    report = write_report(
        args, device_name, rows[: len(paper)], compared, time.perf_counter() - start
    )
    print(report)


if __name__ == "__main__":
    main()
