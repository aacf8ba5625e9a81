"""GPU benchmark of :class:`~optuna_evo.MAGESampler` on FashionMNIST MLPs (issue 4).

Measures, in one run on one device (``--seeds`` seeds, 3 by default):

(a) **Weight inheritance, single mode.** A fixed MLP (784-256-128-10, ReLU) whose training
    hyperparameters MAGE evolves; every trial trains ``--local-epochs`` epoch(s). Three arms
    with the same total number of training epochs (``population x generations x
    local_epochs``):

    * ``MAGE single, inherited weights``: each agent continues from its parent's checkpoint
      (:func:`optuna_evo.checkpoint.load_parent` / :func:`~optuna_evo.checkpoint.save`
      through a :class:`~optuna.artifacts.FileSystemArtifactStore`), as in
      ``examples/mage_fashion_mnist.py``;
    * ``MAGE single, from scratch``: the same sampler and seed, but every trial starts from
      fresh weights (no checkpoint is loaded or saved);
    * ``Plain runs from scratch``: ``population`` RandomSampler trials, each trained for
      ``generations x local_epochs`` epochs from fresh weights.

    Reported per arm and seed: the best validation accuracy, the GPU time until some
    evaluation first reaches ``--target`` (default 0.89) validation accuracy, and the GPU time
    used.

(b) **Multi mode vs TPESampler and RandomSampler at equal GPU time.** Every sampler searches
    the same space: the architecture from :func:`optuna_evo.suggest_architecture` on
    :data:`MULTI_SPACE` (MAGE mutates it, the others search its parameters) and
    :class:`~optuna_evo.objectives.MLPTask`'s training space (optimizer, lr, momentum for
    SGD, batch size, weight decay) and training setup (cosine schedule, one evaluation per
    epoch). MAGE agents train ``--local-epochs`` epoch(s) from their parent's weights per
    trial; TPE and Random trials train ``--trial-epochs`` epochs from scratch. Each run gets
    ``--budget-s`` seconds of GPU time. Reported per sampler: best validation accuracy and GPU
    time to the target, median over the seeds. Goal: MAGE reaches the target in less GPU time
    than both.

"GPU time" is the wall-clock time spent inside trials on the benchmark device (model
building, checkpoint loading and saving, training and the per-epoch evaluations), summed over
the trials in the order they ran (one worker). A run's time to target is that sum over the
trials before the first evaluation reaching the target plus the time into that trial; the
sampler's own time between trials is listed separately as study wall time. A run that never
reaches the target is listed as "not reached" and counts as infinitely slow in medians.

Writes a markdown report naming the device, date, command and versions (default
``benchmarks/results/mage_gpu_<device>_<date>.md``). ``--quick`` shrinks the data (1,024 /
512 images), the MLPs, the populations and the budgets so the script runs on a CPU in seconds;
its figures mean nothing.

Usage::

    python benchmarks/mage_gpu.py                                # full run on the GPU
    python benchmarks/mage_gpu.py --quick --out /tmp/mage_gpu.md   # CPU smoke run
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import datetime
import math
from pathlib import Path
import statistics
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Run from a plain checkout.

import optuna  # noqa: E402
from optuna.artifacts import FileSystemArtifactStore  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
import torch  # noqa: E402

from benchmarks._common import GPUBudget  # noqa: E402
from benchmarks._common import budget_kwargs  # noqa: E402
from benchmarks._common import default_out  # noqa: E402
from benchmarks._common import format_seconds  # noqa: E402
from benchmarks._common import report_header  # noqa: E402
from benchmarks._common import save_report  # noqa: E402
from benchmarks._common import silence  # noqa: E402
import optuna_evo  # noqa: E402
from optuna_evo import checkpoint  # noqa: E402
from optuna_evo.architecture import Architecture  # noqa: E402
from optuna_evo.objectives import MLP  # noqa: E402
from optuna_evo.objectives import ClassificationSplits  # noqa: E402
from optuna_evo.objectives import MLPTask  # noqa: E402
from optuna_evo.objectives import TrainConfig  # noqa: E402
from optuna_evo.objectives import TrainingFailed  # noqa: E402
from optuna_evo.objectives import load_image_dataset  # noqa: E402
from optuna_evo.objectives import train  # noqa: E402
from optuna_evo.objectives.data import resolve_device  # noqa: E402
from optuna_evo.objectives.tasks import suggest  # noqa: E402
from optuna_evo.objectives.train import set_seed  # noqa: E402

SINGLE_SPACE: dict[str, Any] = {"layers": [[784, 256, 128, 10]], "activations": ["relu"]}
"""Part (a): MAGE's single mode uses this one architecture."""

MULTI_SPACE: dict[str, Any] = {
    "layers": [[784, 128, 10], [784, 256, 10], [784, 256, 128, 10]],
    "activations": ["relu", "tanh", "gelu"],
}
"""Part (b): the architecture space every sampler searches (as in the MAGE example)."""

QUICK_SINGLE_SPACE: dict[str, Any] = {"layers": [[784, 32, 10]], "activations": ["relu"]}
"""``--quick`` stand-in for :data:`SINGLE_SPACE`."""

QUICK_MULTI_SPACE: dict[str, Any] = {
    "layers": [[784, 16, 10], [784, 32, 10]],
    "activations": ["relu", "tanh"],
}
"""``--quick`` stand-in for :data:`MULTI_SPACE`."""

SINGLE_ARMS: tuple[str, ...] = (
    "MAGE single, inherited weights",
    "MAGE single, from scratch",
    "Plain runs from scratch",
)
"""Part (a) arms, in report order."""

MULTI_SAMPLERS: tuple[str, ...] = ("MAGESampler (multi)", "TPESampler", "RandomSampler")
"""Part (b) samplers, in report order."""


@dataclass
class MLPObjective:
    """One FashionMNIST MLP trial: MLPTask's training space and setup, timed per epoch.

    Sets the user attrs ``gpu_seconds`` (wall time of the whole trial), ``curve`` (``[seconds
    since the trial started, validation accuracy]`` after every epoch) and ``architecture``.
    Returns the final validation loss (that of the model a child inherits), or ``nan`` for a
    diverged / out-of-memory run (a failed trial, as the ready-made tasks do).

    Attributes:
        data: FashionMNIST splits on the device.
        device: Training device.
        epochs: Epochs per trial.
        arch_fn: ``fn(trial) -> Architecture``.
        seed: Base seed; trial ``n`` uses ``seed + n``.
        store: Artifact store for weight inheritance; ``None`` trains every trial from scratch.
        budget: Optional GPU budget of the run; a trial trains at most its remaining seconds.
    """

    data: ClassificationSplits
    device: torch.device
    epochs: int
    arch_fn: Callable[[optuna.Trial], Architecture]
    seed: int
    store: FileSystemArtifactStore | None = None
    budget: GPUBudget | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        """Train one agent / configuration; return its final validation loss."""
        start = time.perf_counter()
        try:
            return self._run(trial, start)
        finally:
            seconds = time.perf_counter() - start
            trial.set_user_attr("gpu_seconds", seconds)
            if self.budget is not None:
                self.budget.spend(seconds)

    def _run(self, trial: optuna.Trial, start: float) -> float:
        arch = self.arch_fn(trial)
        space = MLPTask.TRAINING_SPACE
        optimizer = suggest(trial, "optimizer", space["optimizer"])
        lr = suggest(trial, "lr", space["lr"])
        momentum = suggest(trial, "momentum", space["momentum"]) if optimizer == "sgd" else 0.0
        batch_size = suggest(trial, "batch_size", space["batch_size"])
        weight_decay = suggest(trial, "weight_decay", space["weight_decay"])
        trial.set_user_attr("architecture", arch.to_dict())
        seed = self.seed + trial.number
        set_seed(seed)
        model = MLP(arch)
        if self.store is not None:
            checkpoint.load_parent(trial, model, self.store)  # noise as the sampler planned
        budget_s = None
        if self.budget is not None:
            budget_s = max(self.budget.remaining() - (time.perf_counter() - start), 1e-3)
        config = TrainConfig(
            optimizer=optimizer,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            batch_size=batch_size,
            epochs=self.epochs,
            time_budget_s=budget_s,
            scheduler="cosine",
            seed=seed,
            device=self.device,
        )
        before_training = time.perf_counter() - start
        try:
            result = train(model, self.data, config, trial)
        except TrainingFailed as e:
            trial.set_user_attr("fail_reason", str(e))
            return math.nan
        trial.set_user_attr(
            "curve",
            [
                [before_training + r.elapsed_s, float(r.val_accuracy or 0.0)]
                for r in result.history
            ],
        )
        if self.store is not None:
            checkpoint.save(trial, model, self.store)
        return result.val_loss


@dataclass
class RunResult:
    """The trials of one study, in the order they ran.

    Attributes:
        label: Arm or sampler name.
        seed: The run's seed.
        wall_s: Wall time of ``study.optimize`` (trials and sampler).
        trials: ``(gpu_seconds, curve, state, architecture)`` per trial.
    """

    label: str
    seed: int
    wall_s: float
    trials: list[tuple[float, list[list[float]], TrialState, dict[str, Any]]] = field(
        default_factory=list
    )

    @classmethod
    def from_study(cls, label: str, seed: int, study: optuna.Study, wall_s: float) -> RunResult:
        """Collect the finished trials of ``study``."""
        run = cls(label, seed, wall_s)
        for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
            if t.state == TrialState.RUNNING:
                continue
            run.trials.append(
                (
                    float(t.user_attrs.get("gpu_seconds", 0.0)),
                    [list(p) for p in t.user_attrs.get("curve", [])],
                    t.state,
                    dict(t.user_attrs.get("architecture", {})),
                )
            )
        return run

    @property
    def gpu_s(self) -> float:
        """GPU seconds used by all trials."""
        return sum(t[0] for t in self.trials)

    @property
    def epochs(self) -> int:
        """Evaluations (one per epoch) over all trials."""
        return sum(len(t[1]) for t in self.trials)

    @property
    def best_accuracy(self) -> float:
        """Best validation accuracy of any evaluation (0 when none finished)."""
        return max((acc for t in self.trials for _, acc in t[1]), default=0.0)

    def best_architecture(self) -> str:
        """Widths and activations of the trial with the best evaluation."""
        best, arch = -1.0, {}
        for _, curve, _, a in self.trials:
            acc = max((c[1] for c in curve), default=-1.0)
            if acc > best:
                best, arch = acc, a
        if not arch:
            return "n/a"
        acts = sorted(set(arch.get("activations", [])))
        return f"{'-'.join(str(w) for w in arch.get('widths', []))} {'/'.join(acts)}".strip()

    def time_to(self, target: float) -> float:
        """GPU seconds until an evaluation first reached ``target``; ``inf`` if none did."""
        before = 0.0
        for seconds, curve, _, _ in self.trials:
            for at, acc in curve:
                if acc >= target:
                    return before + at
            before += seconds
        return math.inf


def _optimize(
    label: str,
    seed: int,
    sampler: optuna.samplers.BaseSampler,
    objective: MLPObjective,
    n_trials: int | None,
) -> RunResult:
    study = optuna.create_study(sampler=sampler, pruner=optuna.pruners.NopPruner())
    start = time.perf_counter()
    study.optimize(objective, n_trials=n_trials, **budget_kwargs(objective.budget))
    run = RunResult.from_study(label, seed, study, time.perf_counter() - start)
    print(
        f"{label} seed {seed}: {len(run.trials)} trials, best acc {run.best_accuracy:.4f}, "
        f"{run.gpu_s:.1f} GPU s, wall {run.wall_s:.1f} s",
        flush=True,
    )
    return run


def _mage(
    mode: str, space: dict[str, Any], population: int, args: argparse.Namespace, seed: int
) -> optuna_evo.MAGESampler:
    return optuna_evo.MAGESampler(
        mode,
        space,
        population_size=population,
        n_elites=max(1, population // 4),
        mutation_prob=args.mutation_prob,
        complexity_weight=args.complexity_weight if mode == "multi" else 0.0,
        weight_noise=args.weight_noise,
        seed=seed,
    )


def run_single(
    data: ClassificationSplits, device: torch.device, args: argparse.Namespace, seed: int
) -> list[RunResult]:
    """Part (a) for one seed: the three arms of :data:`SINGLE_ARMS`."""
    space = args.single_space
    widths = list(space["layers"][0])
    fixed = Architecture(widths=widths, activations=[space["activations"][0]] * (len(widths) - 2))
    pop, gens, local = args.single_population, args.generations, args.local_epochs

    def suggested(trial: optuna.Trial) -> Architecture:
        return optuna_evo.suggest_architecture(trial, space)

    runs = []
    with tempfile.TemporaryDirectory(prefix="mage-gpu-") as tmp:
        inherit = MLPObjective(data, device, local, suggested, seed, FileSystemArtifactStore(tmp))
        sampler = _mage("single", space, pop, args, seed)
        runs.append(_optimize(SINGLE_ARMS[0], seed, sampler, inherit, pop * gens))
    scratch = MLPObjective(data, device, local, suggested, seed)
    runs.append(
        _optimize(
            SINGLE_ARMS[1], seed, _mage("single", space, pop, args, seed), scratch, pop * gens
        )
    )
    plain = MLPObjective(data, device, local * gens, lambda trial: fixed, seed)
    runs.append(
        _optimize(SINGLE_ARMS[2], seed, optuna.samplers.RandomSampler(seed=seed), plain, pop)
    )
    return runs


def run_multi(
    data: ClassificationSplits, device: torch.device, args: argparse.Namespace, seed: int
) -> list[RunResult]:
    """Part (b) for one seed: :data:`MULTI_SAMPLERS`, each with ``args.budget_s`` GPU seconds."""
    space = args.multi_space

    def suggested(trial: optuna.Trial) -> Architecture:
        return optuna_evo.suggest_architecture(trial, space)

    runs = []
    with tempfile.TemporaryDirectory(prefix="mage-gpu-") as tmp:
        mage = MLPObjective(
            data,
            device,
            args.local_epochs,
            suggested,
            seed,
            FileSystemArtifactStore(tmp),
            GPUBudget(args.budget_s),
        )
        sampler = _mage("multi", space, args.multi_population, args, seed)
        runs.append(_optimize(MULTI_SAMPLERS[0], seed, sampler, mage, None))
    others: list[tuple[str, optuna.samplers.BaseSampler]] = [
        (MULTI_SAMPLERS[1], optuna.samplers.TPESampler(seed=seed)),
        (MULTI_SAMPLERS[2], optuna.samplers.RandomSampler(seed=seed)),
    ]
    for name, other in others:
        objective = MLPObjective(
            data, device, args.trial_epochs, suggested, seed, budget=GPUBudget(args.budget_s)
        )
        runs.append(_optimize(name, seed, other, objective, None))
    return runs


def warm_up(data: ClassificationSplits, device: torch.device) -> None:
    """Two untimed trials (CUDA context, kernels, checkpoint I/O) so no arm pays for them."""
    arch = Architecture(widths=[data.n_features, 32, data.n_classes], activations=["relu"])
    with tempfile.TemporaryDirectory(prefix="mage-gpu-") as tmp:
        objective = MLPObjective(
            data, device, 1, lambda trial: arch, 0, FileSystemArtifactStore(tmp)
        )
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(objective, n_trials=2)


# --- report -------------------------------------------------------------------------------


def _per_run_table(runs: Sequence[RunResult], target: float, arch: bool) -> list[str]:
    head = (
        "| Run | Seed | Trials | Epochs (evaluations) | Best val accuracy | "
        f"GPU time to {target:g} (s) | GPU time used (s) | Study wall (s) |"
    )
    sep = "|---|---:|---:|---:|---:|---:|---:|---:|"
    if arch:
        head, sep = head + " Best architecture |", sep + "---|"
    lines = [head, sep]
    for r in runs:
        row = (
            f"| {r.label} | {r.seed} | {len(r.trials)} | {r.epochs} | {r.best_accuracy:.4f} | "
            f"{format_seconds(r.time_to(target), 2)} | {r.gpu_s:.1f} | {r.wall_s:.1f} |"
        )
        lines.append(row + (f" {r.best_architecture()} |" if arch else ""))
    return lines


def _summary(runs: Sequence[RunResult], labels: Sequence[str], target: float) -> dict[str, dict]:
    out = {}
    for label in labels:
        mine = [r for r in runs if r.label == label]
        times = [r.time_to(target) for r in mine]
        out[label] = {
            "acc": statistics.median(r.best_accuracy for r in mine),
            "time": statistics.median(times),
            "reached": sum(math.isfinite(t) for t in times),
            "n": len(mine),
            "gpu": statistics.median(r.gpu_s for r in mine),
            "trials": statistics.median(len(r.trials) for r in mine),
        }
    return out


def _summary_table(summary: dict[str, dict], target: float) -> list[str]:
    lines = [
        f"| Run | Median best val accuracy | Median GPU time to {target:g} (s) | Runs reaching "
        f"{target:g} | Median GPU time used (s) | Median trials |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, s in summary.items():
        lines.append(
            f"| {label} | {s['acc']:.4f} | {format_seconds(s['time'], 2)} | "
            f"{s['reached']}/{s['n']} | "
            f"{s['gpu']:.1f} | {s['trials']:g} |"
        )
    return lines


def single_section(runs: list[RunResult], args: argparse.Namespace) -> list[str]:
    """Markdown of part (a)."""
    t = args.target
    widths = "-".join(str(w) for w in args.single_space["layers"][0])
    pop, gens, local = args.single_population, args.generations, args.local_epochs
    summary = _summary(runs, SINGLE_ARMS, t)
    inherit = summary[SINGLE_ARMS[0]]["time"]
    others = {k: v["time"] for k, v in summary.items() if k != SINGLE_ARMS[0]}
    faster = [k for k, v in others.items() if inherit < v]
    lines = [
        "## (a) Single mode: weight inheritance vs training from scratch",
        "",
        f"MLP {widths} ({args.single_space['activations'][0]}), MLPTask's training space; "
        f"every arm trains {pop * gens * local} epochs in all: MAGE population {pop} x "
        f"{gens} generations x {local} local epoch(s) (elites {max(1, pop // 4)}, "
        f"mutation_prob {args.mutation_prob:g}, weight noise {args.weight_noise:g}), or "
        f"{pop} RandomSampler trials x {gens * local} epochs. Target: {t:g} validation "
        "accuracy.",
        "",
        *_per_run_table(runs, t, arch=False),
        "",
        *_summary_table(summary, t),
        "",
        f"Result: median GPU time to {t:g} validation accuracy with inherited weights "
        f"{format_seconds(inherit, 2, ' s')}; "
        + "; ".join(f"{k} {format_seconds(v, 2, ' s')}" for k, v in others.items())
        + ". Inherited weights "
        + (f"faster than {' and '.join(faster)}." if faster else "faster than neither."),
    ]
    return lines


def multi_section(runs: list[RunResult], args: argparse.Namespace) -> list[str]:
    """Markdown of part (b), with the goal line."""
    t = args.target
    summary = _summary(runs, MULTI_SAMPLERS, t)
    mage = summary[MULTI_SAMPLERS[0]]["time"]
    others = [summary[name]["time"] for name in MULTI_SAMPLERS[1:]]
    met = math.isfinite(mage) and all(mage < other for other in others)
    versus = ", ".join(
        f"{name} {format_seconds(summary[name]['time'], 2, ' s')}" for name in MULTI_SAMPLERS[1:]
    )
    return [
        "## (b) Multi mode vs TPESampler and RandomSampler at equal GPU time",
        "",
        f"Architecture space {args.multi_space} (TPE and Random search its parameters "
        "`arch_*`), MLPTask's training space; "
        f"{args.budget_s:g} GPU seconds per run. MAGE: population {args.multi_population}, "
        f"elites {max(1, args.multi_population // 4)}, {args.local_epochs} local epoch(s) per "
        f"trial from the parent's weights, complexity weight {args.complexity_weight:g}; TPE "
        f"and Random: {args.trial_epochs} epochs per trial from scratch. Seeds {args.seeds}.",
        "",
        *_per_run_table(runs, t, arch=True),
        "",
        *_summary_table(summary, t),
        "",
        f"Goal: MAGE reaches {t:g} validation accuracy in less GPU time than TPESampler and "
        f"RandomSampler (medians over seeds): **{'met' if met else 'not met'}** (MAGE "
        f"{format_seconds(mage, 2, ' s')}; {versus}).",
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--quick`` fills in the small sizes)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: a CPU smoke test")
    p.add_argument("--out", default=None, help="report path (.md)")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--data-dir", default=None, help="FashionMNIST idx directory")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2")
    p.add_argument("--target", type=float, default=None, help="val accuracy (default 0.89)")
    p.add_argument("--local-epochs", type=int, default=1, help="epochs per MAGE trial")
    p.add_argument("--single-population", type=int, default=None, help="(a) agents (8)")
    p.add_argument("--generations", type=int, default=None, help="(a) generations (10)")
    p.add_argument("--multi-population", type=int, default=None, help="(b) agents (10)")
    p.add_argument("--budget-s", type=float, default=None, help="(b) GPU s per run (60)")
    p.add_argument("--trial-epochs", type=int, default=None, help="(b) TPE/Random epochs (5)")
    p.add_argument("--mutation-prob", type=float, default=0.5)
    p.add_argument("--complexity-weight", type=float, default=0.01, help="(b) MAGE lambda")
    p.add_argument("--weight-noise", type=float, default=1e-3)
    p.add_argument("--skip-single", action="store_true", help="skip part (a)")
    p.add_argument("--skip-multi", action="store_true", help="skip part (b)")
    args = p.parse_args(argv)
    quick = args.quick

    def pick(value: Any, small: Any, full: Any) -> Any:
        return value if value is not None else (small if quick else full)

    args.seeds = pick(args.seeds, [0, 1], [0, 1, 2])
    args.target = pick(args.target, 0.7, 0.89)
    args.single_population = pick(args.single_population, 4, 8)
    args.generations = pick(args.generations, 3, 10)
    args.multi_population = pick(args.multi_population, 4, 10)
    args.budget_s = pick(args.budget_s, 1.5, 60.0)
    args.trial_epochs = pick(args.trial_epochs, 2, 5)
    args.max_train = 1024 if quick else None
    args.max_val = 512 if quick else None
    args.single_space = QUICK_SINGLE_SPACE if quick else SINGLE_SPACE
    args.multi_space = QUICK_MULTI_SPACE if quick else MULTI_SPACE
    for name in ("local_epochs", "single_population", "generations", "multi_population"):
        if getattr(args, name) < (2 if "population" in name else 1):
            p.error(f"--{name.replace('_', '-')} is too small")
    if args.trial_epochs < 1 or not args.budget_s > 0:
        p.error("--trial-epochs must be >= 1 and --budget-s > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report; return the exit status."""
    args = parse_args(argv)
    silence()
    device = resolve_device(args.device)
    if args.quick:
        torch.set_num_threads(1)  # tiny MLPs: threads only add overhead on a shared CPU
    elif device.type != "cuda":
        print("warning: the full benchmark on a CPU takes very long; use --quick", file=sys.stderr)
    out = Path(args.out) if args.out else default_out("mage_gpu", device, args.quick)
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.perf_counter()
    data = load_image_dataset(
        "fashion-mnist", args.data_dir, device, max_train=args.max_train, max_val=args.max_val
    )
    warm_up(data, device)
    sections: list[str] = []
    if not args.skip_single:
        runs = [r for seed in args.seeds for r in run_single(data, device, args, seed)]
        sections.append("\n".join(single_section(runs, args)))
    if not args.skip_multi:
        runs = [r for seed in args.seeds for r in run_multi(data, device, args, seed)]
        sections.append("\n".join(multi_section(runs, args)))
    header = [
        *report_header(
            "MAGESampler GPU benchmark (FashionMNIST MLPs)",
            "mage_gpu.py",
            device,
            started,
            "quick (tiny sizes on a data subset: a smoke test, the figures mean nothing)"
            if args.quick
            else None,
            argv,
        ),
        f"- Data: FashionMNIST from `{data.source}`, {len(data.train_y):,} train / "
        f"{len(data.val_y):,} validation images",
        f"- Total runtime: {time.perf_counter() - t0:.0f} s",
        "- GPU time: wall-clock seconds inside the trials (model building, checkpoint I/O, "
        "training, per-epoch evaluation), summed in the order the trials ran; study wall adds "
        "the sampler's time between trials.",
    ]
    report = "\n".join(header) + "\n\n" + "\n\n".join(sections) + "\n"
    save_report(out, report, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
