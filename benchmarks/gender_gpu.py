"""GPU benchmark of :class:`~optuna_evo.GenderSampler` and LearningCurvePruner (issue 5).

Part 1, **the gender paper's Table 1 on shakespeare_char.** Four runs on tiny shakespeare,
each with the same fixed GPU budget (``--budget-s`` seconds of training, default 300):

* ``baseline``: nanoGPT's ``shakespeare_char`` configuration (6 layers, 6 heads, 384 wide,
  block 256, dropout 0.2, batch 64, AdamW lr 1e-3 with betas 0.9 / 0.99 and weight decay 0.1,
  100 warmup steps, cosine decay to 1e-4 over ``--baseline-steps`` = 5000 steps, gradient
  clipping 1.0), one run (it stops early if the budget runs out first);
* ``male-only``: :class:`~optuna_evo.GenderSampler` with ``speed_weight=1`` (parents ranked
  by early speed alone) and no pruner, so no female predictor is ever used (GenderSampler
  consults females only to predict the final value of PRUNED trials);
* ``female-only``: predictor-driven pruning without evolution of the configurations:
  :class:`~optuna.samplers.RandomSampler` with
  :class:`~optuna_evo.LearningCurvePruner` (which, outside a GenderSampler study, predicts
  with the fixed default female);
* ``combined``: GenderSampler (default ``speed_weight``) with LearningCurvePruner, which
  then predicts with the best evolved female.

The search runs use :class:`~optuna_evo.objectives.CharLM` (its paper space: 2-6 layers,
2/4/6 heads, 64-384 wide, lr 1e-4 to 3e-3, batch 16/32/64, dropout 0-0.3; nanoGPT's optimizer
settings) with ``--trial-steps`` steps per trial and a validation loss every
``--eval-interval`` steps. Every run evaluates on the same fixed validation windows. Columns:
final training loss and best validation loss (of the run's best trial), total training time,
training tokens per second (all trials' tokens over their training-step time), the GPU time
until the run first reaches the baseline's best validation loss, and the study's wall time.
Goal: the combined run reaches the baseline's best validation loss in at most half the
baseline's GPU time.

Part 2, **FashionMNIST CNN with and without LearningCurvePruner.**
:class:`~optuna_evo.objectives.FashionMNISTCNN` (the seed paper's SGD space),
``--cnn-trials`` trials of ``--cnn-epochs`` epochs drawn by a seeded RandomSampler, once with
no pruner and once with LearningCurvePruner; the same seed draws the same configurations in
both, so the difference is what the pruner stopped. Reported per seed: the GPU time until a
trial finished with ``--cnn-target`` validation accuracy (trial granularity: the task reports
accuracy only at the end of a trial), the GPU time of all trials, and the best accuracy.

"GPU time" is the wall-clock time inside the trials on the benchmark device (model building,
training, evaluations), summed in the order the trials ran (one worker); a time to target adds
the time into the reaching trial at the evaluation that reached it. The samplers' own time
between trials is in the study wall time. ``torch.compile`` is off unless ``--compile`` (then
it applies to every trial, the baseline included).

Writes a markdown report naming the device, date, command and versions (default
``benchmarks/results/gender_gpu_<device>_<date>.md``). ``--quick`` uses 1-2 layer, 32-64 wide
models with a 32-character context, short budgets and a 1,024-image FashionMNIST subset with a
small CNN, so the script runs on a CPU in seconds; its figures mean nothing. ``--cpu`` is a
reduced run for a CPU that is measured and reported (26 minutes on 2 cores):
:class:`~optuna_evo.objectives.SmallCharLM`'s space with a 64-character context and a baseline
of its largest model (:data:`CPU_BASELINE_PARAMS`, nanoGPT's 5,000 steps), 240 s per LM run,
2,000 steps per search trial as on the GPU; a 16/32/64-channel CNN on 10,000 / 2,000 images,
12 trials of 6 epochs, target 0.85 (default ``benchmarks/results/gender_cpu_CPU_<date>.md``).

Usage::

    python benchmarks/gender_gpu.py                                  # full run on the GPU
    python benchmarks/gender_gpu.py --quick --out /tmp/gender_gpu.md   # CPU smoke run
    python benchmarks/gender_gpu.py --cpu                            # reduced CPU run
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
import datetime
import math
from pathlib import Path
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Run from a plain checkout.

import optuna  # noqa: E402
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
from optuna_evo.objectives import CharLM  # noqa: E402
from optuna_evo.objectives import ClassificationSplits  # noqa: E402
from optuna_evo.objectives import FashionMNISTCNN  # noqa: E402
from optuna_evo.objectives import SmallCharLM  # noqa: E402
from optuna_evo.objectives import TextSplits  # noqa: E402
from optuna_evo.objectives.data import resolve_device  # noqa: E402

NANOGPT_PARAMS: dict[str, Any] = {
    "n_layer": 6,
    "n_head": 6,
    "n_embd": 384,
    "lr": 1e-3,
    "batch_size": 64,
    "dropout": 0.2,
}
"""nanoGPT's ``config/train_shakespeare_char.py`` in CharLM's parameters."""

QUICK_BASELINE_PARAMS: dict[str, Any] = {
    "n_layer": 2,
    "n_head": 2,
    "n_embd": 32,
    "lr": 1e-2,
    "batch_size": 16,
    "dropout": 0.2,
}
"""``--quick`` stand-in for :data:`NANOGPT_PARAMS`."""

CPU_BASELINE_PARAMS: dict[str, Any] = {
    "n_layer": 2,
    "n_head": 4,
    "n_embd": 64,
    "lr": 1e-3,
    "batch_size": 16,
    "dropout": 0.2,
}
"""``--cpu`` stand-in for :data:`NANOGPT_PARAMS`: nanoGPT's lr and dropout on the largest
model of :class:`~optuna_evo.objectives.SmallCharLM`'s space."""

MODES: tuple[str, str] = (
    "quick (tiny models on data subsets: a smoke test, the figures mean nothing)",
    "cpu (reduced: SmallCharLM's space with a 64-character context and a 2-layer, 64-wide "
    "baseline; a small CNN on a FashionMNIST subset; 'GPU time' is time on the CPU). The "
    "figures describe this reduced CPU run, not the GPU goal",
)
"""The report's mode line for ``--quick`` and ``--cpu`` (a full run has none)."""

LM_RUNS: tuple[str, ...] = ("baseline", "male-only", "female-only", "combined")
"""Part 1 rows, in report order."""

CNN_ARMS: tuple[str, ...] = ("no pruner", "LearningCurvePruner")
"""Part 2 rows per seed, in report order."""


class TimedTrial:
    """Wraps a running :class:`optuna.Trial` and records when each value is reported.

    Everything but :meth:`report` is passed through to the wrapped trial, so a ready-made task
    (which calls ``suggest_*``, ``report``, ``should_prune`` and ``set_user_attr``) runs on it
    unchanged.

    Args:
        trial: The running trial.
        start: ``time.perf_counter()`` at the start of the trial.
    """

    def __init__(self, trial: optuna.Trial, start: float) -> None:
        self._trial = trial
        self._start = start
        self.reports: list[list[float]] = []
        """``[step, value, seconds since start]`` per report."""

    def report(self, value: float, step: int) -> None:
        """Record the time, then report to the wrapped trial."""
        self.reports.append([float(step), float(value), time.perf_counter() - self._start])
        self._trial.report(value, step)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)


@dataclass
class TimedObjective:
    """Runs a task on a :class:`TimedTrial`; books the trial's time on an optional budget.

    Sets the user attrs ``gpu_seconds`` (wall time of the trial) and ``reports`` (see
    :attr:`TimedTrial.reports`), also for pruned and failed trials. With a budget, the task's
    ``time_budget_s`` is set to the budget's remaining seconds before every trial.

    Attributes:
        task: A ready-made task (:class:`~optuna_evo.objectives.CharLM`,
            :class:`~optuna_evo.objectives.FashionMNISTCNN`).
        budget: Optional GPU budget of the run.
    """

    task: CharLM | FashionMNISTCNN
    budget: GPUBudget | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        """Run one trial of the task."""
        start = time.perf_counter()
        timed = TimedTrial(trial, start)
        if self.budget is not None:
            self.task.time_budget_s = max(self.budget.remaining(), 1e-3)
        try:
            return self.task(timed)  # type: ignore[arg-type]
        finally:
            seconds = time.perf_counter() - start
            trial.set_user_attr("gpu_seconds", seconds)
            trial.set_user_attr("reports", timed.reports)
            if self.budget is not None:
                self.budget.spend(seconds)


@dataclass
class TrialRecord:
    """What the report needs of one finished trial."""

    state: TrialState
    gpu_s: float
    reports: list[list[float]]
    train_loss: float | None
    val_accuracy: float | None
    tokens: float | None
    train_only_s: float | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """The trials of one study, in the order they ran.

    Attributes:
        label: Run name.
        seed: The run's seed.
        wall_s: Wall time of ``study.optimize`` (trials and sampler).
        trials: One :class:`TrialRecord` per finished trial.
    """

    label: str
    seed: int
    wall_s: float
    trials: list[TrialRecord] = field(default_factory=list)

    @classmethod
    def from_study(
        cls, label: str, seed: int, study: optuna.Study, wall_s: float, block_size: int = 0
    ) -> RunResult:
        """Collect the finished trials of ``study`` (``block_size`` > 0 for language models)."""
        run = cls(label, seed, wall_s)
        for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
            if t.state == TrialState.RUNNING:
                continue
            attrs = t.user_attrs
            tokens = train_only = None
            if block_size and "tokens_per_s" in attrs and "steps" in attrs:
                tokens = float(attrs["steps"]) * float(t.params["batch_size"]) * block_size
                train_only = tokens / max(float(attrs["tokens_per_s"]), 1e-12)
            run.trials.append(
                TrialRecord(
                    state=t.state,
                    gpu_s=float(attrs.get("gpu_seconds", 0.0)),
                    reports=[list(r) for r in attrs.get("reports", [])],
                    train_loss=attrs.get("train_loss"),
                    val_accuracy=attrs.get("val_accuracy"),
                    tokens=tokens,
                    train_only_s=train_only,
                    params=dict(t.params),
                )
            )
        return run

    def count(self, state: TrialState) -> int:
        """Trials in ``state``."""
        return sum(t.state == state for t in self.trials)

    @property
    def states(self) -> str:
        """``complete/pruned/failed`` trial counts."""
        return "/".join(
            str(self.count(s)) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        )

    @property
    def gpu_s(self) -> float:
        """GPU seconds used by all trials."""
        return sum(t.gpu_s for t in self.trials)

    @property
    def n_reports(self) -> int:
        """Validation evaluations over all trials (epochs for the CNN)."""
        return sum(len(t.reports) for t in self.trials)

    def best_trial(self) -> TrialRecord | None:
        """The trial with the lowest reported validation loss."""
        scored = [
            (min(r[1] for r in t.reports), i) for i, t in enumerate(self.trials) if t.reports
        ]
        scored = [s for s in scored if math.isfinite(s[0])]
        return self.trials[min(scored)[1]] if scored else None

    @property
    def best_val_loss(self) -> float:
        """Lowest validation loss any evaluation reached (``nan`` if none)."""
        best = self.best_trial()
        return min(r[1] for r in best.reports) if best else math.nan

    def time_of_best(self) -> float:
        """GPU seconds until the evaluation that gave :attr:`best_val_loss`."""
        return self.time_to_loss(self.best_val_loss)

    def time_to_loss(self, target: float) -> float:
        """GPU seconds until an evaluation first reached ``target``; ``inf`` if none did."""
        before = 0.0
        for t in self.trials:
            for _, value, at in t.reports:
                if value <= target:
                    return before + at
            before += t.gpu_s
        return math.inf

    def time_to_accuracy(self, target: float) -> float:
        """GPU seconds until a COMPLETE trial ended with ``target`` validation accuracy."""
        before = 0.0
        for t in self.trials:
            before += t.gpu_s
            if t.state == TrialState.COMPLETE and (t.val_accuracy or 0.0) >= target:
                return before
        return math.inf

    @property
    def best_accuracy(self) -> float:
        """Best final validation accuracy of a COMPLETE trial (0 if none)."""
        done = [t.val_accuracy or 0.0 for t in self.trials if t.state == TrialState.COMPLETE]
        return max(done, default=0.0)

    def tokens_per_s(self) -> float:
        """All trials' training tokens over their training-step seconds (``nan`` if none)."""
        rows = [(t.tokens, t.train_only_s) for t in self.trials if t.tokens and t.train_only_s]
        if not rows:
            return math.nan
        return sum(r[0] for r in rows) / sum(r[1] for r in rows)


def _optimize(
    label: str,
    seed: int,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    objective: TimedObjective,
    n_trials: int | None = None,
    enqueue: dict[str, Any] | None = None,
    block_size: int = 0,
) -> RunResult:
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)
    if enqueue is not None:
        study.enqueue_trial(enqueue)
    start = time.perf_counter()
    study.optimize(objective, n_trials=n_trials, **budget_kwargs(objective.budget))
    run = RunResult.from_study(label, seed, study, time.perf_counter() - start, block_size)
    print(
        f"{label} seed {seed}: trials {run.states}, best val loss {run.best_val_loss:.4f}, "
        f"{run.gpu_s:.1f} GPU s, wall {run.wall_s:.1f} s",
        flush=True,
    )
    return run


# --- part 1: shakespeare_char ----------------------------------------------------------------


def _lm_task(args: argparse.Namespace, max_steps: int, eval_interval: int) -> CharLM:
    return args.lm_class(
        args.text_path,
        args.device,
        max_steps=max_steps,
        eval_interval=eval_interval,
        eval_iters=args.eval_iters,
        block_size=args.block_size,
        seed=args.seed,
        compile=args.compile,
    )


def _lm_pruner(args: argparse.Namespace) -> optuna_evo.LearningCurvePruner:
    return optuna_evo.LearningCurvePruner(
        min_steps=args.pruner_min_steps,
        min_finished_trials=args.pruner_min_finished,
        n_best=args.pruner_n_best,
    )


def _gender(args: argparse.Namespace, speed_weight: float | None) -> optuna_evo.GenderSampler:
    extra: dict[str, Any] = {} if speed_weight is None else {"speed_weight": speed_weight}
    return optuna_evo.GenderSampler(
        population_size=args.population,
        n_top_males=args.n_top,
        n_top_females=args.n_top,
        early_steps=args.early_steps,
        seed=args.seed,
        **extra,
    )


def run_lm(args: argparse.Namespace) -> list[RunResult]:
    """Part 1: the four runs of :data:`LM_RUNS`, each with ``args.budget_s`` GPU seconds."""
    seed, bs = args.seed, args.block_size
    baseline_task = _lm_task(args, args.baseline_steps, args.baseline_eval_interval)
    _warm_up(lambda: _lm_task(args, 2, 1))
    random = optuna.samplers.RandomSampler
    nop = optuna.pruners.NopPruner
    runs = [
        _optimize(
            LM_RUNS[0],
            seed,
            random(seed=seed),
            nop(),
            TimedObjective(baseline_task, GPUBudget(args.budget_s)),
            n_trials=1,
            enqueue=args.baseline_params,
            block_size=bs,
        )
    ]
    arms: list[tuple[str, optuna.samplers.BaseSampler, optuna.pruners.BasePruner]] = [
        (LM_RUNS[1], _gender(args, 1.0), nop()),
        (LM_RUNS[2], random(seed=seed), _lm_pruner(args)),
        (LM_RUNS[3], _gender(args, None), _lm_pruner(args)),
    ]
    for label, sampler, pruner in arms:
        task = _lm_task(args, args.trial_steps, args.eval_interval)
        objective = TimedObjective(task, GPUBudget(args.budget_s))
        runs.append(_optimize(label, seed, sampler, pruner, objective, block_size=bs))
    return runs


def _warm_up(make_task: Callable[[], CharLM | FashionMNISTCNN]) -> None:
    """One short untimed trial (CUDA context, kernels, data loading) so no run pays for it."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(TimedObjective(make_task()), n_trials=1)


def _loss(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def lm_section(runs: list[RunResult], args: argparse.Namespace) -> list[str]:
    """Markdown of part 1, with the goal line."""
    baseline = runs[0]
    target = baseline.best_val_loss
    budget_note = (
        f"{args.trial_steps} steps per trial (validation every {args.eval_interval} steps, "
        f"{args.eval_iters} batches of {CharLM.EVAL_BATCH_SIZE} windows)"
    )
    params = ", ".join(f"{k}={v:g}" for k, v in args.baseline_params.items())
    scaled = "" if args.baseline_params is NANOGPT_PARAMS else ", scaled down to a small model"
    lines = [
        "## Part 1: Table 1 on shakespeare_char",
        "",
        f"Fixed GPU budget: {args.budget_s:g} s per run; block size {args.block_size}; "
        f"compile: {args.compile or 'off'}; seed {args.seed}.",
        "",
        f"- baseline: nanoGPT's shakespeare_char configuration{scaled} ({params}), "
        f"{args.baseline_steps} steps with {min(100, args.baseline_steps // 10)} warmup steps "
        "and cosine decay to lr/10 over them, validation every "
        f"{args.baseline_eval_interval} steps; stopped by the budget if it runs out first.",
        f"- male-only: GenderSampler(population_size={args.population}, "
        f"n_top_males={args.n_top}, early_steps={args.early_steps}, speed_weight=1), no "
        f"pruner; {budget_note}.",
        f"- female-only: RandomSampler + LearningCurvePruner(min_steps={args.pruner_min_steps}, "
        f"min_finished_trials={args.pruner_min_finished}, n_best={args.pruner_n_best}) with "
        "its default (fixed) female predictor; trials as for male-only.",
        "- combined: GenderSampler as male-only but with its default speed_weight "
        "(ranking by final value and early speed), + the same LearningCurvePruner, which "
        "predicts with the best evolved female; trials as for male-only.",
        "",
        "Best val loss and final train loss are those of the run's best trial (lowest "
        "validation loss of any evaluation); trials are complete/pruned/failed.",
        "",
        "| Run | Trials | Final train loss | Best val loss | Total train time (s) | Tokens/s "
        "| GPU time to baseline's best val loss (s) | Study wall (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        best = run.best_trial()
        lines.append(
            f"| {run.label} | {run.states} | {_loss(best.train_loss if best else None)} | "
            f"{_loss(run.best_val_loss)} | {run.gpu_s:.1f} | {run.tokens_per_s():,.0f} | "
            f"{format_seconds(run.time_to_loss(target), 1)} | {run.wall_s:.1f} |"
        )
    combined = runs[LM_RUNS.index("combined")].time_to_loss(target)
    half = baseline.gpu_s / 2
    met = math.isfinite(combined) and combined <= half
    lines += [
        "",
        f"The baseline reached its best val loss {_loss(target)} after "
        f"{format_seconds(baseline.time_of_best(), 1, ' s')} of its {baseline.gpu_s:.1f} s.",
        "",
        f"Goal: the combined run reaches the baseline's best val loss ({_loss(target)}) in at "
        f"most half the baseline's GPU time (<= {half:.1f} s): **{'met' if met else 'not met'}** "
        f"(combined: {format_seconds(combined, 1, ' s')}).",
    ]
    return lines


# --- part 2: FashionMNIST CNN ----------------------------------------------------------------


def _cnn_task(args: argparse.Namespace, epochs: int, seed: int) -> FashionMNISTCNN:
    return FashionMNISTCNN(
        args.data_dir,
        args.device,
        epochs=epochs,
        max_train=args.max_train,
        max_val=args.max_val,
        seed=seed,
        compile=args.compile,
        **args.cnn_widths,
    )


def run_cnn(args: argparse.Namespace) -> list[RunResult]:
    """Part 2: every seed of ``args.cnn_seeds`` without and with LearningCurvePruner."""
    _warm_up(lambda: _cnn_task(args, 1, 0))
    runs = []
    for seed in args.cnn_seeds:
        pruners: list[optuna.pruners.BasePruner] = [
            optuna.pruners.NopPruner(),
            optuna_evo.LearningCurvePruner(
                min_steps=args.cnn_pruner_min_steps,
                min_finished_trials=args.pruner_min_finished,
                n_best=args.pruner_n_best,
            ),
        ]
        for label, pruner in zip(CNN_ARMS, pruners):
            objective = TimedObjective(_cnn_task(args, args.cnn_epochs, seed))
            sampler = optuna.samplers.RandomSampler(seed=seed)
            runs.append(_optimize(label, seed, sampler, pruner, objective, args.cnn_trials))
    return runs


def cnn_section(runs: list[RunResult], args: argparse.Namespace) -> list[str]:
    """Markdown of part 2."""
    t = args.cnn_target
    widths = args.cnn_widths or {"c1": 32, "c2": 64, "hidden": 128}
    lines = [
        "## Part 2: FashionMNIST CNN with and without LearningCurvePruner",
        "",
        f"FashionMNISTCNN ({', '.join(f'{k}={v}' for k, v in widths.items())}; SGD lr / "
        f"momentum / weight decay from the seed paper's space), {args.cnn_trials} "
        f"RandomSampler trials of {args.cnn_epochs} epochs per run, seeds {args.cnn_seeds}; "
        f"LearningCurvePruner(min_steps={args.cnn_pruner_min_steps}, "
        f"min_finished_trials={args.pruner_min_finished}, n_best={args.pruner_n_best}). Time "
        f"to {t:g}: GPU time until a trial finished with that validation accuracy.",
        "",
        f"| Pruner | Seed | Trials | Epochs trained | Best val accuracy | GPU time to {t:g} (s) "
        "| Total GPU time (s) | Study wall (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.label} | {r.seed} | {r.states} | {r.n_reports} | {r.best_accuracy:.4f} | "
            f"{format_seconds(r.time_to_accuracy(t), 1)} | {r.gpu_s:.1f} | {r.wall_s:.1f} |"
        )
    lines += [
        "",
        f"| Pruner | Median GPU time to {t:g} (s) | Runs reaching {t:g} | Median total GPU "
        "time (s) | Median best val accuracy |",
        "|---|---:|---:|---:|---:|",
    ]
    medians = {}
    for label in CNN_ARMS:
        mine = [r for r in runs if r.label == label]
        times = [r.time_to_accuracy(t) for r in mine]
        medians[label] = (statistics.median(times), statistics.median(r.gpu_s for r in mine))
        lines.append(
            f"| {label} | {format_seconds(medians[label][0], 1)} | "
            f"{sum(math.isfinite(x) for x in times)}/{len(mine)} | {medians[label][1]:.1f} | "
            f"{statistics.median(r.best_accuracy for r in mine):.4f} |"
        )
    (t_off, gpu_off), (t_on, gpu_on) = medians[CNN_ARMS[0]], medians[CNN_ARMS[1]]
    change = 100.0 * (gpu_on / gpu_off - 1.0) if gpu_off > 0 else math.nan
    lines += [
        "",
        f"Result (medians): the same trials took {gpu_on:.1f} s of GPU time with "
        f"LearningCurvePruner and {gpu_off:.1f} s without ({change:+.0f} %); time to {t:g} "
        f"validation accuracy {format_seconds(t_on, 1, ' s')} with it, "
        f"{format_seconds(t_off, 1, ' s')} without.",
    ]
    return lines


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--quick`` fills in the small sizes)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: a CPU smoke test")
    p.add_argument(
        "--cpu",
        action="store_true",
        help="reduced sizes for a measured CPU run (small models, data subset)",
    )
    p.add_argument("--out", default=None, help="report path (.md)")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--text-path", default=None, help="tiny shakespeare input.txt")
    p.add_argument("--data-dir", default=None, help="FashionMNIST idx directory")
    p.add_argument("--seed", type=int, default=0, help="part 1 seed")
    p.add_argument("--compile", action="store_true", help="torch.compile every model")
    p.add_argument("--budget-s", type=float, default=None, help="GPU s per LM run (300)")
    p.add_argument("--baseline-steps", type=int, default=None, help="nanoGPT max_iters (5000)")
    p.add_argument("--trial-steps", type=int, default=None, help="steps per search trial (2000)")
    p.add_argument("--eval-interval", type=int, default=None, help="search trials (100)")
    p.add_argument("--eval-iters", type=int, default=None, help="validation batches (20)")
    p.add_argument("--population", type=int, default=None, help="GenderSampler (6)")
    p.add_argument("--n-top", type=int, default=None, help="top males = top females (2)")
    p.add_argument("--early-steps", type=int, default=None, help="reports seen early (4)")
    p.add_argument("--pruner-min-steps", type=int, default=None, help="LM (4)")
    p.add_argument("--pruner-min-finished", type=int, default=None, help="(4)")
    p.add_argument("--pruner-n-best", type=int, default=None, help="(2)")
    p.add_argument("--cnn-trials", type=int, default=None, help="trials per CNN run (12)")
    p.add_argument("--cnn-epochs", type=int, default=None, help="epochs per CNN trial (8)")
    p.add_argument("--cnn-seeds", type=int, nargs="+", default=None, help="default 0 1")
    p.add_argument("--cnn-target", type=float, default=None, help="val accuracy (0.9)")
    p.add_argument("--cnn-pruner-min-steps", type=int, default=None, help="(3)")
    p.add_argument("--skip-lm", action="store_true", help="skip part 1")
    p.add_argument("--skip-cnn", action="store_true", help="skip part 2")
    args = p.parse_args(argv)
    if args.quick and args.cpu:
        p.error("--quick and --cpu exclude each other")
    size = 0 if args.quick else 1 if args.cpu else 2

    def value(quick: Any, cpu: Any, full: Any) -> Any:
        return (quick, cpu, full)[size]

    def pick(name: str, quick: Any, cpu: Any, full: Any) -> None:
        if getattr(args, name) is None:
            setattr(args, name, value(quick, cpu, full))

    pick("budget_s", 2.0, 240.0, 300.0)
    pick("baseline_steps", 60, 5000, 5000)
    pick("trial_steps", 30, 2000, 2000)
    pick("eval_interval", 3, 100, 100)
    pick("eval_iters", 2, 10, 20)
    pick("population", 4, 6, 6)
    pick("n_top", 2, 2, 2)
    pick("early_steps", 3, 4, 4)
    pick("pruner_min_steps", 3, 4, 4)
    pick("pruner_min_finished", 3, 4, 4)
    pick("pruner_n_best", 2, 2, 2)
    pick("cnn_trials", 5, 12, 12)
    pick("cnn_epochs", 3, 6, 8)
    pick("cnn_seeds", [0], [0, 1], [0, 1])
    pick("cnn_target", 0.6, 0.85, 0.9)
    pick("cnn_pruner_min_steps", 2, 3, 3)
    args.baseline_eval_interval = value(6, 100, 250)  # nanoGPT's eval_interval
    args.block_size = value(32, 64, 256)
    args.lm_class = value(SmallCharLM, SmallCharLM, CharLM)
    args.mode = value(*MODES, None)
    args.baseline_params = value(QUICK_BASELINE_PARAMS, CPU_BASELINE_PARAMS, NANOGPT_PARAMS)
    args.max_train = value(1024, 10_000, None)
    args.max_val = value(512, 2_000, None)
    args.cnn_widths = value(
        {"c1": 8, "c2": 16, "hidden": 32}, {"c1": 16, "c2": 32, "hidden": 64}, {}
    )
    if not args.budget_s > 0:
        p.error("--budget-s must be > 0")
    if args.pruner_n_best > args.pruner_min_finished:
        p.error("--pruner-n-best must be <= --pruner-min-finished")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report; return the exit status."""
    args = parse_args(argv)
    silence()
    device = resolve_device(args.device)
    args.device = device
    if args.quick:
        torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared CPU
    elif device.type != "cuda" and not args.cpu:
        print(
            "warning: the full benchmark on a CPU takes very long; use --cpu or --quick",
            file=sys.stderr,
        )
    name = "gender_cpu" if args.cpu else "gender_gpu"
    out = Path(args.out) if args.out else default_out(name, device, args.quick)
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.perf_counter()
    sections: list[str] = []
    sources: list[str] = []
    if not args.skip_lm:
        runs = run_lm(args)
        text = _lm_task(args, 1, 1).load_data()
        assert isinstance(text, TextSplits)
        sources.append(
            f"tiny shakespeare from `{text.source}`, {len(text.train):,} train / "
            f"{len(text.val):,} validation characters"
        )
        sections.append("\n".join(lm_section(runs, args)))
    if not args.skip_cnn:
        runs = run_cnn(args)
        images = _cnn_task(args, 1, 0).load_data()
        assert isinstance(images, ClassificationSplits)
        sources.append(
            f"FashionMNIST from `{images.source}`, {len(images.train_y):,} train / "
            f"{len(images.val_y):,} validation images"
        )
        sections.append("\n".join(cnn_section(runs, args)))
    header = [
        *report_header(
            "GenderSampler and LearningCurvePruner GPU benchmark",
            "gender_gpu.py",
            device,
            started,
            args.mode,
            argv,
        ),
        *(f"- Data: {s}" for s in sources),
        f"- Total runtime: {time.perf_counter() - t0:.0f} s",
        "- GPU time: wall-clock seconds inside the trials (model building, training, "
        "evaluations), summed in the order the trials ran; study wall adds the samplers' and "
        "pruners' time between trials.",
    ]
    report = "\n".join(header) + "\n\n" + "\n\n".join(sections) + "\n"
    save_report(out, report, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
