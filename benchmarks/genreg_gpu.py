"""GPU benchmark of :mod:`optuna_evo.genreg`: batched GENREG against the seed's genome loop.

Measures, in one run on one device:

1. **Throughput** of the seed configuration (784-64-10, population 200, 20 images per class,
   FashionMNIST): generations per second of :class:`~optuna_evo.genreg.GenregTrainer` in
   ``mode="batched"`` (one batched matmul per layer for the whole population) and in
   ``mode="loop"`` (the seed's style: one genome at a time), and the speed-up.
2. **Seed configuration, 600 generations**: FashionMNIST test accuracy of the best genome and
   the wall time (the seed needed ~40 minutes for 600 generations on MNIST).
3. **Best options, <= 60 s**: each candidate of :data:`CANDIDATES` (784-64-10) evolves for at
   most ``--budget`` seconds (everything included but data loading); test accuracy at the end.
   Goal: >= 85 % FashionMNIST test accuracy.
4. **Alphabet**: the 26 canonical letters at 100x100, 10000-128-26, until every letter is
   recognised (goal 100 %) or ``--alphabet-budget`` seconds pass; seed defaults, then
   :data:`ALPHABET_OPTIONS`.

Writes a markdown report naming the device and date to ``--out`` (default
``benchmarks/results/genreg_gpu_<device>_<date>.md``). ``--quick`` shrinks every
size (FashionMNIST subset, fewer generations, 24x24 letters, short budgets) so the script runs
end-to-end on a CPU in about a minute; its figures are a smoke test, not results.

Usage::

    python benchmarks/genreg_gpu.py                       # full run, GPU
    python benchmarks/genreg_gpu.py --quick --out /tmp/genreg_gpu.md
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
import datetime
import math
from pathlib import Path
import sys
import time
from typing import Any
import warnings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Run from a plain checkout.

import optuna  # noqa: E402
import torch  # noqa: E402

from benchmarks._common import default_out  # noqa: E402
from benchmarks._common import device_name  # noqa: E402
from benchmarks._common import report_header  # noqa: E402
from benchmarks._common import save_report  # noqa: E402
from optuna_evo.genreg import ALPHABET_OPTIONS  # noqa: E402
from optuna_evo.genreg import LOGPROB_OPTIONS  # noqa: E402
from optuna_evo.genreg import GenregTask  # noqa: E402
from optuna_evo.genreg import GenregTrainer  # noqa: E402
from optuna_evo.genreg import format_per_class_table  # noqa: E402
from optuna_evo.genreg import load_task  # noqa: E402
from optuna_evo.objectives.data import resolve_device  # noqa: E402

SEED_LAYERS = [784, 64, 10]

CANDIDATES: dict[str, dict[str, Any]] = {
    # The best of the CPU runs (79 % validation after 1000 generations, population 200 with
    # 50 images per class): see LOGPROB_OPTIONS.
    "logprob": dict(LOGPROB_OPTIONS),
    # The same, wider: more children per generation, more chances of an improving mutation.
    "logprob-wide": {**LOGPROB_OPTIONS, "population": 1000},
    # Self-adapting mutation scales (they drifted up and plateaued at 75 % on the CPU).
    "logprob-adaptive": {**LOGPROB_OPTIONS, "adaptive_mutation": 0.1},
    # The seed's count reward (correct / wrong) with the same selection fixes.
    "accuracy-reward": {
        **{k: v for k, v in LOGPROB_OPTIONS.items() if k != "fitness"},
        "mutation_scale": 0.02,
        "samples_per_class": 50,
    },
}
"""Option sets tried in section 3 (all other arguments are the seed defaults)."""

# ALPHABET_OPTIONS (optuna_evo.genreg) drive the alphabet's second run (section 4); both runs
# show every letter once per generation (``samples_per_class=1``), the first with the seed
# defaults.


def add_common_arguments(p: argparse.ArgumentParser, candidates: str) -> None:
    """The options this script shares with :mod:`benchmarks.genreg_curve`.

    ``candidates`` is the default of ``--candidates`` (comma-separated names of
    :data:`CANDIDATES`); :func:`check_common_arguments` completes them after parsing.
    """
    p.add_argument("--quick", action="store_true", help="tiny sizes: a CPU smoke test")
    p.add_argument("--out", type=Path, default=None, help="markdown report path")
    p.add_argument("--device", default=None, help="device (default: cuda if available)")
    p.add_argument("--data-dir", default=None, help="FashionMNIST idx directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--candidates",
        default=candidates,
        help=f"comma-separated option sets of {list(CANDIDATES)} (default: {candidates})",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: torch's; 1 if --quick)"
    )


def check_common_arguments(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Validate and complete the options of :func:`add_common_arguments` in place: the
    candidate list, and what ``--quick`` shrinks (threads, data, the candidates' sizes)."""
    args.candidates = [c.strip() for c in args.candidates.split(",") if c.strip()]
    unknown = sorted(set(args.candidates) - set(CANDIDATES))
    if unknown or not args.candidates:
        p.error(f"--candidates must name some of {list(CANDIDATES)}, got {unknown or 'none'}")
    if args.threads is None and args.quick:
        # Small CPU tensors: one thread is as fast and immune to busy neighbouring processes.
        args.threads = 1
    args.max_train = 5000 if args.quick else None
    args.max_test = 2000 if args.quick else None
    # --quick shrinks the candidates too (population 400 x 50 images is slow on a CPU).
    args.candidate_overrides = {"population": 50, "samples_per_class": 10} if args.quick else {}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(p, ",".join(CANDIDATES))
    p.add_argument("--budget", type=float, default=None, help="seconds per candidate (60)")
    p.add_argument("--alphabet-budget", type=float, default=None, help="seconds (150)")
    p.add_argument("--generations", type=int, default=None, help="seed run length (600)")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on the GPU")
    args = p.parse_args(argv)
    check_common_arguments(p, args)
    quick = args.quick
    args.budget = args.budget if args.budget is not None else (6.0 if quick else 60.0)
    args.alphabet_budget = args.alphabet_budget or (10.0 if quick else 150.0)
    args.generations = args.generations or (40 if quick else 600)
    args.loop_generations = 2 if quick else 10
    args.batched_generations = 10 if quick else 200
    args.alphabet_size = 24 if quick else 100
    args.alphabet_hidden = 32 if quick else 128
    args.chunk = 10 if quick else 50
    return args


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _trainer(device: torch.device, seed: int, layers: list[int], **kwargs: Any) -> GenregTrainer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return GenregTrainer(layers=layers, seed=seed, device=device, **kwargs)


def generations_per_second(
    task: GenregTask, device: torch.device, mode: str, generations: int, seed: int
) -> float:
    """Steady-state generations per second of the seed configuration in ``mode``."""
    trainer = _trainer(device, seed, SEED_LAYERS, mode=mode)
    trainer.fit(task.train_x, task.train_y, 2)  # warm-up: allocations, kernels, data pools
    _sync(device)
    start = time.perf_counter()
    trainer.fit(task.train_x, task.train_y, generations)
    _sync(device)
    return generations / (time.perf_counter() - start)


@dataclass
class Run:
    """Outcome of one timed evolution."""

    name: str
    generations: int
    seconds: float
    test_accuracy: float
    trainer: GenregTrainer


def timed_run(
    task: GenregTask,
    trainer: GenregTrainer,
    name: str,
    *,
    budget_s: float,
    max_generations: int | None,
    chunk: int,
    stop: Callable[[GenregTrainer], bool] | None = None,
) -> Run:
    """Evolve in chunks until the budget, the generation limit or ``stop`` ends the run.

    Chunks shrink near the end of the budget (from the measured time per generation), so a
    run overshoots its budget by at most about one generation.
    """
    device = trainer.device
    _sync(device)
    start = time.perf_counter()
    per_generation = 0.0
    first = trainer.generation
    while True:
        elapsed = time.perf_counter() - start
        n = chunk if max_generations is None else min(chunk, max_generations - trainer.generation)
        if per_generation > 0 and math.isfinite(budget_s):
            n = min(n, int((budget_s - elapsed) / per_generation))
        if n <= 0 or elapsed >= budget_s:
            break
        trainer.fit(task.train_x, task.train_y, n)
        _sync(device)
        per_generation = (time.perf_counter() - start) / max(trainer.generation - first, 1)
        if stop is not None and stop(trainer):
            break
    seconds = time.perf_counter() - start
    accuracy = trainer.evaluate(task.test_x, task.test_y)
    return Run(name, trainer.generation - first, seconds, accuracy, trainer)


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def main(argv: list[str] | None = None) -> int:
    """Run every section and write the report."""
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda" and args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
    started = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        *report_header(
            "GENREG on the GPU: batched trainer vs the seed's genome loop",
            "genreg_gpu.py",
            device,
            started,
            "--quick: FashionMNIST subset, short runs, small letters; a smoke test, not results"
            if args.quick
            else None,
            argv,
        ),
        f"- TF32 matmuls {'on' if args.tf32 and device.type == 'cuda' else 'off'}, "
        f"{torch.get_num_threads()} CPU threads",
    ]
    print(f"GENREG benchmark on {device_name(device)}", flush=True)

    task = load_task(
        "fashion-mnist",
        data_dir=args.data_dir,
        device=device,
        max_train=args.max_train,
        max_test=args.max_test,
    )
    lines += ["", f"FashionMNIST: {len(task.train_y)} training, {len(task.test_y)} test images."]

    # 1. Throughput.
    batched = generations_per_second(task, device, "batched", args.batched_generations, args.seed)
    looped = generations_per_second(task, device, "loop", args.loop_generations, args.seed)
    print(f"throughput: batched {batched:.1f} gen/s, loop {looped:.2f} gen/s", flush=True)
    lines += [
        "",
        "## 1. Throughput, seed configuration (784-64-10, population 200, 20 images/class)",
        "",
        "| trainer | generations/s | 600 generations take | speed-up |",
        "|---|---:|---:|---:|",
        f"| per-genome loop (the seed's style) | {looped:.2f} | {600 / looped:.1f} s | 1.0x |",
        f"| batched population | {batched:.1f} | {600 / batched:.2f} s "
        f"| {batched / looped:.1f}x |",
    ]

    # 2. Seed configuration, full run.
    seed_run = timed_run(
        task,
        _trainer(device, args.seed, SEED_LAYERS),
        "seed defaults",
        budget_s=float("inf"),
        max_generations=args.generations,
        chunk=args.chunk,
    )
    print(f"seed run: {_pct(seed_run.test_accuracy)} in {seed_run.seconds:.1f}s", flush=True)
    lines += [
        "",
        f"## 2. Seed configuration, {args.generations} generations (FashionMNIST)",
        "",
        "| generations | wall time | test accuracy |",
        "|---:|---:|---:|",
        f"| {seed_run.generations} | {seed_run.seconds:.1f} s | {_pct(seed_run.test_accuracy)} |",
    ]

    # 3. Best options within the budget.
    runs = []
    for name in args.candidates:
        options = {**CANDIDATES[name], **args.candidate_overrides}
        run = timed_run(
            task,
            _trainer(device, args.seed, SEED_LAYERS, **options),
            name,
            budget_s=args.budget,
            max_generations=None,
            chunk=args.chunk,
        )
        runs.append((run, options))
        print(f"{name}: {_pct(run.test_accuracy)} after {run.generations} gens", flush=True)
    best = max(runs, key=lambda r: r[0].test_accuracy)[0]
    lines += [
        "",
        f"## 3. Best options, 784-64-10, at most {args.budget:g} s each (goal >= 85 %)",
        "",
        "| options | generations | wall time | generations/s | test accuracy | >= 85 % |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for run, options in runs:
        opts = ", ".join(f"{k}={v}" for k, v in options.items())
        lines.append(
            f"| **{run.name}**: {opts} | {run.generations} | {run.seconds:.1f} s | "
            f"{run.generations / run.seconds:.1f} | {_pct(run.test_accuracy)} | "
            f"{'yes' if run.test_accuracy >= 0.85 else 'no'} |"
        )
    acc, count = best.trainer.per_class_accuracy(task.test_x, task.test_y)
    lines += [
        "",
        f"Per-class test accuracy of the best run ({best.name}):",
        "",
        format_per_class_table(acc, task.class_names, count),
    ]

    # 4. Alphabet: seed defaults, then the options.
    letters = load_task("alphabet", size=args.alphabet_size, device=device)
    layers = letters.default_layers(args.alphabet_hidden)
    lines += [
        "",
        f"## 4. Alphabet, {'-'.join(map(str, layers))}, population 200 (goal 100 %)",
        "",
        f"The 26 canonical {args.alphabet_size}x{args.alphabet_size} letters, each shown once "
        f"per generation; accuracy checked every {args.chunk} generations, at most "
        f"{args.alphabet_budget:g} s per run.",
        "",
        "| options | generations | wall time | generations/s | accuracy | 100 % |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for name, options in (("seed defaults", {}), ("options", ALPHABET_OPTIONS)):
        alphabet = timed_run(
            letters,
            _trainer(device, args.seed, layers, samples_per_class=1, **options),
            name,
            budget_s=args.alphabet_budget,
            max_generations=None,
            chunk=args.chunk,
            stop=lambda t: t.evaluate(letters.test_x, letters.test_y) == 1.0,
        )
        print(f"alphabet, {name}: {_pct(alphabet.test_accuracy)} after {alphabet.generations}")
        opts = ", ".join(f"{k}={v}" for k, v in options.items()) or "seed defaults"
        lines.append(
            f"| {opts} | {alphabet.generations} | {alphabet.seconds:.1f} s | "
            f"{alphabet.generations / alphabet.seconds:.1f} | {_pct(alphabet.test_accuracy)} | "
            f"{'yes' if alphabet.test_accuracy == 1.0 else 'no'} |"
        )

    elapsed = (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()
    lines += ["", f"Total benchmark time: {elapsed:.0f} s.", ""]
    save_report(
        args.out or default_out("genreg_gpu", device, args.quick), "\n".join(lines), elapsed
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
