"""Scale-out benchmark: trials per second with 1 vs 4 worker processes on one PostgreSQL.

Every optuna-evo sampler (GeneticSampler, MAGESampler, GenderSampler) runs the same budget of
trials on a fixed-duration objective: a 5-D sphere whose evaluation sleeps ``--duration``
seconds in three steps, reporting an intermediate value after each (so GenderSampler sees
learning curves). Sleeping stands in for a GPU training step: it costs wall time but no CPU, so
the measurement shows what the samplers and the storage add, not how many cores the machine
has. For each sampler and worker count a fresh study is made and ``n`` processes run
``study.optimize`` until the budget is used (``MaxTrialsCallback``).

Reported per run: trials/s over the span from the first trial's start to the last trial's
completion (read from storage, so process start-up is excluded), wall time including start-up,
the best value reached, the number of generations, and the speed-up of 4 workers over 1 (goal
>= 3x). Writes a markdown report naming the machine and date.

Usage::

    python benchmarks/workers_pg.py --storage postgresql+psycopg2://user@host/db
    python benchmarks/workers_pg.py --quick --storage sqlite:///tmp/w.db --out /tmp/w.md

``--storage`` defaults to ``$OPTUNA_EVO_TEST_POSTGRES`` (``bash .ci/postgres-start`` prints
such a URL for a throw-away local server).
"""

from __future__ import annotations

import argparse
import datetime
import os
from pathlib import Path
import platform
import subprocess
import sys
import textwrap
import time
import uuid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Run from a plain checkout.

import optuna  # noqa: E402

from benchmarks._common import save_report  # noqa: E402
import optuna_evo  # noqa: E402

SAMPLERS = {
    "GeneticSampler": "optuna_evo.GeneticSampler(population_size=10, seed=None)",
    "MAGESampler": "optuna_evo.MAGESampler(population_size=10, n_elites=2, seed=None)",
    "GenderSampler": "optuna_evo.GenderSampler(population_size=10, early_steps=2, seed=None)",
}

WORKER_SRC = """
import time
import warnings
import optuna
import optuna_evo
from optuna.study import MaxTrialsCallback
warnings.simplefilter("ignore")
optuna.logging.set_verbosity(optuna.logging.WARNING)

def objective(trial):
    xs = [trial.suggest_float(f"x{{i}}", -5.0, 5.0) for i in range(5)]
    final = sum(x * x for x in xs)
    for step in range(1, 4):
        time.sleep({duration} / 3)
        trial.report(final * (1.0 + 1.0 / step), step)
    return final

study = optuna.load_study(study_name={name!r}, storage={storage!r}, sampler={sampler})
study.optimize(objective, callbacks=[MaxTrialsCallback({budget}, states=None)])
"""


def run_once(storage: str, sampler: str, n_workers: int, budget: int, duration: float) -> dict:
    """Run one study with ``n_workers`` processes; return its measurements."""
    name = f"workers-{uuid.uuid4().hex[:12]}"
    study = optuna.create_study(study_name=name, storage=storage)
    src = textwrap.dedent(
        WORKER_SRC.format(
            name=name, storage=storage, sampler=sampler, budget=budget, duration=duration
        )
    )
    start = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, "-c", src], stderr=subprocess.PIPE)
        for _ in range(n_workers)
    ]
    for p in procs:
        _, err = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise RuntimeError(f"worker failed:\n{err.decode()[-3000:]}")
    wall = time.perf_counter() - start
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    first = min(t.datetime_start for t in trials if t.datetime_start is not None)
    last = max(t.datetime_complete for t in trials if t.datetime_complete is not None)
    span = (last - first).total_seconds()
    generations = {
        info.generation for t in trials if (info := optuna_evo.lineage(t, study)) is not None
    }
    return {
        "trials": len(trials),
        "complete": len(done),
        "span": span,
        "wall": wall,
        "rate": len(done) / span,
        "best": study.best_value,
        "generations": len(generations),
    }


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", default=os.environ.get("OPTUNA_EVO_TEST_POSTGRES"))
    parser.add_argument("--trials", type=int, default=200, help="trial budget per study")
    parser.add_argument("--duration", type=float, default=0.3, help="seconds per objective")
    parser.add_argument("--workers", type=int, default=4, help="the many-worker count")
    parser.add_argument("--out", default="benchmarks/results/workers_postgres.md")
    parser.add_argument("--quick", action="store_true", help="tiny budget (smoke test)")
    args = parser.parse_args(argv)
    if not args.storage:
        parser.error("--storage is required (or set OPTUNA_EVO_TEST_POSTGRES)")
    if args.quick:
        args.trials, args.duration = 16, 0.02
    if args.trials < 2 * args.workers:
        parser.error(f"--trials must be >= 2 * --workers ({2 * args.workers})")

    started = time.perf_counter()
    rows = []
    for label, expr in SAMPLERS.items():
        for n in (1, args.workers):
            print(f"{label}: {n} worker(s) ...", flush=True)
            rows.append((label, n, run_once(args.storage, expr, n, args.trials, args.duration)))
    total = time.perf_counter() - started

    backend = args.storage.split(":", 1)[0]
    lines = [
        f"# Scale-out: 1 vs {args.workers} workers on one {backend} storage",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Command: `python benchmarks/workers_pg.py{' --quick' if args.quick else ''} "
        f"--trials {args.trials} --duration {args.duration} --workers {args.workers}`",
        f"- Machine: {platform.platform()}; {os.cpu_count()} logical cores; storage backend "
        f"`{backend}` on loopback",
        f"- Versions: Python {platform.python_version()}, optuna {optuna.__version__}, "
        f"optuna-evo {optuna_evo.__version__}",
        f"- Objective: 5-D sphere, {args.duration} s per trial (sleep, in 3 reported steps); "
        f"budget {args.trials} trials per study; population size 10",
        f"- Total runtime: {total:.0f} s",
        "",
        "Trials/s counts COMPLETE trials over the span from the first trial's start to the "
        "last one's completion (from storage). Wall time includes starting the processes.",
        "",
        "| Sampler | Workers | Trials | Span (s) | Wall (s) | Trials/s | Speed-up | Best value "
        "| Generations |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base: dict[str, float] = {}
    verdicts = []
    for label, n, r in rows:
        base.setdefault(label, r["rate"])
        speedup = r["rate"] / base[label]
        if n != 1:
            verdicts.append(f"{label} {speedup:.2f}x")
        lines.append(
            f"| {label} | {n} | {r['complete']}/{r['trials']} | {r['span']:.1f} | "
            f"{r['wall']:.1f} | {r['rate']:.2f} | {speedup:.2f}x | {r['best']:.4g} | "
            f"{r['generations']} |"
        )
    ideal = args.workers
    lines += [
        "",
        f"Speed-up of {args.workers} workers over 1 (goal >= 3x; ideal {ideal}x): "
        + ", ".join(verdicts)
        + ".",
        "",
    ]
    print("\n".join(lines))
    save_report(args.out, "\n".join(lines))


if __name__ == "__main__":
    main()
