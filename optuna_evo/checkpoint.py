"""Model checkpoints through Optuna's artifact stores: children continue from a parent's weights.

This is Population Based Training inside Optuna: an objective calls :func:`load_parent` before
training, so a child (or an elite) starts from the weights its primary parent saved with
:func:`save` instead of from scratch, on whichever worker runs it::

    import optuna
    import optuna_evo
    from optuna_evo import checkpoint

    store = optuna.artifacts.FileSystemArtifactStore("/shared/artifacts")

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        model = make_model()
        checkpoint.load_parent(trial, model, store, noise_std=1e-3)
        loss = train(model, lr)
        checkpoint.save(trial, model, store)
        return loss

    study = optuna.create_study(sampler=optuna_evo.GeneticSampler(population_size=8))
    study.optimize(objective, n_trials=64)

    best_model = make_model()
    checkpoint.load(study.best_trial, best_model, store)  # the best trial's weights

Checkpoints are `safetensors <https://huggingface.co/docs/safetensors>`_ files: tensors and a
string header only, so loading one never runs code (nothing is ever unpickled). Each is uploaded
with :func:`optuna.artifacts.upload_artifact` under the name ``checkpoint.safetensors``, and the
trial system attr ``optuna_evo:checkpoint`` points at the newest one. Nothing is ever deleted
(any finished trial may still be a parent); remove files you no longer need with the store's
``remove(artifact_id)``.

All workers must share one artifact store (a shared folder for
:class:`~optuna.artifacts.FileSystemArtifactStore`, or an S3 / GCS store): a child can only
inherit a checkpoint that its own worker can read. Any object implementing Optuna's
``ArtifactStore`` protocol (``open_reader``, ``write``, ``remove``) works.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
import json
import os
from pathlib import Path
import tempfile
from typing import Any
import zlib

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial
import safetensors
import safetensors.torch
import torch
from torch import nn

from optuna_evo._logging import get_logger
from optuna_evo._validation import check_float
from optuna_evo.architecture import Architecture
from optuna_evo.samplers._population import WEIGHT_NOISE_KEY
from optuna_evo.samplers._population import parents

__all__ = [
    "ARTIFACT_DIR_ENV",
    "CHECKPOINT_FILENAME",
    "CHECKPOINT_KEY",
    "CheckpointError",
    "LoadReport",
    "default_artifact_store",
    "load",
    "load_parent",
    "save",
]

ARTIFACT_DIR_ENV = "OPTUNA_EVO_ARTIFACT_DIR"
"""Environment variable naming the folder of the default artifact store."""
CHECKPOINT_FILENAME = "checkpoint.safetensors"
"""File name every checkpoint is uploaded under (shown by optuna-dashboard)."""
CHECKPOINT_KEY = "optuna_evo:checkpoint"
"""Trial system attr holding the artifact id of the trial's newest checkpoint."""

_DEFAULT_ARTIFACT_DIR = "optuna-evo-artifacts"
_WRAPPER_PREFIXES = ("_orig_mod.", "module.")
_HEADER_KEY = "optuna_evo"  # key of our JSON document in the safetensors header metadata
_FORMAT_VERSION = 1
_logger = get_logger(__name__)


class CheckpointError(ValueError):
    """A checkpoint is missing from the artifact store, unreadable, or does not fit the model.

    The message names the trial whose checkpoint it is and what is wrong with it.
    """


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_parent` or :func:`load` copied into the model.

    Keys are the model's ``state_dict`` keys (parameters and persistent buffers), without the
    prefixes of ``torch.compile`` or ``DataParallel`` wrappers.

    Attributes:
        parent_number: Number of the trial whose checkpoint was loaded (the primary parent for
            :func:`load_parent`, the given trial for :func:`load`).
        copied: Keys whose tensor was copied whole (same shape).
        partial: Keys whose shape differs but not their number of dimensions: the overlapping
            slice ``[:min(a0, b0), :min(a1, b1), ...]`` was copied, the rest kept the model's
            values (its fresh initialisation).
        missing: Model keys the checkpoint has no tensor for; they kept the model's values.
        unexpected: Checkpoint keys the model has no tensor for; they were ignored.
        skipped: Keys on both sides whose number of dimensions differs, or whose shape differs
            in a tensor the model stacks (its ``stacked_parameters``, e.g. a transformer's
            fused q/k/v projection, where an overlapping slice would mix q, k and v); not
            copied.
        metadata: The ``metadata`` passed to :func:`save` (empty if none).
    """

    parent_number: int
    copied: tuple[str, ...] = ()
    partial: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        """``True`` when every tensor of the model was copied whole and none was left over."""
        return not (self.partial or self.missing or self.unexpected or self.skipped)


def default_artifact_dir(fallback: str | os.PathLike[str] | None = None) -> Path:
    """The folder of :func:`default_artifact_store`: ``$OPTUNA_EVO_ARTIFACT_DIR`` if set,
    else ``fallback``, else ``./optuna-evo-artifacts`` (relative to the working directory)."""
    return Path(os.environ.get(ARTIFACT_DIR_ENV) or fallback or _DEFAULT_ARTIFACT_DIR)


def default_artifact_store(
    fallback: str | os.PathLike[str] | None = None,
) -> FileSystemArtifactStore:
    """Return the store used when no ``artifact_store`` is given.

    A :class:`~optuna.artifacts.FileSystemArtifactStore` in :func:`default_artifact_dir`
    (the ``OPTUNA_EVO_ARTIFACT_DIR`` environment variable, else ``fallback``, else
    ``./optuna-evo-artifacts``), created if missing. For several workers, point the variable
    at a folder they all share, or pass an S3 / GCS store explicitly.
    """
    path = default_artifact_dir(fallback)
    path.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(path)


def save(
    trial: optuna.Trial,
    model_or_state_dict: nn.Module | Mapping[str, torch.Tensor],
    artifact_store: Any | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> str:
    """Save a model's weights as the trial's checkpoint, for its children to inherit.

    Call it inside the objective, before returning. Saving again for the same trial is allowed;
    :func:`load_parent` and :func:`load` use the newest checkpoint.

    Args:
        trial: The running trial.
        model_or_state_dict: A module (its ``state_dict()`` is saved: parameters and persistent
            buffers) or a mapping from names to tensors. Tensors are copied to the CPU; tied
            (shared) tensors are stored once per name.
        artifact_store: Any Optuna artifact store shared by all workers; defaults to
            :func:`default_artifact_store`.
        metadata: JSON-serialisable extra information (e.g. the epochs trained so far),
            returned by the loaders in :attr:`LoadReport.metadata`.

    Returns:
        The artifact id of the uploaded checkpoint.

    Raises:
        TypeError: ``trial`` is not a running :class:`optuna.Trial`, or ``model_or_state_dict``
            or ``artifact_store`` has the wrong type.
        ValueError: ``metadata`` is not JSON-serialisable, or the state dict holds something
            other than a dense tensor.
    """
    if not isinstance(trial, optuna.Trial):
        raise TypeError(
            f"`trial` must be the running optuna.Trial passed to the objective, "
            f"got {type(trial).__name__}."
        )
    store = _resolve_store(artifact_store)
    tensors = _tensors_to_save(model_or_state_dict)
    try:
        user = json.loads(json.dumps(dict(metadata or {}), allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ValueError(f"`metadata` must be a JSON-serialisable dict: {e}") from e
    import optuna_evo  # deferred: the package may import this module while initialising

    header = {
        "format_version": _FORMAT_VERSION,
        "optuna_evo_version": optuna_evo.__version__,
        "study_name": trial.study.study_name,
        "trial_number": trial.number,
        "metadata": user,
    }
    arch = getattr(model_or_state_dict, "arch", None)
    if isinstance(arch, Architecture):  # an MLP: lets a deeper or shallower child align layers
        header["architecture"] = arch.to_dict()
    with tempfile.TemporaryDirectory(prefix="optuna-evo-") as tmp:
        path = os.path.join(tmp, CHECKPOINT_FILENAME)
        safetensors.torch.save_file(tensors, path, metadata={_HEADER_KEY: json.dumps(header)})
        artifact_id = optuna.artifacts.upload_artifact(
            artifact_store=store,
            file_path=path,
            study_or_trial=trial,
            mimetype="application/octet-stream",
        )
    # Point at the new checkpoint only once it is fully in the store, so a crash mid-upload
    # leaves the previous checkpoint (or none) in place.
    trial.storage.set_trial_system_attr(trial._trial_id, CHECKPOINT_KEY, artifact_id)
    _logger.debug(f"Trial {trial.number} saved checkpoint {artifact_id} ({len(tensors)} tensors).")
    return artifact_id


def load_parent(
    trial: optuna.Trial,
    model: nn.Module,
    artifact_store: Any | None = None,
    *,
    noise_std: float | None = None,
    generator: torch.Generator | None = None,
    strict: bool = False,
) -> LoadReport | None:
    """Load the checkpoint of the trial's primary parent into ``model``.

    Call it inside the objective, after building the model (whose fresh initialisation fills
    whatever the checkpoint does not cover) and before training. The primary parent is
    ``optuna_evo.parents(trial)[0]``: the copied trial for an elite, the first mate for a
    child. Tensors of the same shape are copied; when a mutation changed a shape but not the
    number of dimensions, the overlapping slice is copied and the rest keeps the model's values.
    For an :class:`~optuna_evo.objectives.MLP` saved by :func:`save`, whose checkpoint records
    its architecture, a layer added or removed in the child does not shift the others: each
    trained layer goes to the child's layer that continues it
    (:meth:`~optuna_evo.objectives.MLP.inherit_state`), the output layer to the output layer,
    and a square layer the child adds starts near the identity, so the child starts near its
    parent's function (see that method for when this is exact).

    Args:
        trial: The running trial.
        model: The freshly built module to load into, in place, on any device.
        artifact_store: The store the parents saved to; defaults to
            :func:`default_artifact_store`.
        noise_std: Standard deviation of Gaussian noise added to the loaded part of every
            floating-point parameter (not to buffers), to explore around the parent; >= 0.
            ``None`` (default) uses the noise the sampler planned for this trial
            (:class:`~optuna_evo.MAGESampler`'s ``weight_noise`` for mutants and children, 0
            for elites),
            or 0 when the sampler planned none.
        generator: Random generator for the noise. ``None`` (default) seeds one from the
            study name and trial number, so the noise differs between trials even when the
            objective reseeds torch (e.g. :class:`~optuna_evo.objectives.TrainConfig`'s
            ``seed``), and re-running the study draws the same noise.
        strict: Raise :class:`CheckpointError` unless every tensor fits exactly.

    Returns:
        A :class:`LoadReport`, or ``None`` when the trial has no parent (generation 0,
        random or enqueued trials, other samplers) or the parent saved no checkpoint; the
        model is then left untouched.

    Raises:
        CheckpointError: The parent's checkpoint is missing from the store (are all workers
            sharing one?), unreadable, or does not fit ``model`` while ``strict`` is set. The
            model is left untouched.
        ValueError: ``noise_std`` is negative or not finite.
        TypeError: An argument has the wrong type.
    """
    if not isinstance(trial, optuna.Trial):
        raise TypeError(
            f"`trial` must be the running optuna.Trial passed to the objective, "
            f"got {type(trial).__name__}; use `load` to load a finished trial's checkpoint."
        )
    if noise_std is None:
        attrs = trial.study._storage.get_trial_system_attrs(trial._trial_id)
        noise_std = float(attrs.get(WEIGHT_NOISE_KEY, 0.0))
    noise_std = _check_load_args(model, noise_std, generator)
    store = _resolve_store(artifact_store)
    found = parents(trial)
    if not found:
        _logger.debug(f"Trial {trial.number} has no parent; it keeps its fresh weights.")
        return None
    parent = found[0]
    artifact_id = parent.system_attrs.get(CHECKPOINT_KEY)
    if artifact_id is None:
        _logger.info(
            f"Parent trial {parent.number} of trial {trial.number} saved no checkpoint; "
            "the trial keeps its fresh weights."
        )
        return None
    if generator is None and noise_std > 0:
        # Not torch's global stream: objectives reseed it per trial, which would give every
        # mutant of one parent the same noise, hence the same weights.
        seed = zlib.crc32(f"{trial.study.study_name}:{trial.number}".encode())
        generator = torch.Generator().manual_seed(seed)
    report = _load_into(
        parent.number,
        artifact_id,
        model,
        store,
        noise_std=noise_std,
        generator=generator,
        strict=strict,
    )
    _logger.debug(f"Trial {trial.number} loaded the checkpoint of trial {parent.number}.")
    return report


def load(
    trial: optuna.Trial | FrozenTrial,
    model: nn.Module,
    artifact_store: Any | None = None,
    study: optuna.Study | None = None,
    *,
    strict: bool = False,
) -> LoadReport:
    """Load a trial's own newest checkpoint into ``model``, e.g. the best trial after a study.

    Shapes are handled as in :func:`load_parent`; no noise is added.

    Args:
        trial: A finished :class:`~optuna.trial.FrozenTrial` (e.g. ``study.best_trial``) or a
            running :class:`optuna.Trial`.
        model: The module to load into, in place.
        artifact_store: The store the trial saved to; defaults to
            :func:`default_artifact_store`.
        study: The study of a FrozenTrial; optional, to read its freshest attributes.
        strict: Raise :class:`CheckpointError` unless every tensor fits exactly.

    Returns:
        A :class:`LoadReport`.

    Raises:
        CheckpointError: The trial saved no checkpoint, or it is missing from the store,
            unreadable, or does not fit ``model`` while ``strict`` is set. The model is left
            untouched.
        TypeError: An argument has the wrong type.
    """
    _check_load_args(model, 0.0, None)
    store = _resolve_store(artifact_store)
    if isinstance(trial, optuna.Trial):
        attrs = trial.storage.get_trial_system_attrs(trial._trial_id)
    elif isinstance(trial, FrozenTrial):
        if study is not None:
            attrs = study._storage.get_trial_system_attrs(trial._trial_id)
        else:
            attrs = trial.system_attrs
    else:
        raise TypeError(
            f"`trial` must be an optuna Trial or FrozenTrial, got {type(trial).__name__}."
        )
    artifact_id = attrs.get(CHECKPOINT_KEY)
    if artifact_id is None:
        raise CheckpointError(f"trial {trial.number} saved no checkpoint.")
    return _load_into(trial.number, artifact_id, model, store, strict=strict)


# -- internals ----------------------------------------------------------------------------


def is_artifact_store(obj: Any) -> bool:
    """Whether ``obj`` follows Optuna's ``ArtifactStore`` protocol (``open_reader``, ``write``)."""
    return all(callable(getattr(obj, m, None)) for m in ("open_reader", "write"))


def check_artifact_store(artifact_store: Any) -> None:
    """Refuse, when an objective is built, a store its first save would fail on.

    Raises:
        ValueError: If ``artifact_store`` is not an :mod:`optuna.artifacts` store, or is a
            :class:`~optuna.artifacts.FileSystemArtifactStore` whose folder does not exist
            (Optuna does not check it; the first save would fail after a whole trial).
    """
    if not is_artifact_store(artifact_store):
        raise ValueError(
            "artifact_store must be an optuna.artifacts store (e.g. "
            f"FileSystemArtifactStore), got {type(artifact_store).__name__}."
        )
    folder = getattr(artifact_store, "_base_path", None)  # FileSystemArtifactStore's
    if isinstance(artifact_store, FileSystemArtifactStore) and not os.path.isdir(folder or ""):
        raise ValueError(f"artifact_store's folder {folder} does not exist; create it first.")


def _resolve_store(artifact_store: Any | None) -> Any:
    if artifact_store is None:
        return default_artifact_store()
    if not is_artifact_store(artifact_store):
        raise TypeError(
            "`artifact_store` must be an Optuna artifact store (with `open_reader`, `write` "
            f"and `remove`), got {type(artifact_store).__name__}."
        )
    return artifact_store


def _check_load_args(model: Any, noise_std: Any, generator: Any) -> float:
    """Check the arguments shared by the loaders; return ``noise_std`` as a float."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    noise_std = check_float("noise_std", noise_std, 0)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"`generator` must be a torch.Generator, got {type(generator).__name__}.")
    return noise_std


def _tensors_to_save(
    model_or_state_dict: nn.Module | Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    if isinstance(model_or_state_dict, nn.Module):
        state: Mapping[str, Any] = model_or_state_dict.state_dict()
    elif isinstance(model_or_state_dict, Mapping):
        state = model_or_state_dict
    else:
        raise TypeError(
            "`model_or_state_dict` must be a torch.nn.Module or a mapping of tensors, "
            f"got {type(model_or_state_dict).__name__}."
        )
    tensors: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for key, value in state.items():
        if not isinstance(key, str):
            raise ValueError(f"`model_or_state_dict` keys must be strings, got {key!r}.")
        if not isinstance(value, torch.Tensor) or value.layout != torch.strided:
            raise ValueError(
                f"`model_or_state_dict` entry {key!r} is not a dense tensor "
                f"({type(value).__name__}); only dense tensors can be saved."
            )
        if value.is_meta:
            raise ValueError(f"`model_or_state_dict` entry {key!r} is on the meta device.")
        tensor = value.detach().to("cpu").contiguous()
        # safetensors refuses tensors that share memory (tied weights, views of one buffer):
        # give every name its own copy.
        if tensor.numel():
            ptr = tensor.untyped_storage().data_ptr()
            if ptr in storages:
                tensor = tensor.clone()
            storages.add(ptr)
        tensors[key] = tensor
    return tensors


def _read_checkpoint(
    number: int, artifact_id: str, store: Any
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The checkpoint's tensors (keys without wrapper prefixes) and its header."""
    with tempfile.TemporaryDirectory(prefix="optuna-evo-") as tmp:
        path = os.path.join(tmp, CHECKPOINT_FILENAME)
        try:
            optuna.artifacts.download_artifact(
                artifact_store=store, file_path=path, artifact_id=artifact_id
            )
        except ArtifactNotFound as e:
            raise CheckpointError(
                f"checkpoint {artifact_id} of trial {number} is not in the artifact store; "
                "all workers must share one store."
            ) from e
        try:
            # safetensors only parses a JSON header and raw tensor bytes: nothing is unpickled.
            with safetensors.safe_open(path, framework="pt", device="cpu") as f:
                header = f.metadata() or {}
                tensors = {key: f.get_tensor(key) for key in f.keys()}
            info = json.loads(header.get(_HEADER_KEY, "{}"))
            if not isinstance(info, dict):
                raise ValueError(f"header entry {_HEADER_KEY!r} is not a JSON object")
        except Exception as e:  # SafetensorError, OSError, ValueError, ...: all mean unreadable
            raise CheckpointError(
                f"checkpoint of trial {number} is unreadable: {e} (artifact {artifact_id})."
            ) from e
    saved_by = info.get("trial_number")
    if saved_by is not None and saved_by != number:
        _logger.warning(
            f"Checkpoint {artifact_id} of trial {number} says it was saved by trial {saved_by}."
        )
    return {_unwrapped(k): v for k, v in tensors.items()}, info


def _unwrapped(key: str) -> str:
    # torch.compile and DataParallel wrappers prefix every key; checkpoints match without them.
    for prefix in _WRAPPER_PREFIXES:
        key = key.removeprefix(prefix)
    return key


def _aligned(
    source: dict[str, torch.Tensor], info: Mapping[str, Any], model: nn.Module
) -> dict[str, torch.Tensor]:
    """``source`` with an MLP parent's layers renamed to the child's layers that continue them."""
    from optuna_evo.objectives.models import MLP  # deferred: objectives import this module

    stored = info.get("architecture")
    if not isinstance(model, MLP) or not isinstance(stored, Mapping):
        return source
    try:
        parent = Architecture.from_dict(stored)
    except ValueError:
        return source  # an unreadable record: copy by name, as for any model
    return model.inherit_state(parent, source)


def _load_into(
    number: int,
    artifact_id: str,
    model: nn.Module,
    store: Any,
    *,
    noise_std: float = 0.0,
    generator: torch.Generator | None = None,
    strict: bool = False,
) -> LoadReport:
    source, info = _read_checkpoint(number, artifact_id, store)
    metadata = info.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    source = _aligned(source, info, model)
    # The model's tensors (views of its parameters and buffers), keys without wrapper prefixes.
    target = {_unwrapped(k): v for k, v in model.state_dict().items()}
    stacked = tuple(getattr(model, "stacked_parameters", ()))

    # Plan every copy before touching the model, so an error leaves it unchanged.
    regions: dict[str, tuple[slice, ...]] = {}
    copied: list[str] = []
    partial: list[str] = []
    skipped: list[str] = []
    for key, dst in target.items():
        src = source.get(key)
        if not isinstance(dst, torch.Tensor) or src is None:
            continue
        if src.shape == dst.shape:
            copied.append(key)
        elif src.dim() == dst.dim() and not key.endswith(stacked):
            partial.append(key)
        else:
            skipped.append(key)
            continue
        regions[key] = tuple(
            slice(0, min(a, b)) for a, b in zip(src.shape, dst.shape, strict=True)
        )
    missing = [k for k, v in target.items() if isinstance(v, torch.Tensor) and k not in source]
    unexpected = [k for k in source if k not in target]
    report = LoadReport(
        parent_number=number,
        copied=tuple(copied),
        partial=tuple(partial),
        missing=tuple(missing),
        unexpected=tuple(unexpected),
        skipped=tuple(skipped),
        metadata=metadata,
    )
    if strict and not report.exact:
        problems = [
            f"{name} {list(keys)}"
            for name, keys in (
                ("shape differs for", partial + skipped),
                ("missing from checkpoint:", missing),
                ("not in model:", unexpected),
            )
            if keys
        ]
        raise CheckpointError(
            f"checkpoint of trial {number} does not fit the model: {'; '.join(problems)}."
        )

    if not regions and source:
        _logger.warning(
            f"No tensor of trial {number}'s checkpoint fits the model (the model's keys: "
            f"{list(target)[:3]}..., the checkpoint's: {list(source)[:3]}...); it keeps its "
            "fresh weights."
        )
    with torch.no_grad():
        for key, region in regions.items():
            # copy_ casts dtype and moves to the model's device.
            target[key][region].copy_(source[key][region])
        if noise_std > 0:
            # named_parameters() lists a tied parameter once, so it gets noise once.
            for name, param in model.named_parameters():
                key = _unwrapped(name)
                if key not in regions or not param.is_floating_point():
                    continue
                view = param[regions[key]]
                device = generator.device if generator is not None else view.device
                noise = torch.randn(view.shape, generator=generator, device=device)
                view.add_(noise.to(view.device, view.dtype), alpha=noise_std)
    return report
