"""FashionMNIST MLP architecture search: MAGE (multi mode) with and without predictor assistance.

Both arms run the same MAGESampler (multi mode, crossover of two parents with probability 0.5,
rank-scaled mutation, one elite) for the same number of trials and seeds; the assisted arm adds
:class:`~optuna_evo.samplers.PredictorAssist` (surrogate choosing among ``--candidates``
children, duplicate cache, stability guard). Every trial trains a fresh MLP (depth, widths,
activation, residual/linear blocks, skip edges, lr, batch size, weight decay) for ``--epochs``
on a subset of FashionMNIST from the run's seed (so equal configurations give equal results)
and returns the best validation loss, unpruned; the test accuracy of each run's
best-validation trial is reported too.

    python -m benchmarks.predictor_assisted                # writes predictor_assisted_cpu.md
    python -m benchmarks.predictor_assisted --device cuda  # writes predictor_assisted_gpu.md
    python -m benchmarks.predictor_assisted --quick --out /tmp/pa.md  # seconds, no benchmark

Reports go to ``benchmarks/results/`` unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import datetime
import math
import os
from pathlib import Path
import platform
import statistics
import sys
import time
from typing import Any
import warnings

import numpy as np
import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState
import torch

if __package__ in (None, ""):  # run as ``python benchmarks/predictor_assisted.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import cpu_model  # noqa: E402
from benchmarks._common import save_report  # noqa: E402
import optuna_evo  # noqa: E402
from optuna_evo.objectives import MLP  # noqa: E402
from optuna_evo.objectives import TrainConfig  # noqa: E402
from optuna_evo.objectives import TrainingFailed  # noqa: E402
from optuna_evo.objectives import load_image_dataset  # noqa: E402
from optuna_evo.objectives import train  # noqa: E402
from optuna_evo.objectives.data import ClassificationSplits  # noqa: E402
from optuna_evo.objectives.data import resolve_device  # noqa: E402
from optuna_evo.samplers import PredictorAssist  # noqa: E402
from optuna_evo.samplers import assist_summary  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SPACE: dict[str, Any] = {
    "layers": [[784, 128, 10], [784, 256, 10], [784, 256, 128, 10]],
    "activations": ["relu", "tanh", "gelu"],
    "blocks": ["linear", "residual"],
    "skips": True,
    "max_layers": 4,
}
"""The architecture genome both arms search."""

ARMS = ("MAGE multi", "MAGE multi + assist")


@dataclass
class RunResult:
    """One (arm, seed) run."""

    arm: str
    seed: int
    best_val_loss: float
    best_val_accuracy: float
    best_test_accuracy: float
    curve: list[float]  # best validation loss so far after each generation
    distinct: int
    trials: int
    train_seconds: float
    wall_seconds: float
    summary: dict[str, Any]
    surrogate_mae: float | None
    surrogate_spearman: float | None


def _sampler(arm: str, config: argparse.Namespace, seed: int) -> optuna.samplers.BaseSampler:
    assist = None
    if arm.endswith("assist"):
        assist = PredictorAssist(
            n_candidates=config.candidates,
            min_trials=config.population,
            stability_threshold=config.stability_threshold,
        )
    return optuna_evo.MAGESampler(
        "multi",
        SPACE,
        population_size=config.population,
        n_elites=1,
        mutation_prob=0.5,
        crossover_prob=0.5,
        assist=assist,
        seed=seed,
    )


def _spearman(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3:
        return None
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def run_one(
    arm: str, seed: int, config: argparse.Namespace, data: ClassificationSplits
) -> RunResult:
    """Run one arm with one seed in an in-memory study."""
    device = torch.device(config.device_resolved)

    def objective(trial: optuna.Trial) -> float:
        arch = optuna_evo.suggest_architecture(trial, SPACE)
        lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        batch_size = trial.suggest_categorical("batch_size", [64, 128, 256])
        weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True)
        train_config = TrainConfig(
            optimizer="adamw",
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            epochs=config.epochs,
            device=device,
            seed=seed,
            evaluate_test=True,
        )
        torch.manual_seed(seed)  # the initial weights too: equal configs, equal results
        return train(MLP(arch), data, train_config, trial).best_val_loss

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        # Every trial trains all its epochs: Optuna's default MedianPruner would prune some at
        # their last report and drop their values from both arms.
        study = optuna.create_study(
            sampler=_sampler(arm, config, seed), pruner=optuna.pruners.NopPruner()
        )
    start = time.perf_counter()
    # A diverged or out-of-memory trial fails alone; the run goes on.
    study.optimize(
        objective, n_trials=config.generations * config.population, catch=(TrainingFailed,)
    )
    wall = time.perf_counter() - start
    trials = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not trials:
        raise RuntimeError(f"{arm}, seed {seed}: no trial completed (see the failed trials).")
    best = min(trials, key=lambda t: t.value)  # type: ignore[arg-type, return-value]
    curve, so_far = [], math.inf
    for i, t in enumerate(study.trials):
        if t.value is not None:
            so_far = min(so_far, t.value)
        if (i + 1) % config.population == 0:
            curve.append(so_far)
    predicted, actual = [], []
    for t in trials:
        record = t.system_attrs.get("optuna_evo:assist")
        if isinstance(record, dict) and record.get("predicted") is not None:
            predicted.append(float(record["predicted"]))
            actual.append(float(t.value))  # type: ignore[arg-type]
    return RunResult(
        arm=arm,
        seed=seed,
        best_val_loss=float(best.value),  # type: ignore[arg-type]
        best_val_accuracy=float(best.user_attrs.get("val_accuracy", math.nan)),
        best_test_accuracy=float(best.user_attrs.get("test_accuracy", math.nan)),
        curve=curve,
        distinct=len({tuple(sorted(t.params.items())) for t in study.trials}),
        trials=len(study.trials),
        train_seconds=sum(float(t.user_attrs.get("train_seconds", 0.0)) for t in trials),
        wall_seconds=wall,
        summary=assist_summary(study),
        surrogate_mae=(
            float(np.mean(np.abs(np.array(predicted) - np.array(actual)))) if predicted else None
        ),
        surrogate_spearman=_spearman(predicted, actual),
    )


def _fmt(x: float | None, digits: int = 4) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def report(
    results: list[RunResult],
    config: argparse.Namespace,
    command: str,
    started: datetime.datetime,
    total: float,
) -> str:
    """The markdown report: setup, every run, and medians over seeds per arm."""
    lines: list[str] = []
    add = lines.append
    add("# Predictor-assisted MAGE: FashionMNIST MLP architecture search")
    add("")
    if config.quick:
        add("> **Quick run** (`--quick`): tiny budgets for a smoke test; not a benchmark.")
        add("")
    device = torch.device(config.device_resolved)
    if device.type == "cuda":
        hardware = f"GPU: {torch.cuda.get_device_name(device)}"
    else:
        hardware = f"CPU: {cpu_model()}; {os.cpu_count()} logical cores, shared with other work"
    add(f"- Date: {started.strftime('%Y-%m-%d %H:%M %Z').strip()}")
    add(f"- Command: `{command}`")
    add(f"- Machine: {platform.platform()}; {hardware}; device `{device}`")
    add(
        f"- Versions: Python {platform.python_version()}, torch {torch.__version__}, "
        f"optuna {optuna.__version__}, optuna-evo {optuna_evo.__version__}, numpy {np.__version__}"
    )
    add(f"- Total runtime: {total:.0f} s")
    n_trials = config.generations * config.population
    add(
        f"- Setup: {n_trials} trials per run ({config.generations} generations × "
        f"{config.population} agents), seeds {list(range(config.seeds))}; data: FashionMNIST "
        f"{config.max_train or 'all 50000'} train / {config.max_val or 'all 10000'} val / "
        f"{config.max_test or 'all 10000'} test images; each trial trains a fresh MLP (initial "
        f"weights from the run's seed) for {config.epochs} epoch(s) with AdamW and returns its "
        "best validation loss; no pruning"
    )
    add(
        "- Both arms: `MAGESampler('multi', SPACE, population_size="
        f"{config.population}, n_elites=1, mutation_prob=0.5, crossover_prob=0.5)`; assisted "
        f"arm adds `PredictorAssist(n_candidates={config.candidates}, min_trials="
        f"{config.population}, stability_threshold={config.stability_threshold})`"
    )
    add(f"- SPACE: `{SPACE}`")
    add("")
    add("## Medians over seeds")
    add("")
    add(
        "| arm | best val loss | val acc of best | test acc of best | distinct configs | "
        "train s | wall s |"
    )
    add("|---|---|---|---|---|---|---|")
    for arm in ARMS:
        runs = [r for r in results if r.arm == arm]
        if not runs:
            continue

        def med(key: str, runs: list[RunResult] = runs) -> float:
            return statistics.median(getattr(r, key) for r in runs)

        add(
            f"| {arm} | {_fmt(med('best_val_loss'))} | {_fmt(med('best_val_accuracy'))} | "
            f"{_fmt(med('best_test_accuracy'))} | {med('distinct'):.0f} / {runs[0].trials} | "
            f"{med('train_seconds'):.0f} | {med('wall_seconds'):.0f} |"
        )
    add("")
    add("## Best validation loss so far, after each generation (median over seeds)")
    add("")
    n_gen = min(len(r.curve) for r in results)
    add("| arm | " + " | ".join(str(g) for g in range(n_gen)) + " |")
    add("|---|" + "---|" * n_gen)
    for arm in ARMS:
        runs = [r for r in results if r.arm == arm]
        if runs:
            cells = [_fmt(statistics.median(r.curve[g] for r in runs)) for g in range(n_gen)]
            add(f"| {arm} | " + " | ".join(cells) + " |")
    add("")
    add("## Every run")
    add("")
    add(
        "| arm | seed | best val loss | test acc of best | distinct | guard rejected / checked "
        "| duplicates re-mutated | surrogate MAE | surrogate Spearman |"
    )
    add("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r.summary
        guard = f"{s['guard_rejections']} / {s['guard_checks']}" if s["assisted_trials"] else "–"
        dups = str(s["duplicates_remutated"]) if s["assisted_trials"] else "–"
        add(
            f"| {r.arm} | {r.seed} | {_fmt(r.best_val_loss)} | {_fmt(r.best_test_accuracy)} | "
            f"{r.distinct} | {guard} | {dups} | {_fmt(r.surrogate_mae)} | "
            f"{_fmt(r.surrogate_spearman, 2)} |"
        )
    add("")
    add(
        "Surrogate MAE / Spearman: the assisted arm's prediction for each chosen child "
        "(made before it trained) against the validation loss it then reached."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[RunResult]:
    """Run the benchmark and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--generations", type=int, default=None)
    parser.add_argument("--population", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--stability-threshold", type=float, default=0.1)
    parser.add_argument("--max-train", type=int, default=None)
    parser.add_argument("--max-val", type=int, default=None)
    parser.add_argument("--max-test", type=int, default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    args.device_resolved = str(device)
    gpu = device.type == "cuda"
    # name: (quick, CPU, GPU) defaults; the CPU ones fit about 10 minutes on two busy cores.
    defaults = {
        "seeds": (1, 5, 3),
        "generations": (2, 8, 10),
        "population": (4, 8, 16),
        "epochs": (1, 2, 5),
        "max_train": (500, 10000, None),
        "max_val": (300, 2000, None),
        "max_test": (300, 2000, None),
    }
    column = 0 if args.quick else (2 if gpu else 1)
    for name, values in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, values[column])
    out = args.out or RESULTS / f"predictor_assisted_{'gpu' if gpu else 'cpu'}.md"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    data = load_image_dataset(
        "fashion-mnist",
        args.data_dir,
        device,
        max_train=args.max_train,
        max_val=args.max_val,
        max_test=args.max_test,
    )
    started = datetime.datetime.now(datetime.timezone.utc)
    command = "python -m benchmarks.predictor_assisted " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    t0 = time.perf_counter()
    results = []
    for seed in range(args.seeds):
        for arm in ARMS:  # interleaved, so machine load hits both arms alike
            result = run_one(arm, seed, args, data)
            results.append(result)
            print(
                f"{arm:22s} seed {seed}: best val loss {result.best_val_loss:.4f}, "
                f"test acc {result.best_test_accuracy:.4f}, {result.wall_seconds:.0f} s",
                flush=True,
            )
    text = report(results, args, command.strip(), started, time.perf_counter() - t0)
    save_report(out, text, time.perf_counter() - t0)
    return results


if __name__ == "__main__":
    main()
