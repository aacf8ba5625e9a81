"""One training loop for every model: device-resident data, no per-step host sync.

:func:`train` draws random batches by indexing tensors that already live on the device,
accumulates the training loss on the device, and talks to the host only at evaluation points
(plus a non-blocking divergence probe on CUDA). On CUDA it trains under bf16 autocast (and
evaluates language models so, as nanoGPT does; classifiers are evaluated in fp32); on CPU in
fp32. At every evaluation it reports the validation loss to the Optuna trial and raises
:class:`optuna.TrialPruned` when the pruner says so.

Failures that should end only the current trial raise a :class:`TrainingFailed` subclass:
:class:`TrainingDiverged` (non-finite loss, e.g. ``lr = 1.0``) and :class:`TrialOutOfMemory`
(CUDA out of memory; memory is released before raising). The ready-made tasks in
:mod:`optuna_evo.objectives.tasks` turn them into failed trials and let the study go on; when
calling :func:`train` from your own objective, pass ``catch=(TrainingFailed,)`` to
:meth:`optuna.study.Study.optimize`.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
from dataclasses import dataclass
from dataclasses import field
import gc
import math
import random
import time
from typing import Any

import numpy as np
import optuna
import torch
from torch import nn
from torch.nn import functional as F

from optuna_evo._logging import get_logger
from optuna_evo._validation import MAX_TORCH_SEED
from optuna_evo._validation import MIN_TORCH_SEED
from optuna_evo._validation import check_bool
from optuna_evo._validation import check_choice
from optuna_evo._validation import check_float
from optuna_evo._validation import check_int
from optuna_evo.objectives.data import ClassificationSplits
from optuna_evo.objectives.data import TextSplits
from optuna_evo.objectives.data import resolve_device
from optuna_evo.objectives.models import count_parameters

_logger = get_logger(__name__)

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw")
"""Optimizer names accepted by :class:`TrainConfig`."""

SCHEDULERS: tuple[str | None, ...] = (None, "step", "cosine")
"""Learning-rate schedules accepted by :class:`TrainConfig`."""

TASKS: tuple[str, ...] = ("classification", "lm")
"""Task kinds accepted by :func:`train`."""

_LM_EVAL_SEED = 1234  # Fixed validation batches: every trial is scored on the same text.


class TrainingFailed(RuntimeError):
    """Base class of failures that end only the current trial (divergence, out of memory)."""


class TrainingDiverged(TrainingFailed):
    """The loss became NaN or infinite; training was stopped early.

    Attributes:
        step: Optimizer step at which divergence was detected.
        loss: The offending loss value (``nan`` when only a non-finite flag was seen).
    """

    def __init__(self, message: str, step: int = 0, loss: float = math.nan) -> None:
        super().__init__(message)
        self.step = step
        self.loss = loss


class TrialOutOfMemory(TrainingFailed):
    """The device ran out of memory; the memory held by this run was released."""


@dataclass
class TrainConfig:
    """Hyperparameters and budget of one :func:`train` run.

    At least one of ``epochs``, ``max_steps`` and ``time_budget_s`` must be set; training stops
    at whichever comes first.

    Attributes:
        optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"``. Weight decay applies to every
            parameter for SGD and Adam (PyTorch's convention, as in the seed paper) and only to
            matrices / embeddings for AdamW (nanoGPT's convention).
        lr: Learning rate, ``> 0``.
        momentum: SGD momentum in ``[0, 1)``.
        weight_decay: Weight decay, ``>= 0``.
        betas: Adam / AdamW betas.
        batch_size: Training batch size, ``>= 1``.
        epochs: Passes over the training set (LM: ``len(train) // (batch_size * block_size)``
            steps per epoch).
        max_steps: Maximum optimizer steps.
        time_budget_s: Wall-clock budget in seconds (checked on the host after every step).
        eval_interval: Evaluate every this many steps; ``None`` evaluates once per epoch
            (classification) or every 250 steps (LM). The final step is always evaluated.
        evals_per_epoch: Classification with ``eval_interval=None``: evaluate (and report)
            this many times an epoch instead of once at each epoch's end. The reported step
            counts these slices of an epoch (epoch ``e`` ends at step ``e * evals_per_epoch``),
            so trials with different batch sizes report comparable steps to a pruner. More than
            one gives a pruner a learning curve from a short run.
        eval_batch_size: Evaluation batch size; ``None`` = 2048 for classification and
            ``batch_size`` for LM. An LM evaluation scores ``eval_iters`` batches of this many
            windows, drawn once from a fixed seed: keep it fixed across trials so that their
            validation losses (and a pruner's comparisons) use the same text.
        eval_iters: LM validation batches per evaluation.
        block_size: LM context length; ``None`` takes ``model.config.block_size``.
        scheduler: ``None``, ``"step"`` (StepLR) or ``"cosine"`` (warmup + cosine decay).
        step_gamma: StepLR decay factor (the seed paper: 0.7).
        step_size: Optimizer steps between StepLR decays; ``None`` = one epoch (the seed paper's
            ``step_size=1`` epoch).
        warmup_steps: Linear warmup steps of the cosine schedule.
        min_lr_ratio: Cosine floor as a fraction of ``lr`` (nanoGPT: 0.1).
        grad_clip: Clip the global gradient norm to this value; ``None`` = no clipping.
        seed: Seed of the initial RNG state, batch order and dropout.
        device: ``"cuda"``, ``"cpu"``, ...; ``None`` = CUDA when available.
        amp: bf16 autocast for training (and LM evaluation); ``None`` = on for CUDA, off for
            CPU.
        compile: ``torch.compile`` the model; ``True`` or a mode name such as
            ``"reduce-overhead"``.
        evaluate_test: Evaluate the test split at the end (classification).
        nan_check_interval: Probe the running loss for NaN/inf every this many steps between
            evaluations (asynchronous on CUDA); ``0`` checks only at evaluations.
        stop_at_val_loss: Stop as soon as an evaluation reaches this validation loss.
        restore_best: Put the weights of the evaluation with the lowest validation loss back
            into the model when the run ends (also when it is pruned), so that the model, a
            checkpoint saved from it, the test metrics, the result's ``val_loss``,
            ``val_accuracy`` and ``train_loss`` and the user attrs ``val_accuracy`` and
            ``train_loss`` all belong to that evaluation.
            Costs a copy of the weights (on their device) at every new best evaluation.
        progress: Show a tqdm progress bar of the optimizer steps, with the last validation
            loss (and accuracy); off by default, since a study has its own bar. On CUDA it
            counts the steps queued on the device, which run ahead of those finished between
            two evaluations.
    """

    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = 64
    epochs: int | None = None
    max_steps: int | None = None
    time_budget_s: float | None = None
    eval_interval: int | None = None
    evals_per_epoch: int = 1
    eval_batch_size: int | None = None
    eval_iters: int = 20
    block_size: int | None = None
    scheduler: str | None = None
    step_gamma: float = 0.7
    step_size: int | None = None
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: float | None = None
    seed: int = 0
    device: str | torch.device | None = None
    amp: bool | None = None
    compile: bool | str = False
    evaluate_test: bool = False
    nan_check_interval: int = 100
    stop_at_val_loss: float | None = None
    restore_best: bool = False
    progress: bool = False

    def __post_init__(self) -> None:
        # Store the checked values: numpy scalars / integral floats become Python numbers.
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("scheduler", self.scheduler, SCHEDULERS)
        self.lr = check_float("lr", self.lr, 0, low_open=True)
        self.momentum = check_float("momentum", self.momentum, 0, 1, high_open=True)
        self.weight_decay = check_float("weight_decay", self.weight_decay, 0)
        self.batch_size = check_int("batch_size", self.batch_size, 1)
        self.eval_iters = check_int("eval_iters", self.eval_iters, 1)
        self.evals_per_epoch = check_int("evals_per_epoch", self.evals_per_epoch, 1)
        optional = ("epochs", "max_steps", "eval_interval", "eval_batch_size", "block_size")
        for arg in (*optional, "step_size"):
            setattr(self, arg, check_int(arg, getattr(self, arg), 1, none_ok=True))
        self.warmup_steps = check_int("warmup_steps", self.warmup_steps, 0)
        self.seed = check_int("seed", self.seed, MIN_TORCH_SEED, MAX_TORCH_SEED)
        self.restore_best = check_bool("restore_best", self.restore_best)
        self.progress = check_bool("progress", self.progress)
        self.stop_at_val_loss = check_float(
            "stop_at_val_loss", self.stop_at_val_loss, none_ok=True
        )
        self.nan_check_interval = check_int("nan_check_interval", self.nan_check_interval, 0)
        self.time_budget_s = check_float(
            "time_budget_s", self.time_budget_s, 0, low_open=True, none_ok=True
        )
        if self.epochs is None and self.max_steps is None and self.time_budget_s is None:
            raise ValueError("Set at least one of `epochs`, `max_steps` or `time_budget_s`.")
        self.step_gamma = check_float("step_gamma", self.step_gamma, 0, 1, low_open=True)
        self.min_lr_ratio = check_float("min_lr_ratio", self.min_lr_ratio, 0, 1)
        self.grad_clip = check_float("grad_clip", self.grad_clip, 0, low_open=True, none_ok=True)
        try:
            betas = tuple(self.betas)
        except TypeError:
            betas = ()
        if len(betas) != 2:
            raise ValueError(f"`betas` must be a pair of numbers in [0, 1), got {self.betas!r}.")
        self.betas = (
            check_float("betas[0]", betas[0], 0, 1, high_open=True),
            check_float("betas[1]", betas[1], 0, 1, high_open=True),
        )
        if self.scheduler == "cosine" and self.epochs is None and self.max_steps is None:
            raise ValueError("`scheduler='cosine'` needs `epochs` or `max_steps` as its horizon.")


@dataclass
class EvalRecord:
    """One evaluation point of a run.

    Attributes:
        step: Optimizer steps done.
        report_step: Step passed to ``trial.report``: with per-epoch evaluation the number of
            ``1 / evals_per_epoch`` epoch slices done (with one evaluation an epoch, the epoch
            number), else ``step``. ``None`` for a last evaluation between two slice ends (a
            run stopped by ``max_steps`` or its time budget mid-slice): it counts for the
            result, but is not reported, since other trials' values at that step cover a whole
            slice.
        epoch: Fractional epochs done.
        val_loss: Mean validation loss.
        val_accuracy: Validation accuracy (classification), else ``None``.
        train_loss: Mean training loss since the previous evaluation.
        elapsed_s: Wall-clock seconds since the start, including evaluations and compilation.
        train_s: Seconds spent in training steps only (synchronised at evaluations).
    """

    step: int
    report_step: int | None
    epoch: float
    val_loss: float
    val_accuracy: float | None
    train_loss: float
    elapsed_s: float
    train_s: float


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes:
        val_loss: Validation loss at the last evaluation (with ``restore_best``: at the best).
        best_val_loss: Lowest validation loss over all evaluations.
        val_accuracy: Validation accuracy at the last evaluation (with ``restore_best``: at the
            best), for classification.
        train_loss: Mean training loss over that evaluation's interval.
        steps: Optimizer steps done.
        epochs: Fractional epochs done.
        train_seconds: Wall-clock seconds of the whole run (steps, evaluations, compilation).
        train_only_seconds: Seconds spent in training steps only.
        samples_per_s: Training samples (LM: sequences) per second of training time.
        tokens_per_s: Training tokens per second of training time (LM), else ``None``.
        n_params: Parameter count of the model.
        stopped_by: ``"epochs"``, ``"max_steps"``, ``"time"`` or ``"target"``.
        test_loss: Test loss if ``evaluate_test``, else ``None``.
        test_accuracy: Test accuracy if ``evaluate_test``, else ``None``.
        history: Every evaluation, in order.
    """

    val_loss: float
    best_val_loss: float
    val_accuracy: float | None
    train_loss: float
    steps: int
    epochs: float
    train_seconds: float
    train_only_seconds: float
    samples_per_s: float
    tokens_per_s: float | None
    n_params: int
    stopped_by: str
    test_loss: float | None = None
    test_accuracy: float | None = None
    history: list[EvalRecord] = field(default_factory=list)


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (all devices) global random generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(
    model: nn.Module,
    data: ClassificationSplits | TextSplits,
    config: TrainConfig,
    trial: optuna.trial.BaseTrial | None = None,
    task: str | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` and evaluate it on the validation split.

    The model and data are moved to ``config.device`` (data once; cached loaders already put
    it there). Classification uses cross-entropy on ``(x, y)`` batches; ``"lm"`` draws random
    ``block_size`` windows from the token stream (nanoGPT's ``get_batch``) and predicts the
    next character. With a ``trial``, the validation loss is reported at every evaluation,
    :class:`optuna.TrialPruned` is raised when ``trial.should_prune()``, and the user attrs
    ``n_params``, ``train_seconds``, ``steps``, ``train_loss`` and ``val_accuracy``
    (classification; ``test_accuracy`` too with ``evaluate_test``) or ``tokens_per_s`` (LM)
    are set.

    Args:
        model: The network; it must return logits.
        data: :class:`~optuna_evo.objectives.data.ClassificationSplits` or
            :class:`~optuna_evo.objectives.data.TextSplits`.
        config: The :class:`TrainConfig`.
        trial: Optional trial to report to.
        task: ``"classification"`` or ``"lm"``; ``None`` infers it from the data type.

    Returns:
        The :class:`TrainResult`.

    Raises:
        optuna.TrialPruned: If the trial's pruner stops the run.
        TrainingDiverged: If the loss becomes NaN or infinite.
        TrialOutOfMemory: If the device runs out of memory (after releasing it).
        ValueError: If the data do not fit the task or config.
    """
    task = _infer_task(data, task)
    device = resolve_device(config.device)
    set_seed(config.seed)
    oom_message = ""
    try:
        return _Run(model, data, config, trial, task, device).run()
    except torch.OutOfMemoryError as exc:
        oom_message = (str(exc).strip().splitlines() or ["out of memory"])[0]
    # Outside the except block: the OOM traceback (and the activations its frames hold) is gone.
    model.zero_grad(set_to_none=True)
    release_memory(device)
    raise TrialOutOfMemory(
        f"Out of memory on {device} while training {type(model).__name__} "
        f"({count_parameters(model):,} parameters, batch_size={config.batch_size}): "
        f"{oom_message} Memory was released; only this trial fails. Use a smaller model or "
        "batch size to avoid it."
    )


def release_memory(device: torch.device | str | None = None) -> None:
    """Collect garbage and return cached CUDA memory to the driver."""
    gc.collect()
    if torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda"):
        torch.cuda.empty_cache()


def resolve_amp(amp: bool | None, device: torch.device) -> bool:
    """Whether :func:`train` runs under bf16 autocast: ``amp`` if set, else only on CUDA."""
    return bool(amp) if amp is not None else device.type == "cuda"


def make_optimizer(
    model: nn.Module, config: TrainConfig, device: torch.device | None = None
) -> torch.optim.Optimizer:
    """Build the optimizer named in ``config`` for ``model``'s trainable parameters.

    Uses fused CUDA kernels when ``device`` is CUDA. AdamW decays only tensors with two or
    more dimensions (weights, embeddings), as nanoGPT does.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    extra: dict[str, Any] = {"fused": True} if device is not None and device.type == "cuda" else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            **extra,
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay, **extra
        )
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, **extra)


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    steps_per_epoch: int,
    total_steps: int | None,
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Build the per-step learning-rate schedule named in ``config`` (or ``None``).

    ``"step"`` multiplies the rate by ``step_gamma`` every ``step_size`` steps (default: one
    epoch). ``"cosine"`` warms up linearly for ``warmup_steps`` then decays along a cosine to
    ``min_lr_ratio * lr`` at ``total_steps``.
    """
    if config.scheduler is None:
        return None
    if config.scheduler == "step":
        step_size = config.step_size or steps_per_epoch
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma=config.step_gamma)
    if total_steps is None:
        raise ValueError("`scheduler='cosine'` needs `epochs` or `max_steps` as its horizon.")
    warmup, floor = config.warmup_steps, config.min_lr_ratio

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class _DivergenceProbe:
    """Detects a non-finite running loss without stalling the GPU.

    On CUDA the finiteness flag is copied to pinned host memory asynchronously and read on a
    later probe once its event has completed, so the host never waits. On CPU it is read
    directly (there is no queue to stall).
    """

    def __init__(self, device: torch.device) -> None:
        self._cuda = device.type == "cuda"
        self._event: torch.cuda.Event | None = None
        self._flag = torch.ones((), dtype=torch.bool, pin_memory=self._cuda)

    def diverged(self, running_loss: torch.Tensor) -> bool:
        if not self._cuda:
            return not bool(torch.isfinite(running_loss))
        bad = False
        if self._event is not None and self._event.query():
            bad = not bool(self._flag)
            self._event = None
        if self._event is None:
            self._flag.copy_(torch.isfinite(running_loss), non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        return bad


class _ClassificationBatches:
    """Random batches without replacement: one on-device permutation per epoch."""

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator
    ) -> None:
        self.x, self.y, self.g = x, y, generator
        self.n = len(x)
        self.batch_size = min(batch_size, self.n)
        self.steps_per_epoch = self.n // self.batch_size
        self._perm: torch.Tensor | None = None
        self._pos = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._perm is None or self._pos >= self.steps_per_epoch:
            self._perm = torch.randperm(self.n, generator=self.g, device=self.x.device)
            self._pos = 0
        b = self.batch_size
        idx = self._perm[self._pos * b : (self._pos + 1) * b]
        self._pos += 1
        return self.x[idx], self.y[idx]


class _TextBatches:
    """nanoGPT's ``get_batch``: ``batch_size`` random windows of ``block_size + 1`` tokens."""

    def __init__(
        self, tokens: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator
    ) -> None:
        self.tokens, self.g = tokens, generator
        self.batch_size, self.block_size = batch_size, block_size
        self.steps_per_epoch = max(1, len(tokens) // (batch_size * block_size))
        self._offsets = torch.arange(block_size, device=tokens.device)

    def windows(self, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = starts[:, None] + self._offsets
        return self.tokens[idx], self.tokens[idx + 1]

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        high = len(self.tokens) - self.block_size
        starts = torch.randint(
            high, (self.batch_size,), generator=self.g, device=self.tokens.device
        )
        return self.windows(starts)


class _Run:
    """State of one :func:`train` call (kept in one frame so an OOM releases it all)."""

    def __init__(
        self,
        model: nn.Module,
        data: ClassificationSplits | TextSplits,
        config: TrainConfig,
        trial: optuna.trial.BaseTrial | None,
        task: str,
        device: torch.device,
    ) -> None:
        self.config, self.trial, self.task, self.device = config, trial, task, device
        self.model = model.to(device)
        self.data = data.to(device)
        self.n_params = count_parameters(model)
        if trial is not None:
            trial.set_user_attr("n_params", self.n_params)
        generator = torch.Generator(device=device).manual_seed(config.seed)
        if task == "classification":
            assert isinstance(self.data, ClassificationSplits)
            if len(self.data.train_y) == 0 or len(self.data.val_y) == 0:
                raise ValueError(
                    "`data` must have at least one training and one validation sample."
                )
            self.batches: _ClassificationBatches | _TextBatches = _ClassificationBatches(
                self.data.train_x, self.data.train_y, config.batch_size, generator
            )
            self.block_size = 0
        else:
            assert isinstance(self.data, TextSplits)
            self.block_size = self._block_size(model)
            for split in ("train", "val"):
                n = len(getattr(self.data, split))
                if n < self.block_size + 2:
                    raise ValueError(
                        f"`block_size` must be at most len(data.{split}) - 2 = {n - 2}, "
                        f"got {self.block_size}."
                    )
            self.batches = _TextBatches(
                self.data.train, config.batch_size, self.block_size, generator
            )
            eval_batch = config.eval_batch_size or config.batch_size
            self.val_batches = _TextBatches(self.data.val, eval_batch, self.block_size, generator)
            eval_gen = torch.Generator().manual_seed(_LM_EVAL_SEED)
            high = len(self.data.val) - self.block_size
            self.eval_starts = torch.randint(
                high, (config.eval_iters, eval_batch), generator=eval_gen
            ).to(device)
        self.steps_per_epoch = self.batches.steps_per_epoch
        limits = [config.max_steps] if config.max_steps is not None else []
        if config.epochs is not None:
            limits.append(config.epochs * self.steps_per_epoch)
        self.total_steps = min(limits) if limits else None
        # Per-epoch evaluation reports epoch slices (independent of the batch size, so
        # trials stay comparable); any other cadence reports the optimizer step.
        self.slices_per_epoch = (
            config.evals_per_epoch
            if config.eval_interval is None and task == "classification"
            else None
        )
        self.eval_interval = config.eval_interval or 250
        self.optimizer = make_optimizer(model, config, device)
        self.scheduler = make_scheduler(
            self.optimizer, config, self.steps_per_epoch, self.total_steps
        )
        use_amp = resolve_amp(config.amp, device)
        self.autocast: Callable[[], contextlib.AbstractContextManager[Any]] = (
            (lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16))
            if use_amp
            else contextlib.nullcontext
        )
        if config.compile:
            mode = config.compile if isinstance(config.compile, str) else None
            self.forward: nn.Module | Callable[..., torch.Tensor] = torch.compile(model, mode=mode)
        else:
            self.forward = model

    def _block_size(self, model: nn.Module) -> int:
        if self.config.block_size is not None:
            return self.config.block_size
        block_size = getattr(getattr(model, "config", None), "block_size", None)
        if not isinstance(block_size, int):
            raise ValueError("Set TrainConfig.block_size (the model has no config.block_size).")
        return block_size

    def _loss(
        self, logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean"
    ) -> torch.Tensor:
        return F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction=reduction
        )

    def _mark_step(self) -> None:
        # CUDA-graph trees (compile mode "reduce-overhead") may reuse a graph's output memory
        # once a new step is marked; every output of the previous call is consumed by then.
        if self.config.compile:
            torch.compiler.cudagraph_mark_step_begin()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @torch.no_grad()
    def evaluate(self, split: str = "val") -> tuple[float, float | None]:
        """Mean loss (and accuracy for classification) on a split; one host sync."""
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        if self.task == "lm":
            assert isinstance(self.data, TextSplits)
            for starts in self.eval_starts:
                self._mark_step()
                x, y = self.val_batches.windows(starts)
                with self.autocast():
                    loss_sum += self._loss(self.forward(x), y).float()
            self.model.train()
            return loss_sum.item() / len(self.eval_starts), None
        assert isinstance(self.data, ClassificationSplits)
        xs, ys = (
            (self.data.val_x, self.data.val_y)
            if split == "val"
            else (self.data.test_x, self.data.test_y)
        )
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        bs = self.config.eval_batch_size or 2048
        for i in range(0, len(ys), bs):
            self._mark_step()
            x, y = xs[i : i + bs], ys[i : i + bs]
            # No autocast: argmax over bf16 logits would break near-ties, and the accuracies
            # are compared with fp32 runs. Evaluation is a small share of the time.
            logits = self.forward(x)
            loss_sum += self._loss(logits.float(), y, reduction="sum")
            correct += (logits.argmax(dim=-1) == y).sum()
        self.model.train()
        loss, n_correct = torch.stack([loss_sum.double(), correct.double()]).tolist()
        return loss / len(ys), n_correct / len(ys)

    def _diverged(self, step: int, loss: float, where: str) -> TrainingDiverged:
        return TrainingDiverged(
            f"Training diverged: the {where} loss became {loss} by step {step} "
            f"(optimizer={self.config.optimizer!r}, lr={self.config.lr:g}). Stopped early; this "
            "trial fails. Lower the learning rate or set grad_clip.",
            step=step,
            loss=loss,
        )

    def _copy_weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _restore(self, state: dict[str, torch.Tensor] | None) -> None:
        assert state is not None  # copied when training moved past the best evaluation
        self.model.load_state_dict(state)

    def _report_step(self, step: int, last: bool) -> int | None:
        """The step to report after optimizer step ``step``; ``None`` if none is due.

        Per-epoch evaluation is due when ``step`` completes a slice of ``1 / evals_per_epoch``
        epoch (at ``ceil(k * steps_per_epoch / evals_per_epoch)``, so epoch ends always are);
        the ``last`` step of a run is evaluated anyway, but reported only on a slice's end.
        """
        if self.slices_per_epoch is None:
            return step if last or step % self.eval_interval == 0 else None
        done = step * self.slices_per_epoch // self.steps_per_epoch
        before = (step - 1) * self.slices_per_epoch // self.steps_per_epoch
        return done if done > before else None

    def run(self) -> TrainResult:
        bar = None
        if self.config.progress:
            from tqdm.auto import tqdm

            # leave=None: kept on screen only when it is the outermost bar (not in a study's).
            bar = tqdm(
                total=self.total_steps, desc=type(self.model).__name__, unit="step", leave=None
            )
        try:
            result = self._run(bar)
            if bar is not None:
                # A run that stopped early as planned (target, time budget) is complete: a
                # notebook bar would turn red at close below its total.
                bar.total = bar.n
                bar.refresh()
            return result
        finally:  # also when pruned, diverged or out of memory
            if bar is not None:
                bar.close()

    def _run(self, bar: Any) -> TrainResult:
        config, trial = self.config, self.trial
        self.model.train()
        probe = _DivergenceProbe(self.device)
        running = torch.zeros((), device=self.device)
        n_running = 0
        history: list[EvalRecord] = []
        step = 0
        train_only = 0.0
        stopped_by = ""
        # restore_best: a copy of the best evaluation's weights once training moved past them.
        best_val, best_state, model_is_best = math.inf, None, True
        t_start = t_mark = time.perf_counter()
        while not stopped_by:
            self._mark_step()
            x, y = self.batches.next()
            with self.autocast():
                loss = self._loss(self.forward(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            running += loss.detach().float()
            n_running += 1
            step += 1
            if bar is not None:
                bar.update()  # host-side only: no device sync

            if self.total_steps is not None and step >= self.total_steps:
                hit_max_steps = config.max_steps is not None and step >= config.max_steps
                stopped_by = "max_steps" if hit_max_steps else "epochs"
            elif config.time_budget_s is not None:
                if time.perf_counter() - t_start >= config.time_budget_s:
                    stopped_by = "time"
            report_step = self._report_step(step, last=bool(stopped_by))
            if not stopped_by and report_step is None:
                if config.nan_check_interval and step % config.nan_check_interval == 0:
                    if probe.diverged(running):
                        raise self._diverged(step, math.nan, "training")
                continue

            # Evaluation point: the only place the host waits for the device.
            self._sync()
            train_only += time.perf_counter() - t_mark
            train_loss = running.item() / n_running
            if not math.isfinite(train_loss):
                raise self._diverged(step, train_loss, "training")
            val_loss, val_acc = self.evaluate()
            if not math.isfinite(val_loss):
                raise self._diverged(step, val_loss, "validation")
            record = EvalRecord(
                step=step,
                report_step=report_step,
                epoch=step / self.steps_per_epoch,
                val_loss=val_loss,
                val_accuracy=val_acc,
                train_loss=train_loss,
                elapsed_s=time.perf_counter() - t_start,
                train_s=train_only,
            )
            history.append(record)
            if bar is not None:
                shown = {"val_loss": f"{val_loss:.4f}"}
                if val_acc is not None:
                    shown["val_acc"] = f"{val_acc:.4f}"
                bar.set_postfix(shown)
            running.zero_()
            n_running = 0
            if config.restore_best:
                model_is_best = val_loss < best_val
                if model_is_best:
                    best_val = val_loss
                    # The run's last evaluation needs no copy: the model keeps its weights.
                    best_state = None if stopped_by else self._copy_weights()
            if trial is not None and report_step is not None:
                trial.report(val_loss, report_step)
                if trial.should_prune():
                    kept = record
                    if not model_is_best:
                        self._restore(best_state)
                        kept = min(history, key=lambda r: r.val_loss)
                    self._set_user_attrs(kept, step, time.perf_counter() - t_start, train_only)
                    raise optuna.TrialPruned(
                        f"Pruned at step {report_step} with validation loss {val_loss:.4f}."
                    )
            if (
                not stopped_by
                and config.stop_at_val_loss is not None
                and val_loss <= config.stop_at_val_loss
            ):
                stopped_by = "target"
            t_mark = time.perf_counter()

        train_seconds = time.perf_counter() - t_start
        if not model_is_best:
            self._restore(best_state)
        # The evaluation whose weights the model holds now.
        last = min(history, key=lambda r: r.val_loss) if config.restore_best else history[-1]
        test_loss = test_acc = None
        if config.evaluate_test and self.task == "classification":
            assert isinstance(self.data, ClassificationSplits)
            if len(self.data.test_y):
                test_loss, test_acc = self.evaluate("test")
        samples = step * self.batches.batch_size
        result = TrainResult(
            val_loss=last.val_loss,
            best_val_loss=min(r.val_loss for r in history),
            val_accuracy=last.val_accuracy,
            train_loss=last.train_loss,
            steps=step,
            epochs=step / self.steps_per_epoch,
            train_seconds=train_seconds,
            train_only_seconds=train_only,
            samples_per_s=samples / max(train_only, 1e-9),
            tokens_per_s=(
                samples * self.block_size / max(train_only, 1e-9) if self.task == "lm" else None
            ),
            n_params=self.n_params,
            stopped_by=stopped_by,
            test_loss=test_loss,
            test_accuracy=test_acc,
            history=history,
        )
        self._set_user_attrs(last, step, train_seconds, train_only, result.test_accuracy)
        return result

    def _set_user_attrs(
        self,
        record: EvalRecord,
        step: int,
        train_seconds: float,
        train_only: float,
        test_accuracy: float | None = None,
    ) -> None:
        if self.trial is None:
            return
        attrs: dict[str, Any] = {
            "train_seconds": train_seconds,
            "steps": step,
            "train_loss": record.train_loss,
        }
        if record.val_accuracy is not None:
            attrs["val_accuracy"] = record.val_accuracy
        if self.task == "lm":
            tokens = step * self.batches.batch_size * self.block_size
            attrs["tokens_per_s"] = tokens / max(train_only, 1e-9)
        if test_accuracy is not None:
            attrs["test_accuracy"] = test_accuracy
        for key, value in attrs.items():
            self.trial.set_user_attr(key, value)


def _infer_task(data: ClassificationSplits | TextSplits, task: str | None) -> str:
    inferred = "lm" if isinstance(data, TextSplits) else "classification"
    if not isinstance(data, (ClassificationSplits, TextSplits)):
        raise ValueError(
            f"`data` must be ClassificationSplits or TextSplits, got {type(data).__name__}."
        )
    if task is None:
        return inferred
    check_choice("task", task, TASKS)
    if task != inferred:
        raise ValueError(
            f"`task` must be {inferred!r} for data of type {type(data).__name__}, got {task!r}."
        )
    return task
