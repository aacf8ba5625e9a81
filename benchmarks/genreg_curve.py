"""GENREG learning curves: FashionMNIST test accuracy against generations, on any device.

:mod:`benchmarks.genreg_gpu` asks for >= 85 % test accuracy (784-64-10) within 60 s, a goal
that mixes two things: how many generations the options need, and how many generations per
second the device runs. This script measures the first, which does not depend on the device:
each candidate of :data:`benchmarks.genreg_gpu.CANDIDATES` evolves for ``--generations``
generations, and the best genome's test accuracy is measured every ``--every`` generations
(evaluation time is not counted in the wall times). The report gives, per candidate, the
curve, the first generation at which each target accuracy was measured, and the generation
rate a device would need to get there within 60 s next to the rate measured here.

Usage::

    python benchmarks/genreg_curve.py --device cpu --candidates logprob --generations 3000
    python benchmarks/genreg_curve.py --quick --out /tmp/genreg_curve.md
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from dataclasses import field
import datetime
from pathlib import Path
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Run from a plain checkout.

import torch  # noqa: E402

from benchmarks._common import default_out  # noqa: E402
from benchmarks._common import report_header  # noqa: E402
from benchmarks._common import save_report  # noqa: E402
from benchmarks._common import silence  # noqa: E402
from benchmarks.genreg_gpu import CANDIDATES  # noqa: E402
from benchmarks.genreg_gpu import SEED_LAYERS  # noqa: E402
from benchmarks.genreg_gpu import _sync  # noqa: E402
from benchmarks.genreg_gpu import _trainer  # noqa: E402
from benchmarks.genreg_gpu import add_common_arguments  # noqa: E402
from benchmarks.genreg_gpu import check_common_arguments  # noqa: E402
from optuna_evo.genreg import GenregTask  # noqa: E402
from optuna_evo.genreg import load_task  # noqa: E402
from optuna_evo.objectives.data import resolve_device  # noqa: E402

GOAL_SECONDS = 60.0
"""The GPU goal's time limit (:mod:`benchmarks.genreg_gpu`, section 3)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(p, "logprob")
    p.add_argument("--generations", type=int, default=None, help="per candidate (3000)")
    p.add_argument("--every", type=int, default=None, help="generations between tests (100)")
    p.add_argument(
        "--targets", default="0.80,0.85", help="comma-separated test accuracies to time"
    )
    args = p.parse_args(argv)
    check_common_arguments(p, args)
    try:
        args.targets = sorted(float(t) for t in args.targets.split(","))
    except ValueError:
        p.error(f"--targets must be comma-separated numbers, got {args.targets!r}")
    if not args.targets or not all(0.0 < t <= 1.0 for t in args.targets):
        p.error(f"--targets must lie in (0, 1], got {args.targets}")
    if args.generations is None:
        args.generations = 30 if args.quick else 3000
    if args.every is None:
        args.every = 10 if args.quick else 100
    if args.generations < 1 or args.every < 1:
        p.error("--generations and --every must be >= 1")
    return args


@dataclass
class Curve:
    """Test accuracy of one candidate's best genome, measured along its run."""

    name: str
    points: list[tuple[int, float, float]] = field(default_factory=list)
    """``(generation, training seconds so far, test accuracy)``."""

    def first_reaching(self, target: float) -> tuple[int, float] | None:
        """``(generation, seconds)`` of the first point at or above ``target``, else None."""
        for generation, seconds, accuracy in self.points:
            if accuracy >= target:
                return generation, seconds
        return None

    @property
    def rate(self) -> float:
        """Generations per second over the whole run (evaluations excluded)."""
        generation, seconds, _ = self.points[-1]
        return generation / seconds


def run_curve(
    task: GenregTask, name: str, args: argparse.Namespace, device: torch.device
) -> Curve:
    """Evolve one candidate, testing the best genome every ``args.every`` generations."""
    options = {**CANDIDATES[name], **args.candidate_overrides}
    trainer = _trainer(device, args.seed, SEED_LAYERS, **options)
    curve = Curve(name)
    trained = 0.0
    while trainer.generation < args.generations:
        n = min(args.every, args.generations - trainer.generation)
        _sync(device)
        start = time.perf_counter()
        trainer.fit(task.train_x, task.train_y, n)
        _sync(device)
        trained += time.perf_counter() - start
        accuracy = trainer.evaluate(task.test_x, task.test_y)
        curve.points.append((trainer.generation, trained, accuracy))
        print(
            f"{name}: generation {trainer.generation}, {trained:.0f} s, "
            f"test accuracy {100 * accuracy:.2f} %",
            flush=True,
        )
    return curve


def report(curves: list[Curve], args: argparse.Namespace) -> list[str]:
    """The report's body: a summary table and each candidate's curve."""
    lines = [
        "",
        "## Generations to each target (784-64-10)",
        "",
        f"A device reaches a target within {GOAL_SECONDS:g} s if it runs at least "
        f"generation / {GOAL_SECONDS:g} generations per second.",
        "",
        "| options | target | first reached at generation | wall time here "
        f"| generations/s needed for {GOAL_SECONDS:g} s | generations/s here |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for curve in curves:
        for target in args.targets:
            hit = curve.first_reaching(target)
            if hit is None:
                last = curve.points[-1]
                lines.append(
                    f"| {curve.name} | {100 * target:g} % | not within {last[0]} "
                    f"(best {100 * max(p[2] for p in curve.points):.2f} %) | - | "
                    f"> {last[0] / GOAL_SECONDS:.1f} | {curve.rate:.2f} |"
                )
            else:
                generation, seconds = hit
                lines.append(
                    f"| {curve.name} | {100 * target:g} % | {generation} | {seconds:.0f} s | "
                    f"{generation / GOAL_SECONDS:.0f} | {curve.rate:.2f} |"
                )
    for curve in curves:
        options = {**CANDIDATES[curve.name], **args.candidate_overrides}
        lines += [
            "",
            f"## {curve.name}: " + ", ".join(f"{k}={v}" for k, v in options.items()),
            "",
            "| generation | wall time | test accuracy |",
            "|---:|---:|---:|",
        ]
        lines += [f"| {g} | {s:.1f} s | {100 * a:.2f} % |" for g, s, a in curve.points]
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run every candidate's curve and write the report."""
    args = parse_args(argv)
    silence()
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = datetime.datetime.now(datetime.timezone.utc)
    task = load_task(
        "fashion-mnist",
        data_dir=args.data_dir,
        device=device,
        max_train=args.max_train,
        max_test=args.max_test,
    )
    curves = [run_curve(task, name, args, device) for name in args.candidates]
    lines = report_header(
        "GENREG learning curves on FashionMNIST",
        "genreg_curve.py",
        device,
        started,
        "--quick: 5,000 / 2,000 images, population 50, 10 images per class; a smoke test, "
        "not results"
        if args.quick
        else None,
        argv,
    )
    lines += [
        f"- CPU threads: {torch.get_num_threads()}",
        "",
        f"FashionMNIST: {len(task.train_y)} training, {len(task.test_y)} test images; the "
        f"best genome (highest trust) tested every {args.every} generations, seed {args.seed}.",
    ]
    lines += report(curves, args)
    elapsed = (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()
    lines += ["", f"Total benchmark time: {elapsed:.0f} s.", ""]
    save_report(args.out or default_out("genreg_curve", device, args.quick), "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
