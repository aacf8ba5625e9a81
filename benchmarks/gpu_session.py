"""Run the GPU benchmarks within one device lease, in tranches that fit one 10-minute call.

A lent GPU comes with about 15 minutes of device time per task, its start included, and at most
10 minutes per command, so the GPU benchmarks cannot all run in one lease at the sizes their
issues ask for. This script splits them into **tranches** (:data:`TRANCHES`), each sized for one
call, and runs a tranche's steps one after another (or side by side where only the search
quality at an equal number of evaluations is compared, never a time), each in its own process
with its own time limit inside an overall ``--budget-s``:

* every step writes its markdown report straight into ``--out-dir`` under the name it will
  keep in ``benchmarks/results/`` (``<step>_<device>_<date>.md``), so a step that overruns
  costs only its own report;
* ``summary.md`` in ``--out-dir`` is rewritten after every step: device and versions, each
  step's status, wall time and report, and the log (its last 300 lines) of any step that
  failed or was stopped: every script prints each run's figures as it ends, so a step stopped
  at its limit still brings back the runs it finished;
* a step that would start with less than :data:`MIN_STEP_S` seconds left is skipped and
  listed as such, so the call ends inside its limit.

At most 8 files come back from a device call; no tranche writes more than 4.

Usage (from the repository root)::

    python benchmarks/gpu_session.py --list                 # the tranches and their steps
    python benchmarks/gpu_session.py --prepare --tranche 1  # here: wheels, data, the command
    python benchmarks/gpu_session.py --tranche 1 --out-dir "$OUT"   # on the GPU machine
    python benchmarks/gpu_session.py --tranche 1 --quick    # CPU smoke run of the same steps

``--prepare`` runs ``../shared/tools/gpu-prep.sh`` (wheels the GPU image lacks into ``.whl/``,
FashionMNIST and tiny shakespeare into ``.data/``), adds the wheels of this project's own
benchmark needs that the image lacks (:data:`EXTRA_WHEELS`), and prints the device command and
its ``carry`` list.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
import datetime
import importlib
import os
from pathlib import Path
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from typing import TextIO

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # Run from a plain checkout: ``benchmarks`` is not installed.

MIN_STEP_S = 30.0
"""A step that would start with fewer seconds than this left is skipped."""

EXTRA_WHEELS = ("cmaes",)
"""Pure-Python packages the benchmarks need that the GPU image lacks (CmaEsSampler)."""

MODULES = ("torch", "optuna", "optuna_evo", "safetensors", "plotly", "tqdm", "cmaes")
"""Imports checked before the steps run; the summary lists their versions."""


@dataclass(frozen=True)
class Step:
    """One benchmark process of a tranche.

    Args:
        name: Report file stem, also the step's name on the command line.
        issue: The issue whose acceptance the report serves.
        script: Script under ``benchmarks/``.
        args: Its arguments, also with ``--quick`` (``--out`` and data paths are added).
        limit_s: Time limit of the step on the GPU, in seconds.
        text: Whether the script takes ``--text-path`` (tiny shakespeare).
        sizes: Further arguments for the GPU run only (sizes, budgets, device).
        extra_files: Suffixes of files the script writes next to its report.
    """

    name: str
    issue: int
    script: str
    args: tuple[str, ...]
    limit_s: float
    text: bool = False
    sizes: tuple[str, ...] = ()
    extra_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tranche:
    """Steps that fit one device call, with the budget they were sized for."""

    steps: tuple[Step, ...]
    budget_s: float
    parallel: bool = False
    """Run the steps side by side: only for steps that compare no times."""
    note: str = ""


TRANCHES: dict[str, Tranche] = {
    "1": Tranche(
        (
            Step("objectives_cnn", 3, "objectives_gpu.py", ("--skip-lm",), 140),
            Step("objectives_lm", 3, "objectives_gpu.py", ("--skip-cnn",), 180, text=True),
            Step(
                "genreg",
                6,
                "genreg_gpu.py",
                ("--candidates", "logprob,logprob-wide"),
                220,
                # Two candidates x 50 s + alphabet 45 s x 2 + throughput and the seed run.
                sizes=("--budget", "50", "--alphabet-budget", "45"),
            ),
        ),
        540,
        note="training-loop speed (issue 3) and GENREG (issue 6)",
    ),
    "2": Tranche(
        (
            Step(
                "mage_single",
                4,
                "mage_gpu.py",
                ("--skip-multi",),
                240,
                sizes=("--generations", "8"),
            ),
            Step(
                "mage_multi", 4, "mage_gpu.py", ("--skip-single",), 300, sizes=("--budget-s", "25")
            ),
        ),
        540,
        note="MAGE weight inheritance and multi mode vs TPE / Random (issue 4)",
    ),
    "3": Tranche(
        (
            Step(
                "gender_lm",
                5,
                "gender_gpu.py",
                ("--skip-cnn",),
                420,
                text=True,
                sizes=("--budget-s", "90"),
            ),
            Step(
                "gender_cnn",
                5,
                "gender_gpu.py",
                ("--skip-lm",),
                120,
                # 2 seeds x 2 arms x 8 trials x 5 epochs: ~125k seed-CNN steps without pruning.
                sizes=("--cnn-trials", "8", "--cnn-epochs", "5"),
            ),
        ),
        540,
        note="gender Table 1 and the LearningCurvePruner (issue 5)",
    ),
    "4": Tranche(
        (
            Step(
                "seed_ga",
                10,
                "seed_ga_fashion_mnist.py",
                (),
                540,
                sizes=("--jobs", "8"),
                extra_files=(".html",),
            ),
            Step(
                "predictor_assisted",
                7,
                "predictor_assisted.py",
                (),
                540,
                sizes=(
                    "--device",
                    "cuda",
                    "--generations",
                    "6",
                    "--population",
                    "10",
                    "--epochs",
                    "3",
                ),
            ),
        ),
        540,
        parallel=True,
        note="search quality at equal evaluations: seed GA paper (issue 10), predictor-"
        "assisted evolution (issue 7); side by side, so their times include the sharing",
    ),
}
"""The plan. Limits are guesses for an H100 / H200 until a run's summary says otherwise."""


@dataclass
class Outcome:
    """What became of one step."""

    step: Step
    status: str = "not run"
    wall_s: float = 0.0
    report: str = ""
    log_tail: list[str] = field(default_factory=list)


def device_slug() -> str:
    """The device the steps will use, as their report names give it (``NVIDIA-H200``)."""
    # Imported here, not at the top: a missing torch / optuna_evo must still reach the summary.
    import torch

    from benchmarks._common import device_slug as slug

    return slug(torch.device("cuda" if torch.cuda.is_available() else "cpu"))


def environment() -> list[str]:
    """Summary lines: machine, device and the versions of :data:`MODULES`."""
    lines = [f"- Machine: {platform.platform()}, {os.cpu_count()} CPU cores"]
    for name in MODULES:
        try:
            module = importlib.import_module(name)
            version = getattr(module, "__version__", "?")
            lines.append(f"- {name}: {version}")
        except Exception as exc:  # noqa: BLE001 - a missing module is reported, not fatal
            lines.append(f"- {name}: **missing** ({type(exc).__name__}: {exc})")
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            lines.insert(
                0,
                f"- Device: **{props.name}**, {props.total_memory / 2**30:.0f} GiB, "
                f"CUDA {torch.version.cuda}",
            )
        else:
            lines.insert(0, "- Device: CPU (no CUDA device)")
    except ImportError:
        pass
    return lines


def step_command(step: Step, out: Path, args: argparse.Namespace) -> list[str]:
    """The step's command line: its arguments, sizes (or ``--quick``), data and ``--out``."""
    command = [sys.executable, str(REPO / "benchmarks" / step.script), *step.args]
    command += ["--quick"] if args.quick else list(step.sizes)
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    if step.text and args.text_path:
        command += ["--text-path", args.text_path]
    return command + ["--out", str(out)]


def _tail(path: Path, n: int = 300) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:]
    except OSError:
        return []


def write_summary(
    path: Path, tranches: list[str], outcomes: list[Outcome], header: list[str], t0: float
) -> None:
    """Rewrite ``summary.md`` with every step's outcome so far."""
    lines = [
        f"# GPU session: tranche(s) {', '.join(tranches)}",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Command: `python benchmarks/gpu_session.py {shlex.join(sys.argv[1:])}`",
        f"- Elapsed: {time.monotonic() - t0:.0f} s",
        *header,
        "",
        "| step | issue | status | wall (s) | limit (s) | report |",
        "|---|---:|---|---:|---:|---|",
    ]
    for o in outcomes:
        lines.append(
            f"| {o.step.name} | #{o.step.issue} | {o.status} | {o.wall_s:.0f} | "
            f"{o.step.limit_s:.0f} | {o.report or '-'} |"
        )
    for o in outcomes:
        if o.log_tail and o.status != "ok":
            lines += ["", f"## {o.step.name}: end of its log", "", "```", *o.log_tail, "```"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _stop(proc: subprocess.Popen) -> None:
    """Kill the step with its whole process group (worker pools included)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_steps(
    steps: list[Step],
    args: argparse.Namespace,
    out_dir: Path,
    deadline: float,
    on_change: Callable[[list[Outcome]], None],
    parallel: bool = False,
) -> list[Outcome]:
    """Run ``steps`` (all at once if ``parallel``), each within its limit and ``deadline``.

    ``deadline`` is a :func:`time.monotonic` time; ``on_change(outcomes)`` is called whenever
    a step starts or ends.
    """
    slug, stamp = device_slug(), datetime.date.today().isoformat()
    logs = Path(tempfile.mkdtemp(prefix="gpu_session_"))
    outcomes = [Outcome(s) for s in steps]
    running: dict[int, tuple[subprocess.Popen, float, float, Path, TextIO]] = {}
    pending = list(range(len(steps)))
    while pending or running:
        while pending and (parallel or not running):
            i = pending.pop(0)
            step, left = steps[i], deadline - time.monotonic()
            if left < MIN_STEP_S:
                outcomes[i].status = f"skipped ({left:.0f} s left)"
                continue
            limit = min(step.limit_s if not args.quick else args.quick_limit_s, left)
            report = out_dir / f"{step.name}_{slug}_{stamp}.md"
            log = logs / f"{step.name}.log"
            handle: TextIO = open(log, "w", encoding="utf-8")  # noqa: SIM115 - closed when it ends
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            proc = subprocess.Popen(
                step_command(step, report, args),
                cwd=REPO,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
            running[i] = (proc, time.monotonic(), limit, report, handle)
            outcomes[i].status = "running"
            print(f"[{step.name}] started, limit {limit:.0f} s", flush=True)
            on_change(outcomes)
        time.sleep(0.2)
        for i in list(running):
            proc, started, limit, report, handle = running[i]
            elapsed = time.monotonic() - started
            code = proc.poll()
            if code is None and elapsed < limit:
                continue
            if code is None:
                _stop(proc)
                outcomes[i].status = f"timed out after {limit:.0f} s"
            else:
                outcomes[i].status = "ok" if code == 0 else f"failed (exit {code})"
            handle.close()
            del running[i]
            o = outcomes[i]
            o.wall_s = elapsed
            o.log_tail = _tail(logs / f"{o.step.name}.log")
            written = [report] + [report.with_suffix(x) for x in o.step.extra_files]
            o.report = ", ".join(f"`{p.name}`" for p in written if p.is_file())
            print(f"[{o.step.name}] {o.status} in {elapsed:.0f} s", flush=True)
            on_change(outcomes)
    return outcomes


def prepare(tranches: list[str]) -> int:
    """Fill ``.whl/`` and ``.data/`` here and print the device command for ``tranches``."""
    prep = REPO.parent / "shared" / "tools" / "gpu-prep.sh"
    if not prep.is_file():
        print(f"error: {prep} not found; prepare .whl/ and .data/ by hand", file=sys.stderr)
        return 2
    subprocess.run(["bash", str(prep)], cwd=REPO, check=True)
    versions = []
    for name in EXTRA_WHEELS:
        module = importlib.import_module(name)
        versions.append(f"{name}=={module.__version__}")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
            "-d",
            ".whl",
            *versions,
        ],
        cwd=REPO,
        check=True,
    )
    chosen = " ".join(f"--tranche {t}" for t in tranches)
    budget = sum(TRANCHES[t].budget_s for t in tranches)
    print(
        "\nDevice call (timeout_s >= "
        f'{int(budget) + 45}), carry [".whl", ".data"]:\n'
        "python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "
        ".whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit 1; "
        f"python3 benchmarks/gpu_session.py {chosen} --out-dir $OUT"
    )
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--tranche",
        action="append",
        choices=sorted(TRANCHES),
        help="tranche to run (repeatable; default 1)",
    )
    p.add_argument("--steps", default=None, help="comma-separated step names instead")
    p.add_argument("--out-dir", default=None, help="default: $OUT, else a new temp folder")
    p.add_argument("--budget-s", type=float, default=None, help="total (default: the plan's)")
    p.add_argument("--data-dir", default=None, help="FashionMNIST idx folder (.data/ if there)")
    p.add_argument("--text-path", default=None, help="tiny shakespeare (.data/ if there)")
    p.add_argument("--quick", action="store_true", help="each step's --quick mode (CPU)")
    p.add_argument("--quick-limit-s", type=float, default=300.0, help="per step with --quick")
    p.add_argument("--list", action="store_true", help="print the plan and exit")
    p.add_argument("--prepare", action="store_true", help="prepare here and print the command")
    args = p.parse_args(argv)
    args.tranche = args.tranche or ["1"]
    steps = {s.name: s for t in TRANCHES.values() for s in t.steps}
    if args.steps is not None:
        names = [n.strip() for n in args.steps.split(",") if n.strip()]
        unknown = sorted(set(names) - set(steps))
        if unknown or not names:
            p.error(f"--steps must name some of {sorted(steps)}, got {unknown or 'none'}")
        args.selected = [steps[n] for n in names]
    else:
        args.selected = [s for t in args.tranche for s in TRANCHES[t].steps]
    if args.budget_s is not None and not args.budget_s > 0:
        p.error(f"--budget-s must be > 0, got {args.budget_s}")
    if args.quick_limit_s <= 0:
        p.error(f"--quick-limit-s must be > 0, got {args.quick_limit_s}")
    # The layout ../shared/tools/gpu-prep.sh leaves in the checkout.
    if args.data_dir is None and (REPO / ".data" / "fashion-mnist").is_dir():
        args.data_dir = str(REPO / ".data" / "fashion-mnist")
    text = REPO / ".data" / "tinyshakespeare" / "input.txt"
    if args.text_path is None and text.is_file():
        args.text_path = str(text)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chosen tranche(s); the exit status is 0 when every step ended ``ok``."""
    args = parse_args(argv)
    if args.list:
        for key, tranche in TRANCHES.items():
            mode = "side by side" if tranche.parallel else "one after another"
            print(f"tranche {key} ({tranche.budget_s:.0f} s, {mode}): {tranche.note}")
            for s in tranche.steps:
                line = f"{s.name:20s} #{s.issue:<3d} {s.limit_s:4.0f} s  {s.script}"
                print(f"  {line} {' '.join(s.args + s.sizes)}")
        return 0
    if args.prepare:
        return prepare(args.tranche)
    out_dir = Path(args.out_dir or os.environ.get("OUT") or tempfile.mkdtemp(prefix="gpu_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = args.tranche if args.steps is None else ["custom"]
    budget = args.budget_s or sum(TRANCHES[t].budget_s for t in args.tranche)
    t0 = time.monotonic()
    header = environment()
    print("\n".join(header), flush=True)
    done: list[Outcome] = []
    summary = out_dir / "summary.md"

    def on_change(outcomes: list[Outcome]) -> None:
        write_summary(summary, chosen, done + outcomes, header, t0)

    groups: list[tuple[list[Step], bool]]
    if args.steps is not None:
        groups = [(args.selected, False)]
    else:
        groups = [(list(TRANCHES[t].steps), TRANCHES[t].parallel) for t in args.tranche]
    for steps, parallel in groups:
        done += run_steps(steps, args, out_dir, t0 + budget, on_change, parallel)
    write_summary(summary, chosen, done, header, t0)
    print(summary.read_text(encoding="utf-8"))
    return 0 if all(o.status == "ok" for o in done) else 1


if __name__ == "__main__":
    raise SystemExit(main())
