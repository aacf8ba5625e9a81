"""Ready-made objectives: a model, a dataset, a search space and a budget per task.

Each task is a callable class: pass an instance to :meth:`optuna.study.Study.optimize`. It
minimises the best validation loss (``task.direction == "minimize"``), reports the validation
loss at every epoch / evaluation interval so pruners work, and seeds each trial with
``seed + trial.number``. The trained model keeps the weights of its best evaluation, and the
trial's user attrs (``val_accuracy``, ``test_accuracy``, ...) describe those weights.

Failed runs: a diverged run (NaN / inf loss) or a CUDA out-of-memory error ends only that
trial. By default (``catch_failures=True``) the task records the reason in the trial's user
attr ``fail_reason``, logs it, and returns ``nan``, which Optuna stores as a failed trial; the
study goes on without any ``catch=`` argument. With ``catch_failures=False`` the
:class:`~optuna_evo.objectives.train.TrainingFailed` exception propagates instead (then pass
``catch=(TrainingFailed,)`` to ``optimize`` to keep the study going).

Weight inheritance: with an ``artifact_store``, every trial starts from its primary parent's
checkpoint (:func:`optuna_evo.checkpoint.load_parent`, with the weight noise the sampler planned)
and saves its trained weights for its own children (:func:`optuna_evo.checkpoint.save`): the
weights of its best evaluation, which the trial's value measures, also when it is pruned. Use it
with :class:`~optuna_evo.MAGESampler`, whose elites and mutants continue their parent's training
on any worker sharing the store; trials without a parent keep their fresh weights, and so does a
trial whose parent's checkpoint is lost or unreadable (user attr ``checkpoint_error``, a warning).

Example:
    .. code-block:: python

        import optuna
        from optuna_evo.objectives import FashionMNISTCNN

        task = FashionMNISTCNN(epochs=3)
        study = optuna.create_study(direction=task.direction, pruner=optuna.pruners.MedianPruner())
        study.optimize(task, n_trials=20)
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import math
import os
from typing import TYPE_CHECKING
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import torch

from optuna_evo import checkpoint
from optuna_evo._logging import get_logger
from optuna_evo._validation import MAX_TORCH_SEED
from optuna_evo._validation import MIN_TORCH_SEED
from optuna_evo._validation import check_choice
from optuna_evo._validation import check_float
from optuna_evo._validation import check_int
from optuna_evo.architecture import ACTIVATIONS
from optuna_evo.architecture import Architecture
from optuna_evo.objectives.data import ClassificationSplits
from optuna_evo.objectives.data import TextSplits
from optuna_evo.objectives.data import load_image_dataset
from optuna_evo.objectives.data import load_tiny_shakespeare
from optuna_evo.objectives.data import make_synthetic
from optuna_evo.objectives.data import resolve_device
from optuna_evo.objectives.models import MLP
from optuna_evo.objectives.models import CharTransformer
from optuna_evo.objectives.models import CharTransformerConfig
from optuna_evo.objectives.models import SeedCNN
from optuna_evo.objectives.train import TrainConfig
from optuna_evo.objectives.train import TrainingFailed
from optuna_evo.objectives.train import release_memory
from optuna_evo.objectives.train import set_seed
from optuna_evo.objectives.train import train

if TYPE_CHECKING:
    from optuna.artifacts._protocol import ArtifactStore

_logger = get_logger(__name__)

MLP_DATASETS: tuple[str, ...] = ("fashion-mnist", "mnist", "synthetic")
"""Datasets :class:`MLPTask` can train on."""

MLP_WIDTHS: tuple[int, ...] = (64, 128, 256, 512)
"""Hidden widths of :func:`default_mlp_architecture`."""

CHAR_LM_HEADS: tuple[int, ...] = (2, 4, 6)
"""Head counts of :class:`CharLM`'s space."""

CHAR_LM_WIDTHS: tuple[int, ...] = (64, 128, 192, 384)
"""Embedding widths of :class:`CharLM`'s space."""


def suggest(trial: optuna.trial.BaseTrial, name: str, distribution: BaseDistribution) -> Any:
    """Suggest ``name`` from an Optuna distribution through the public ``suggest_*`` API."""
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(
            name, distribution.low, distribution.high, log=distribution.log, step=distribution.step
        )
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(
            name, distribution.low, distribution.high, log=distribution.log, step=distribution.step
        )
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    raise ValueError(f"`distribution` must be Float/Int/Categorical, got {distribution!r}.")


def default_mlp_architecture(
    trial: optuna.trial.BaseTrial, n_inputs: int, n_outputs: int
) -> Architecture:
    """Default define-by-run MLP space of :class:`MLPTask`.

    Suggests ``n_layers`` (int 1-3), ``width_0 .. width_{n_layers-1}`` (categorical
    :data:`MLP_WIDTHS`), one ``activation`` for all layers (categorical
    :data:`~optuna_evo.architecture.ACTIVATIONS`) and ``dropout`` (float 0-0.5).

    Args:
        trial: The trial.
        n_inputs: Input width.
        n_outputs: Number of classes.

    Returns:
        The suggested :class:`~optuna_evo.architecture.Architecture`.
    """
    n_layers = trial.suggest_int("n_layers", 1, 3)
    widths = [trial.suggest_categorical(f"width_{k}", MLP_WIDTHS) for k in range(n_layers)]
    activation = trial.suggest_categorical("activation", ACTIVATIONS)
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    return Architecture(
        widths=[n_inputs, *widths, n_outputs], activations=activation, dropout=dropout
    )


def char_lm_heads(n_head: int, n_embd: int) -> int:
    """Largest head count in :data:`CHAR_LM_HEADS` that is ``<= n_head`` and divides ``n_embd``.

    :class:`CharLM` keeps its space static (``n_head`` and ``n_embd`` sampled independently,
    which evolutionary samplers need) and repairs incompatible pairs with this function, e.g.
    ``(6, 128) -> 4``.
    """
    candidates = [h for h in CHAR_LM_HEADS if h <= n_head and n_embd % h == 0]
    if not candidates:
        raise ValueError(f"no head count in {CHAR_LM_HEADS} <= {n_head} divides n_embd={n_embd}.")
    return max(candidates)


class _Task:
    """Shared behaviour: device, per-trial seeds, lazily loaded data, failure handling."""

    direction: str = "minimize"
    """Optimisation direction of the returned value (the best validation loss)."""

    def __init__(
        self,
        device: str | torch.device | None,
        seed: int,
        catch_failures: bool,
        artifact_store: ArtifactStore | None,
        time_budget_s: float | None,
    ) -> None:
        # Trial n trains with seed + n: room for a billion trials below the top.
        seed = check_int("seed", seed, MIN_TORCH_SEED, MAX_TORCH_SEED - 2**30)
        time_budget_s = check_float("time_budget_s", time_budget_s, 0, low_open=True, none_ok=True)
        if artifact_store is not None:
            checkpoint.check_artifact_store(artifact_store)
        self.device = resolve_device(device)
        self.seed = seed
        self.catch_failures = catch_failures
        self.artifact_store = artifact_store
        self.time_budget_s = time_budget_s
        self._data: ClassificationSplits | TextSplits | None = None

    @property
    def search_space(self) -> dict[str, BaseDistribution]:
        """Every parameter the task may suggest, with its distribution."""
        raise NotImplementedError

    def load_data(self) -> ClassificationSplits | TextSplits:
        """Load (once) and return the task's data on the task's device."""
        if self._data is None:
            self._data = self._load_data()
        return self._data

    def _load_data(self) -> ClassificationSplits | TextSplits:
        raise NotImplementedError

    def _objective(self, trial: optuna.trial.BaseTrial) -> float:
        raise NotImplementedError

    def _fit(
        self,
        trial: optuna.trial.BaseTrial,
        build: Callable[[], torch.nn.Module],
        data: ClassificationSplits | TextSplits,
        task: str | None = None,
        **config: Any,
    ) -> float:
        """One trial's run: seed, build the model, inherit, train, save; the best val loss.

        ``config`` holds the task's :class:`TrainConfig` fields; seed, device and time budget
        are filled in here. The model is built after seeding so its initial weights depend
        on the trial's seed only. The model ends with the weights of its best evaluation (the
        trial's value), which its user attrs (``val_accuracy``, ``test_accuracy``) describe
        and, with an artifact store, are saved, also when the trial is pruned: a pruned
        trial can still be a parent.
        """
        seed = self.trial_seed(trial)
        set_seed(seed)
        model = build()
        # Checkpoints need a live trial (a FrozenTrial has no storage to write to).
        live = trial if isinstance(trial, optuna.Trial) else None
        store = self.artifact_store if live is not None else None
        if live is not None and store is not None:
            try:
                checkpoint.load_parent(live, model, store)
            except checkpoint.CheckpointError as e:
                # A lost or corrupt parent file costs this trial its head start, not the study.
                live.set_user_attr("checkpoint_error", str(e))
                _logger.warning(f"Trial {live.number} trains from fresh weights: {e}")
        settings = TrainConfig(
            seed=seed,
            device=self.device,
            time_budget_s=self.time_budget_s,
            restore_best=True,  # the value, test metrics and saved weights: one evaluation
            **config,
        )
        try:
            result = train(model, data, settings, trial, task=task)
        except optuna.TrialPruned:
            if live is not None and store is not None:
                try:
                    checkpoint.save(live, model, store)
                except Exception as e:  # the prune stands; only its children lose a head start
                    _logger.warning(f"Pruned trial {live.number} could not save its weights: {e}")
            raise
        if live is not None and store is not None:
            checkpoint.save(live, model, store)
        return result.best_val_loss

    def trial_seed(self, trial: optuna.trial.BaseTrial) -> int:
        """Seed used for ``trial``: ``seed + trial.number``."""
        return self.seed + trial.number

    def __call__(self, trial: optuna.trial.BaseTrial) -> float:
        """Train one configuration suggested by ``trial``; return its best validation loss."""
        try:
            return self._objective(trial)
        except TrainingFailed as e:
            if not self.catch_failures:
                raise
            message = str(e)
        # Outside the except block, so the failed run's frames (and tensors) are already freed.
        release_memory(self.device)
        trial.set_user_attr("fail_reason", message)
        _logger.warning(f"Trial {trial.number} failed: {message}")
        return math.nan


class _ImageTask(_Task):
    """Shared budget and data options of the classification tasks (epochs of a split set)."""

    def __init__(
        self,
        dataset: str,
        data_dir: str | os.PathLike[str] | None,
        device: str | torch.device | None,
        *,
        epochs: int,
        reports_per_epoch: int,
        max_train: int | None,
        max_val: int | None,
        time_budget_s: float | None,
        seed: int,
        download: bool,
        evaluate_test: bool,
        catch_failures: bool,
        artifact_store: ArtifactStore | None,
    ) -> None:
        super().__init__(device, seed, catch_failures, artifact_store, time_budget_s)
        self.dataset = dataset
        self.data_dir = data_dir
        self.epochs = check_int("epochs", epochs, 1)
        self.reports_per_epoch = check_int("reports_per_epoch", reports_per_epoch, 1)
        self.max_train = check_int("max_train", max_train, 1, none_ok=True)
        self.max_val = check_int("max_val", max_val, 1, none_ok=True)
        self.download = download
        self.evaluate_test = evaluate_test

    def _load_data(self) -> ClassificationSplits:
        return load_image_dataset(
            self.dataset,
            self.data_dir,
            self.device,
            max_train=self.max_train,
            max_val=self.max_val,
            download=self.download,
        )

    def _budget(self) -> dict[str, Any]:
        """The :class:`TrainConfig` fields every image task sets from its own options."""
        return {
            "epochs": self.epochs,
            "evals_per_epoch": self.reports_per_epoch,
            "evaluate_test": self.evaluate_test,
        }


class FashionMNISTCNN(_ImageTask):
    """The seed GA paper's task: :class:`~optuna_evo.objectives.models.SeedCNN` on FashionMNIST.

    Search space (exactly the paper's): ``lr`` log-uniform in [1e-4, 1], ``momentum`` in
    [0, 0.9], ``weight_decay`` in [0, 0.1]. Fixed: SGD, batch size 64, StepLR with gamma 0.7
    every epoch, 50k / 10k train / validation split. Reports the validation loss after every
    epoch (``reports_per_epoch`` times an epoch, if set).

    Args:
        data_dir: Directory with the FashionMNIST idx files (see
            :func:`~optuna_evo.objectives.data.load_image_dataset` for the lookup order).
        device: Training device; ``None`` = CUDA when available, else CPU.
        epochs: Epochs per trial.
        reports_per_epoch: Validation reports (``trial.report``) per epoch; more than one gives
            a pruner or :class:`~optuna_evo.GenderSampler` a learning curve from a short run.
            The step reported counts these slices of an epoch, whatever the batch size
            (:class:`~optuna_evo.objectives.TrainConfig`'s ``evals_per_epoch``).
        max_train: Use only this many training images (fast CPU runs).
        max_val: Use only this many validation images.
        time_budget_s: Optional wall-clock budget per trial.
        seed: Base seed; trial ``n`` uses ``seed + n``.
        download: Download the data with torchvision if no local copy is found.
        compile: ``torch.compile`` the model (``True`` or a mode name).
        evaluate_test: Also evaluate the test set and store ``test_accuracy``.
        c1: Channels of the first convolution.
        c2: Channels of the second convolution.
        hidden: Width of the hidden linear layer.
        catch_failures: Turn divergence / out-of-memory into a failed trial (see module doc).
        artifact_store: Inherit and save weights through this :mod:`optuna.artifacts` store
            (see module doc); ``None`` (default) trains every trial from fresh weights.
    """

    SEARCH_SPACE: dict[str, BaseDistribution] = {
        "lr": FloatDistribution(1e-4, 1.0, log=True),
        "momentum": FloatDistribution(0.0, 0.9),
        "weight_decay": FloatDistribution(0.0, 0.1),
    }
    BATCH_SIZE = 64
    STEP_GAMMA = 0.7

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = None,
        *,
        epochs: int = 5,
        reports_per_epoch: int = 1,
        max_train: int | None = None,
        max_val: int | None = None,
        time_budget_s: float | None = None,
        seed: int = 0,
        download: bool = False,
        compile: bool | str = False,
        evaluate_test: bool = False,
        c1: int = 32,
        c2: int = 64,
        hidden: int = 128,
        catch_failures: bool = True,
        artifact_store: ArtifactStore | None = None,
    ) -> None:
        super().__init__(
            "fashion-mnist",
            data_dir,
            device,
            epochs=epochs,
            reports_per_epoch=reports_per_epoch,
            max_train=max_train,
            max_val=max_val,
            time_budget_s=time_budget_s,
            seed=seed,
            download=download,
            evaluate_test=evaluate_test,
            catch_failures=catch_failures,
            artifact_store=artifact_store,
        )
        SeedCNN(c1=c1, c2=c2, hidden=hidden)  # Validates the width knobs now, not per trial.
        self.compile = compile
        self.widths = {"c1": c1, "c2": c2, "hidden": hidden}

    @property
    def search_space(self) -> dict[str, BaseDistribution]:
        """The seed paper's space: ``lr``, ``momentum``, ``weight_decay``."""
        return dict(self.SEARCH_SPACE)

    def _objective(self, trial: optuna.trial.BaseTrial) -> float:
        params = {name: suggest(trial, name, d) for name, d in self.SEARCH_SPACE.items()}
        return self._fit(
            trial,
            lambda: SeedCNN(**self.widths),
            self.load_data(),
            optimizer="sgd",
            lr=params["lr"],
            momentum=params["momentum"],
            weight_decay=params["weight_decay"],
            batch_size=self.BATCH_SIZE,
            scheduler="step",
            step_gamma=self.STEP_GAMMA,
            compile=self.compile,
            **self._budget(),
        )


class MLPTask(_ImageTask):
    """An MLP whose architecture comes from the trial, trained on an image or synthetic set.

    The architecture is ``architecture_fn(trial)``; by default
    :func:`default_mlp_architecture` with the dataset's input and output widths. Training
    space: ``optimizer`` in {sgd, adam, adamw}, ``lr`` log-uniform in [1e-4, 0.1],
    ``momentum`` in [0, 0.99] (SGD only), ``batch_size`` in {32, 64, 128, 256},
    ``weight_decay`` log-uniform in [1e-6, 1e-2]; cosine schedule over the run.

    Args:
        dataset: ``"fashion-mnist"``, ``"mnist"`` or ``"synthetic"``.
        data_dir: Directory with the idx files (image datasets).
        device: Training device; ``None`` = CUDA when available, else CPU.
        epochs: Epochs per trial.
        reports_per_epoch: Validation reports (``trial.report``) per epoch; more than one gives
            a pruner or :class:`~optuna_evo.GenderSampler` a learning curve from a short run.
            The step reported counts these slices of an epoch, whatever the batch size
            (:class:`~optuna_evo.objectives.TrainConfig`'s ``evals_per_epoch``).
        architecture_fn: ``fn(trial) -> Architecture``; its widths must start with the input
            width (784 for the image sets) and end with the number of classes.
        max_train: Use only this many training samples (image datasets).
        max_val: Use only this many validation samples (image datasets).
        synthetic_kwargs: Keyword arguments of
            :func:`~optuna_evo.objectives.data.make_synthetic` (``dataset="synthetic"``).
        time_budget_s: Optional wall-clock budget per trial.
        seed: Base seed; trial ``n`` uses ``seed + n``.
        download: Download image data with torchvision if no local copy is found.
        evaluate_test: Also evaluate the test set and store ``test_accuracy``.
        catch_failures: Turn divergence / out-of-memory into a failed trial (see module doc).
        artifact_store: Inherit and save weights through this :mod:`optuna.artifacts` store
            (see module doc); ``None`` (default) trains every trial from fresh weights.
    """

    TRAINING_SPACE: dict[str, BaseDistribution] = {
        "optimizer": CategoricalDistribution(("sgd", "adam", "adamw")),
        "lr": FloatDistribution(1e-4, 0.1, log=True),
        "momentum": FloatDistribution(0.0, 0.99),
        "batch_size": CategoricalDistribution((32, 64, 128, 256)),
        "weight_decay": FloatDistribution(1e-6, 1e-2, log=True),
    }

    def __init__(
        self,
        dataset: str = "fashion-mnist",
        data_dir: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = None,
        *,
        epochs: int = 3,
        reports_per_epoch: int = 1,
        architecture_fn: Callable[[optuna.trial.BaseTrial], Architecture] | None = None,
        max_train: int | None = None,
        max_val: int | None = None,
        synthetic_kwargs: Mapping[str, Any] | None = None,
        time_budget_s: float | None = None,
        seed: int = 0,
        download: bool = False,
        evaluate_test: bool = False,
        catch_failures: bool = True,
        artifact_store: ArtifactStore | None = None,
    ) -> None:
        super().__init__(
            check_choice("dataset", dataset, MLP_DATASETS),
            data_dir,
            device,
            epochs=epochs,
            reports_per_epoch=reports_per_epoch,
            max_train=max_train,
            max_val=max_val,
            time_budget_s=time_budget_s,
            seed=seed,
            download=download,
            evaluate_test=evaluate_test,
            catch_failures=catch_failures,
            artifact_store=artifact_store,
        )
        if architecture_fn is not None and not callable(architecture_fn):
            raise ValueError("`architecture_fn` must be callable as fn(trial) -> Architecture.")
        self.architecture_fn = architecture_fn
        self.synthetic_kwargs = dict(synthetic_kwargs or {})

    @property
    def search_space(self) -> dict[str, BaseDistribution]:
        """Training parameters plus, with the default architecture, the architecture ones.

        ``momentum`` appears only for SGD and ``width_k`` only when ``n_layers > k``.
        """
        space = dict(self.TRAINING_SPACE)
        if self.architecture_fn is None:
            space["n_layers"] = IntDistribution(1, 3)
            for k in range(3):
                space[f"width_{k}"] = CategoricalDistribution(MLP_WIDTHS)
            space["activation"] = CategoricalDistribution(ACTIVATIONS)
            space["dropout"] = FloatDistribution(0.0, 0.5)
        return space

    def _load_data(self) -> ClassificationSplits:
        if self.dataset == "synthetic":
            kwargs = {"seed": self.seed, **self.synthetic_kwargs, "device": self.device}
            return make_synthetic(**kwargs)
        return super()._load_data()

    def _objective(self, trial: optuna.trial.BaseTrial) -> float:
        data = self.load_data()
        assert isinstance(data, ClassificationSplits)
        if self.architecture_fn is None:
            arch = default_mlp_architecture(trial, data.n_features, data.n_classes)
        else:
            arch = self.architecture_fn(trial)
            if not isinstance(arch, Architecture):
                raise ValueError(
                    f"`architecture_fn` must return an Architecture, got {type(arch).__name__}."
                )
            if arch.n_inputs != data.n_features or arch.n_outputs != data.n_classes:
                raise ValueError(
                    f"`architecture_fn` returned widths {arch.widths}; they must start with "
                    f"{data.n_features} (inputs) and end with {data.n_classes} (classes)."
                )
        space = self.TRAINING_SPACE
        optimizer = suggest(trial, "optimizer", space["optimizer"])
        lr = suggest(trial, "lr", space["lr"])
        momentum = suggest(trial, "momentum", space["momentum"]) if optimizer == "sgd" else 0.0
        batch_size = suggest(trial, "batch_size", space["batch_size"])
        weight_decay = suggest(trial, "weight_decay", space["weight_decay"])
        trial.set_user_attr("architecture", arch.to_dict())
        return self._fit(
            trial,
            lambda: MLP(arch),
            data,
            optimizer=optimizer,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            batch_size=batch_size,
            scheduler="cosine",
            **self._budget(),
        )


class CharLM(_Task):
    """Character-level language model on tiny shakespeare (the gender GA paper's space).

    Search space: ``n_layer`` int in [2, 6], ``n_head`` in {2, 4, 6}, ``n_embd`` in
    {64, 128, 192, 384}, ``lr`` log-uniform in [1e-4, 3e-3], ``batch_size`` in {16, 32, 64},
    ``dropout`` in [0, 0.3]. The space is static; when ``n_head`` does not divide ``n_embd``
    the model uses :func:`char_lm_heads` (the largest compatible head count below it) and
    records it in the user attr ``n_head_used``. Fixed, as in nanoGPT's ``shakespeare_char``:
    AdamW (betas 0.9 / 0.99, weight decay 0.1), gradient clipping at 1.0, linear warmup then
    cosine decay to lr / 10. The validation loss (``eval_iters`` batches of
    :attr:`EVAL_BATCH_SIZE` windows, the same text for every trial) is reported every
    ``eval_interval`` steps.

    Args:
        data_path: Path of tiny shakespeare's ``input.txt`` (see
            :func:`~optuna_evo.objectives.data.text_search_paths` for the lookup order).
        device: Training device; ``None`` = CUDA when available, else CPU.
        max_steps: Optimizer steps per trial.
        eval_interval: Steps between validation evaluations (and reports).
        eval_iters: Validation batches per evaluation.
        block_size: Context length.
        time_budget_s: Optional wall-clock budget per trial.
        warmup_steps: Linear warmup steps (default: ``min(100, max_steps // 10)``).
        seed: Base seed; trial ``n`` uses ``seed + n``.
        download: Download the text if no local copy is found.
        compile: ``torch.compile`` the model (``True`` or a mode name).
        catch_failures: Turn divergence / out-of-memory into a failed trial (see module doc).
        artifact_store: Inherit and save weights through this :mod:`optuna.artifacts` store
            (see module doc); ``None`` (default) trains every trial from fresh weights.
    """

    EVAL_BATCH_SIZE = 32
    """Windows per validation batch, the same for every trial whatever its batch size."""

    SEARCH_SPACE: dict[str, BaseDistribution] = {
        "n_layer": IntDistribution(2, 6),
        "n_head": CategoricalDistribution(CHAR_LM_HEADS),
        "n_embd": CategoricalDistribution(CHAR_LM_WIDTHS),
        "lr": FloatDistribution(1e-4, 3e-3, log=True),
        "batch_size": CategoricalDistribution((16, 32, 64)),
        "dropout": FloatDistribution(0.0, 0.3),
    }

    def __init__(
        self,
        data_path: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = None,
        *,
        max_steps: int = 2000,
        eval_interval: int = 250,
        eval_iters: int = 20,
        block_size: int = 256,
        time_budget_s: float | None = None,
        warmup_steps: int | None = None,
        seed: int = 0,
        download: bool = False,
        compile: bool | str = False,
        catch_failures: bool = True,
        artifact_store: ArtifactStore | None = None,
    ) -> None:
        super().__init__(device, seed, catch_failures, artifact_store, time_budget_s)
        max_steps = check_int("max_steps", max_steps, 1)
        eval_interval = check_int("eval_interval", eval_interval, 1)
        eval_iters = check_int("eval_iters", eval_iters, 1)
        block_size = check_int("block_size", block_size, 1)
        warmup_steps = check_int("warmup_steps", warmup_steps, 0, none_ok=True)
        self.data_path = data_path
        self.max_steps = max_steps
        self.eval_interval = eval_interval
        self.eval_iters = eval_iters
        self.block_size = block_size
        self.warmup_steps = min(100, max_steps // 10) if warmup_steps is None else warmup_steps
        self.download = download
        self.compile = compile

    @property
    def search_space(self) -> dict[str, BaseDistribution]:
        """``n_layer``, ``n_head``, ``n_embd``, ``lr``, ``batch_size``, ``dropout``."""
        return dict(self.SEARCH_SPACE)

    def _load_data(self) -> TextSplits:
        return load_tiny_shakespeare(self.data_path, self.device, download=self.download)

    def _objective(self, trial: optuna.trial.BaseTrial) -> float:
        params = {name: suggest(trial, name, d) for name, d in self.SEARCH_SPACE.items()}
        data = self.load_data()
        assert isinstance(data, TextSplits)
        n_head = char_lm_heads(params["n_head"], params["n_embd"])
        trial.set_user_attr("n_head_used", n_head)
        model_config = CharTransformerConfig(
            vocab_size=data.vocab_size,
            block_size=self.block_size,
            n_layer=params["n_layer"],
            n_head=n_head,
            n_embd=params["n_embd"],
            dropout=params["dropout"],
        )
        return self._fit(
            trial,
            lambda: CharTransformer(model_config),
            data,
            task="lm",
            optimizer="adamw",
            lr=params["lr"],
            betas=(0.9, 0.99),
            weight_decay=0.1,
            batch_size=params["batch_size"],
            max_steps=self.max_steps,
            eval_interval=self.eval_interval,
            eval_iters=self.eval_iters,
            eval_batch_size=self.EVAL_BATCH_SIZE,
            scheduler="cosine",
            warmup_steps=self.warmup_steps,
            min_lr_ratio=0.1,
            grad_clip=1.0,
            compile=self.compile,
        )


class SmallCharLM(CharLM):
    """:class:`CharLM` with a CPU-sized space, for quick runs and tests.

    ``n_layer`` in [1, 2], ``n_head`` in {2, 4}, ``n_embd`` in {32, 64}, ``lr`` log-uniform in
    [3e-4, 3e-2], ``batch_size`` in {8, 16}, ``dropout`` in [0, 0.2]: a trial of 100 steps takes
    seconds on a CPU, where the paper's space (up to 6 layers x 384) needs seconds per step.
    Takes the same arguments as :class:`CharLM`.
    """

    SEARCH_SPACE: dict[str, BaseDistribution] = {
        "n_layer": IntDistribution(1, 2),
        "n_head": CategoricalDistribution((2, 4)),
        "n_embd": CategoricalDistribution((32, 64)),
        "lr": FloatDistribution(3e-4, 3e-2, log=True),
        "batch_size": CategoricalDistribution((8, 16)),
        "dropout": FloatDistribution(0.0, 0.2),
    }
