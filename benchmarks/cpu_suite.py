"""CPU benchmark suite: GeneticSampler against Optuna's built-in samplers.

Run everything and write ``benchmarks/results/cpu_suite.md``::

    python -m benchmarks.cpu_suite

or a tiny version (seconds) that writes to a temporary file unless ``--out`` is given::

    python -m benchmarks.cpu_suite --quick

Two parts, both measured in the same run:

* **Quality**: one run of ``--trials`` trials per (sampler, problem, seed); the best value so
  far (as a gap to the known optimum) is read at each checkpoint; medians and spreads over
  seeds. Runs are spread over ``--jobs`` worker processes.
* **Sampler time per trial**: an in-memory study with a trivial objective (10-D sphere) is
  driven by ``study.ask`` / ``study.tell``; each trial's ask + suggest + tell is timed, and so
  is the time spent inside the sampler's own hooks. Statistics are taken over a window of
  ``--window`` trials ending at each of ``--timing-sizes`` trials. These runs go one at a
  time, each in a fresh process, after the quality runs have finished; ``--timing-repeats``
  repeats them and pools the windows.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
import dataclasses
import datetime
import functools
import gc
import math
import os
from pathlib import Path
import platform
import sys
import tempfile
import time
from typing import Any
import warnings

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import BaseSampler

if __package__ in (None, ""):  # run as ``python benchmarks/cpu_suite.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import GA_VARIANT_KWARGS  # noqa: E402
from benchmarks._common import cpu_model  # noqa: E402
from benchmarks._common import save_report  # noqa: E402
from benchmarks.problems import PROBLEMS  # noqa: E402
from benchmarks.problems import get_problem  # noqa: E402
import optuna_evo  # noqa: E402
from optuna_evo import GeneticSampler  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "cpu_suite.md"
"""Where the full run writes its report."""

GA_DEFAULT = "GeneticSampler"
GA_VARIANT = "GeneticSampler [variant]"


def _genetic(seed: int, **kwargs: Any) -> BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return GeneticSampler(seed=seed, **kwargs)


SAMPLERS: dict[str, Callable[[int], BaseSampler]] = {
    GA_DEFAULT: _genetic,
    GA_VARIANT: functools.partial(_genetic, **GA_VARIANT_KWARGS),
    "NSGAIISampler": lambda seed: optuna.samplers.NSGAIISampler(seed=seed),
    "TPESampler": lambda seed: optuna.samplers.TPESampler(seed=seed),
    # warn_independent_sampling only switches off a log line per categorical parameter.
    "CmaEsSampler": lambda seed: optuna.samplers.CmaEsSampler(
        seed=seed, warn_independent_sampling=False
    ),
    "RandomSampler": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}
"""Sampler factories by report name; all use the sampler's defaults apart from the seed."""

SAMPLER_SPECS: dict[str, str] = {
    GA_DEFAULT: "`GeneticSampler(seed=s)`",
    GA_VARIANT: "`GeneticSampler(seed=s, "
    + ", ".join(f"{k}={v!r}" for k, v in GA_VARIANT_KWARGS.items())
    + ")`",
    "NSGAIISampler": "`NSGAIISampler(seed=s)`",
    "TPESampler": "`TPESampler(seed=s)`",
    "CmaEsSampler": "`CmaEsSampler(seed=s, warn_independent_sampling=False)`",
    "RandomSampler": "`RandomSampler(seed=s)`",
}
"""How each sampler was constructed, for the report."""

TIMED_SAMPLERS = (GA_DEFAULT, "NSGAIISampler", "TPESampler", "RandomSampler")
"""Samplers in the time-per-trial part (RandomSampler is the reference for Optuna's own cost)."""

_HOOKS = (
    "infer_relative_search_space",
    "sample_relative",
    "sample_independent",
    "before_trial",
    "after_trial",
)


def _quiet() -> None:
    """Silence Optuna's per-trial log lines and the experimental-API warning."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", ExperimentalWarning)


# -- quality ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class QualityResult:
    """Best-so-far gaps of one (sampler, problem, seed) run.

    Attributes:
        sampler: Sampler report name.
        problem: Problem name.
        seed: Sampler seed.
        gaps: Best value found minus the known optimum, at each checkpoint.
        seconds: Wall time of the whole run.
    """

    sampler: str
    problem: str
    seed: int
    gaps: tuple[float, ...]
    seconds: float


def run_quality(
    sampler: str, problem: str, seed: int, n_trials: int, checkpoints: Sequence[int]
) -> QualityResult:
    """Optimise ``problem`` for ``n_trials`` trials and read the best-so-far gaps."""
    _quiet()
    prob = get_problem(problem)
    study = optuna.create_study(sampler=SAMPLERS[sampler](seed))
    start = time.perf_counter()
    study.optimize(prob.objective, n_trials=n_trials)
    seconds = time.perf_counter() - start
    values = [t.value for t in study.trials]
    if any(v is None for v in values):
        raise RuntimeError(f"{sampler} on {problem} (seed {seed}) left trials without a value.")
    best = np.minimum.accumulate(np.asarray(values, dtype=float))
    gaps = tuple(float(best[c - 1] - prob.optimum) for c in checkpoints)
    return QualityResult(sampler, problem, seed, gaps, seconds)


def _run_quality_job(args: tuple[str, str, int, int, tuple[int, ...]]) -> QualityResult:
    return run_quality(*args)


# -- sampler time per trial -----------------------------------------------------------------


class _HookTimer:
    """Accumulate the time spent in a sampler's hooks (outermost calls only)."""

    def __init__(self, sampler: BaseSampler) -> None:
        self.elapsed = 0.0
        self._depth = 0
        for name in _HOOKS:
            setattr(sampler, name, self._wrap(getattr(sampler, name)))

    def _wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.elapsed += time.perf_counter() - start

        return timed


@dataclasses.dataclass(frozen=True)
class TimingResult:
    """Per-trial times over one window of trials.

    Attributes:
        sampler: Sampler report name.
        size: Number of trials in the study at the end of the window.
        window: Number of timed trials.
        trial_ms: ask + suggest + tell time of each timed trial, in ms.
        sampler_ms: Time inside the sampler's hooks for each timed trial, in ms.
        history: How the trials before the window were made (``"real"`` or ``"random"``).
        build_seconds: Wall time to build the study up to ``size`` trials.
        estimate_seconds: For TPE with ``--tpe-history auto``, the estimated time to run its
            history for real up to ``size`` trials (from the previous window), else ``None``.
        repeat: Index of the repeat this window belongs to.
        trial_cpu_ms: CPU time (``time.process_time``) of each timed trial's ask + suggest +
            tell, in ms; unlike wall time it does not count time the process was descheduled.
    """

    sampler: str
    size: int
    window: int
    trial_ms: tuple[float, ...]
    sampler_ms: tuple[float, ...]
    history: str
    build_seconds: float
    estimate_seconds: float | None = None
    repeat: int = 0
    trial_cpu_ms: tuple[float, ...] = ()


def _random_history(n: int, rng: np.random.RandomState) -> list[optuna.trial.FrozenTrial]:
    """``n`` finished trials of the timing objective at uniformly random points."""
    problem = get_problem("sphere")
    dist = FloatDistribution(problem.low, problem.high)  # type: ignore[union-attr]
    trials = []
    for _ in range(n):
        params = {f"x{i}": float(rng.uniform(dist.low, dist.high)) for i in range(10)}
        trials.append(
            optuna.trial.create_trial(
                params=params,
                distributions={k: dist for k in params},
                value=problem.evaluate(params),
            )
        )
    return trials


def estimate_real_history_seconds(ms_at: int, mean_ms: float, target: int) -> float:
    """Seconds to grow a study from ``ms_at`` to ``target`` trials if per-trial time grows
    linearly with the number of trials and is ``mean_ms`` at ``ms_at`` trials."""
    return mean_ms / 1e3 * (target**2 - ms_at**2) / (2.0 * ms_at)


def run_timing(
    sampler: str,
    sizes: Sequence[int],
    window: int,
    tpe_history: str = "auto",
    tpe_budget_s: float = 900.0,
    log: Callable[[str], None] = print,
    repeat: int = 0,
) -> list[TimingResult]:
    """Time ``window`` trials ending at each of ``sizes`` trials of an in-memory study.

    GA samplers always build their history by running it (they store generation attrs).
    ``TPESampler``'s history past the first size is made of random trials added with
    ``study.add_trials`` when ``tpe_history`` is ``"random"``, or when it is ``"auto"`` and
    the estimated time to run it for real exceeds ``tpe_budget_s``.
    """
    _quiet()
    problem = get_problem("sphere")
    instance = SAMPLERS[sampler](0)
    timer = _HookTimer(instance)
    study = optuna.create_study(sampler=instance)
    rng = np.random.RandomState(12345)
    results: list[TimingResult] = []
    history = "real"
    n_trials = 0  # counted here: ``study.trials`` would deep-copy every trial
    start = time.perf_counter()
    for size in sorted(sizes):
        first = size - window
        estimate: float | None = None
        if sampler == "TPESampler" and results and history == "real":
            if tpe_history == "random":
                history = "random"
            elif tpe_history == "auto":
                prev = results[-1]
                estimate = estimate_real_history_seconds(
                    prev.size, float(np.mean(prev.trial_ms)), size
                )
                log(f"  TPESampler: real history to {size} trials ~ {estimate:.0f} s (estimate)")
                if estimate > tpe_budget_s:
                    history = "random"
        if history == "random" and n_trials < first:
            study.add_trials(_random_history(first - n_trials, rng))
            n_trials = first
        trial_ms: list[float] = []
        trial_cpu_ms: list[float] = []
        sampler_ms: list[float] = []
        gc.collect()
        while n_trials < size:
            timed = n_trials >= first
            timer.elapsed = 0.0
            c0 = time.process_time()
            t0 = time.perf_counter()
            trial = study.ask()
            value = problem.objective(trial)
            study.tell(trial, value)
            t1 = time.perf_counter()
            c1 = time.process_time()
            n_trials += 1
            if timed:
                trial_ms.append((t1 - t0) * 1e3)
                trial_cpu_ms.append((c1 - c0) * 1e3)
                sampler_ms.append(timer.elapsed * 1e3)
        build = time.perf_counter() - start
        results.append(
            TimingResult(
                sampler,
                size,
                window,
                tuple(trial_ms),
                tuple(sampler_ms),
                history,
                build,
                estimate,
                repeat,
                tuple(trial_cpu_ms),
            )
        )
        log(
            f"  [{repeat}] {sampler} @ {size}: trial {np.mean(trial_ms):.3f} ms, "
            f"sampler {np.mean(sampler_ms):.3f} ms (mean), {history} history, {build:.0f} s"
        )
    return results


# -- report -------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    if x == 0.0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.4g}"


def _medians(
    results: Sequence[QualityResult], samplers: Sequence[str], problems: Sequence[str], k: int
) -> dict[tuple[str, str], np.ndarray]:
    table: dict[tuple[str, str], np.ndarray] = {}
    for s in samplers:
        for p in problems:
            table[s, p] = np.array(
                [r.gaps[k] for r in results if r.sampler == s and r.problem == p]
            )
    return table


def _is_best(value: float, column: Sequence[float]) -> bool:
    return math.isclose(value, min(column), rel_tol=1e-9, abs_tol=1e-12)


def at_least_as_good(
    results: Sequence[QualityResult], problems: Sequence[str], k: int, a: str, b: str
) -> list[str]:
    """Problems on which sampler ``a``'s median gap at checkpoint ``k`` is <= sampler ``b``'s."""
    table = _medians(results, [a, b], problems, k)
    out = []
    for p in problems:
        med_a, med_b = float(np.median(table[a, p])), float(np.median(table[b, p]))
        if med_a <= med_b or math.isclose(med_a, med_b, rel_tol=1e-9, abs_tol=1e-12):
            out.append(p)
    return out


@dataclasses.dataclass
class SuiteConfig:
    """Settings of one suite run (see ``--help``)."""

    seeds: int
    trials: int
    checkpoints: tuple[int, ...]
    timing_sizes: tuple[int, ...]
    window: int
    timing_repeats: int
    jobs: int
    tpe_history: str
    tpe_budget_s: float
    quick: bool


def render_report(
    config: SuiteConfig,
    quality: Sequence[QualityResult],
    timing: Sequence[TimingResult],
    command: str,
    started: datetime.datetime,
    seconds: dict[str, float],
) -> str:
    """Render the markdown report."""
    samplers = list(SAMPLERS)
    problems = [p.name for p in PROBLEMS]
    lines: list[str] = []
    add = lines.append
    add("# CPU benchmark suite: GeneticSampler vs Optuna's samplers")
    add("")
    if config.quick:
        add("> **Quick run** (`--quick`): tiny budgets for the test suite; not a benchmark.")
        add("")
    add(f"- Date: {started.strftime('%Y-%m-%d %H:%M %Z').strip()}")
    add(f"- Command: `{command}`")
    add(
        f"- Machine: {platform.platform()}; CPU: {cpu_model()}; {os.cpu_count()} logical "
        "cores, shared with other workloads while this ran (timings are wall-clock "
        "`time.perf_counter`, so they include interference)"
    )
    add(
        f"- Versions: Python {platform.python_version()}, optuna {optuna.__version__}, "
        f"optuna-evo {optuna_evo.__version__}, numpy {np.__version__}" + _optional_version("cmaes")
    )
    add(
        f"- Total runtime: {seconds['total']:.0f} s (quality part {seconds['quality']:.0f} s "
        f"on {config.jobs} worker process(es); timing part {seconds['timing']:.0f} s, one "
        "study at a time)"
    )
    add("")
    add("## Samplers")
    add("")
    add("All samplers use their defaults; only the seed `s` is set.")
    add("")
    for s in samplers:
        add(f"- **{s}**: {SAMPLER_SPECS[s]}")
    add("")
    add(
        f"`{GA_VARIANT}` is a tuned variant, reported in addition to the default "
        f"`{GA_DEFAULT}`; it was picked on tuning seeds 100-109 that are not used here. "
        "`CmaEsSampler` cannot model categorical parameters: on `mixed` it optimises the "
        "int/float parameters and samples `optimizer` and `activation` independently "
        "(RandomSampler); `warn_independent_sampling=False` only silences its log line."
    )
    add("")

    add("## Goals (issue 2)")
    add("")
    last = len(config.checkpoints) - 1
    wins = at_least_as_good(quality, problems, last, GA_DEFAULT, "NSGAIISampler")
    met = len(wins) > len(problems) / 2
    add(
        f"- GeneticSampler (default) ≥ NSGA-II on most problems (median gap after "
        f"{config.checkpoints[last]} trials): **{'met' if met else 'not met'}**, "
        f"{len(wins)}/{len(problems)}."
    )
    groups = _timing_groups(timing)
    for size in sorted({r.size for r in timing}):
        ga, nsga = groups.get((GA_DEFAULT, size)), groups.get(("NSGAIISampler", size))
        if ga is None or nsga is None:
            continue

        def mean(runs: list[TimingResult], attr: str) -> float:
            return float(np.mean(np.concatenate([getattr(r, attr) for r in runs])))

        ratio = mean(ga, "sampler_ms") / mean(nsga, "sampler_ms")
        trial_ratio = mean(ga, "trial_ms") / mean(nsga, "trial_ms")
        cpu_ratio = mean(ga, "trial_cpu_ms") / mean(nsga, "trial_cpu_ms")
        add(
            f"- Per-trial sampler overhead ≤ NSGA-II's at {size:,} trials: "
            f"**{'met' if ratio <= 1.0 else 'not met'}**, GeneticSampler / NSGAIISampler = "
            f"{ratio:.2f} (mean wall time in the sampler), {trial_ratio:.2f} (mean wall time "
            f"of ask + tell), {cpu_ratio:.2f} (mean CPU time of ask + tell)."
        )
    add("")
    add("## Best value found")
    add("")
    add(
        f"One {config.trials}-trial run per (sampler, problem, seed), seeds 0-{config.seeds - 1}; "
        "the best-so-far value is read after each checkpoint. Figures are the **gap to the "
        "known optimum** (best value − optimum; lower is better, 0 is optimal), minimised; "
        "the median over seeds; the best median per problem is in bold."
    )
    add("")
    add(_problem_notes())
    add("")
    for k, c in enumerate(config.checkpoints):
        table = _medians(quality, samplers, problems, k)
        add(f"### Median gap after {c} trials")
        add("")
        add("| Sampler | " + " | ".join(problems) + " |")
        add("|---|" + "---:|" * len(problems))
        for s in samplers:
            cells = []
            for p in problems:
                med = float(np.median(table[s, p]))
                column = [float(np.median(table[o, p])) for o in samplers]
                cells.append(f"**{_fmt(med)}**" if _is_best(med, column) else _fmt(med))
            add(f"| {s} | " + " | ".join(cells) + " |")
        add("")
        for a, b in (
            (GA_DEFAULT, "NSGAIISampler"),
            (GA_VARIANT, "NSGAIISampler"),
            (GA_VARIANT, GA_DEFAULT),
        ):
            wins = at_least_as_good(quality, problems, k, a, b)
            add(
                f"- {a} ≥ {b} (median gap ≤) after {c} trials on "
                f"**{len(wins)}/{len(problems)}** problems"
                + (f" ({', '.join(wins)})" if wins else "")
                + "."
            )
        add("")

    add("### Spread over seeds")
    add("")
    add("Median [interquartile range] (min – max) of the gap, per problem.")
    add("")
    for p in problems:
        add(f"**{p}**")
        add("")
        add("| Sampler | " + " | ".join(f"after {c} trials" for c in config.checkpoints) + " |")
        add("|---|" + "---|" * len(config.checkpoints))
        for s in samplers:
            cells = []
            for k in range(len(config.checkpoints)):
                v = _medians(quality, [s], [p], k)[s, p]
                q1, med, q3 = np.percentile(v, [25, 50, 75])
                cells.append(
                    f"{_fmt(med)} [{_fmt(q1)} – {_fmt(q3)}] ({_fmt(v.min())} – {_fmt(v.max())})"
                )
            add(f"| {s} | " + " | ".join(cells) + " |")
        add("")
    add("Wall time of the quality runs (sum over problems and seeds, one process each):")
    add("")
    add("| Sampler | seconds |")
    add("|---|---:|")
    for s in samplers:
        add(f"| {s} | {sum(r.seconds for r in quality if r.sampler == s):.1f} |")
    add("")

    add("## Sampler time per trial")
    add("")
    add(
        "In-memory study, 10-D sphere objective (trivial math), seed 0, driven by "
        "`study.ask()` → 10 × `suggest_float` → `study.tell()`. *Trial* = wall time of that "
        "whole sequence; *sampler* = time inside the sampler's hooks (`before_trial`, "
        "`infer_relative_search_space`, `sample_relative`, `sample_independent`, "
        "`after_trial`; outermost calls only). Mean and median over the "
        f"{config.window} trials ending at the given study size. `RandomSampler` is a "
        "reference for Optuna's own per-trial cost."
    )
    add("")
    add(
        "| Sampler | trials | history | trial mean (ms) | trial median (ms) "
        "| sampler mean (ms) | sampler median (ms) | sampler mean per repeat (ms) "
        "| trial CPU mean (ms) | time to build (s) |"
    )
    add("|---|---:|---|---:|---:|---:|---:|---|---:|---:|")
    for (sampler, size), runs in _timing_groups(timing).items():
        trial_ms = np.concatenate([r.trial_ms for r in runs])
        sampler_ms = np.concatenate([r.sampler_ms for r in runs])
        per_repeat = " / ".join(f"{np.mean(r.sampler_ms):.3f}" for r in runs)
        histories = ", ".join(sorted({r.history for r in runs}))
        build = float(np.median([r.build_seconds for r in runs]))
        cpu = np.mean(np.concatenate([r.trial_cpu_ms for r in runs]))
        add(
            f"| {sampler} | {size:,} | {histories} | {np.mean(trial_ms):.3f} "
            f"| {np.median(trial_ms):.3f} | {np.mean(sampler_ms):.3f} "
            f"| {np.median(sampler_ms):.3f} | {per_repeat} | {cpu:.3f} | {build:.1f} |"
        )
    add("")
    add(
        f"Each (sampler, size) pools the {config.window}-trial windows of "
        f"{config.timing_repeats} repeat(s); every repeat builds a fresh study in a fresh "
        "process, and the order of the samplers rotates between repeats. "
        "*history*: `real` = every earlier trial was run by the sampler itself; `random` = "
        f"trials after the first {min(config.timing_sizes):,} were uniformly random trials added "
        "with `study.add_trials` (TPE keeps no per-trial state, so its cost depends only on "
        "the number of finished trials). GA samplers always run their own history because "
        "they store generation attrs. *trial CPU* = the trial's process CPU time "
        "(`time.process_time`), which leaves out time the process waited for a core. "
        "*time to build* = median wall time from an empty study "
        "to the end of the window (timing overhead included)."
    )
    estimates = [r for r in timing if r.estimate_seconds is not None]
    if estimates:
        r = estimates[0]
        add("")
        add(
            f"TPESampler history to {r.size:,} trials: estimated {r.estimate_seconds:.0f} s "
            f"per repeat ({config.timing_repeats} repeats) if run for real (per-trial time "
            f"taken to grow linearly from the mean at {min(config.timing_sizes):,} trials, "
            f"first repeat); the limit is {config.tpe_budget_s:.0f} s for all repeats, so it "
            f"was built with **{r.history}** trials."
        )
    add("")
    return "\n".join(lines)


def _timing_groups(
    timing: Sequence[TimingResult],
) -> dict[tuple[str, int], list[TimingResult]]:
    """Timing windows grouped by (sampler, size), in TIMED_SAMPLERS order, by repeat."""
    groups: dict[tuple[str, int], list[TimingResult]] = {}
    for s in TIMED_SAMPLERS:
        for r in sorted(timing, key=lambda r: (r.size, r.repeat)):
            if r.sampler == s:
                groups.setdefault((s, r.size), []).append(r)
    return groups


def _optional_version(module: str) -> str:
    try:
        mod = __import__(module)
    except ImportError:
        return ""
    return f", {module} {getattr(mod, '__version__', '?')}"


def _problem_notes() -> str:
    return (
        "Problems (10-D unless stated): `sphere` on [-5.12, 5.12]; `rosenbrock` on [-5, 10]; "
        "`rastrigin` on [-5.12, 5.12]; `styblinski-tang` on [-5, 5], optimum "
        "−39.16617 × 10 (the exact 1-D minimum; often quoted as −39.16599); `mixed`: four "
        "ints in [-10, 10], a log-int batch size in [16, 1024], a log-float learning rate in "
        "[1e-5, 1e-1] whose best value depends on the optimizer, and two 4-way categoricals "
        "with per-choice offsets, optimum 0 (see `benchmarks/problems.py`)."
    )


# -- command line -------------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> tuple[SuiteConfig, Path]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cpu_suite", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny run for the test suite")
    parser.add_argument("--out", type=Path, help=f"report path (default {DEFAULT_OUT})")
    parser.add_argument("--seeds", type=int, help="number of seeds (default 5; quick 2)")
    parser.add_argument("--trials", type=int, help="trials per run (default 300; quick 30)")
    parser.add_argument(
        "--checkpoints", type=int, nargs="+", help="best-so-far checkpoints (default 100 300)"
    )
    parser.add_argument(
        "--timing-sizes", type=int, nargs="+", help="study sizes to time (default 1000 10000)"
    )
    parser.add_argument("--window", type=int, help="timed trials per size (default 100)")
    parser.add_argument(
        "--timing-repeats", type=int, help="repeats of the timing part (default 3; quick 1)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for quality runs")
    parser.add_argument(
        "--tpe-history",
        choices=("auto", "real", "random"),
        default="auto",
        help="how TPE's history past the first timing size is built (default auto)",
    )
    parser.add_argument(
        "--tpe-budget",
        type=float,
        default=900.0,
        help="auto: use random TPE history if running it for real, all repeats together, "
        "would take longer than this (seconds, default 900)",
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    trials = args.trials or (30 if quick else 300)
    config = SuiteConfig(
        seeds=args.seeds or (2 if quick else 5),
        trials=trials,
        checkpoints=tuple(args.checkpoints or ((10, 30) if quick else (100, 300))),
        timing_sizes=tuple(args.timing_sizes or ((60, 150) if quick else (1000, 10000))),
        window=args.window or (20 if quick else 100),
        timing_repeats=max(1, args.timing_repeats or (1 if quick else 3)),
        jobs=max(1, args.jobs),
        tpe_history=args.tpe_history,
        tpe_budget_s=args.tpe_budget,
        quick=quick,
    )
    if any(not 1 <= c <= trials for c in config.checkpoints):
        parser.error("every checkpoint must be in [1, --trials]")
    if any(s < config.window for s in config.timing_sizes):
        parser.error("every timing size must be >= --window")
    if args.out is not None:
        out = args.out
    elif quick:
        out = Path(tempfile.gettempdir()) / "optuna_evo_cpu_suite_quick.md"
    else:
        out = DEFAULT_OUT
    return config, out


def main(argv: Sequence[str] | None = None) -> Path:
    """Run the suite and write the report; return the report's path."""
    argv = list(sys.argv[1:] if argv is None else argv)
    config, out = _parse(argv)
    _quiet()
    started = datetime.datetime.now().astimezone()
    t0 = time.perf_counter()

    problems = [p.name for p in PROBLEMS]
    jobs = [
        (s, p, seed, config.trials, config.checkpoints)
        for s in SAMPLERS
        for p in problems
        for seed in range(config.seeds)
    ]
    # Slowest sampler first so the two workers finish together.
    jobs.sort(key=lambda j: j[0] != "TPESampler")
    print(f"quality: {len(jobs)} runs of {config.trials} trials on {config.jobs} process(es)")
    if config.jobs == 1:
        quality = [_run_quality_job(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=config.jobs) as pool:
            quality = list(pool.map(_run_quality_job, jobs))
    t1 = time.perf_counter()
    print(f"quality: done in {t1 - t0:.0f} s")

    timing: list[TimingResult] = []
    order = list(TIMED_SAMPLERS)
    for repeat in range(config.timing_repeats):
        shift = repeat % len(order)
        for s in order[shift:] + order[:shift]:  # rotate so no sampler always runs first
            print(f"timing: {s} (repeat {repeat})", flush=True)
            # A fresh process per study, so no run inherits another's heap.
            with ProcessPoolExecutor(max_workers=1) as pool:
                timing += pool.submit(
                    run_timing,
                    s,
                    config.timing_sizes,
                    config.window,
                    config.tpe_history,
                    config.tpe_budget_s / config.timing_repeats,
                    print,
                    repeat,
                ).result()
    t2 = time.perf_counter()
    print(f"timing: done in {t2 - t1:.0f} s")

    command = "python -m benchmarks.cpu_suite" + "".join(f" {a}" for a in argv)
    seconds = {"total": t2 - t0, "quality": t1 - t0, "timing": t2 - t1}
    report = render_report(config, quality, timing, command, started, seconds)
    return save_report(out, report, t2 - t0)


if __name__ == "__main__":
    main()
