"""Save and reload GENREG genomes and trainers as plain tensors plus JSON; nothing is pickled.

:func:`save_genome` writes a `safetensors <https://huggingface.co/docs/safetensors>`_ file with
the tensors ``w0, b0, w1, b1, ...`` (weights ``[in, out]``, biases ``[out]``) and the JSON
config in its header metadata, when the ``safetensors`` package is importable. Otherwise (or
with ``format="torch"``) it writes the same tensor dict with :func:`torch.save` and the config
as JSON in ``<path>.json`` beside it, with the SHA-256 of the weights file
(``"weights_sha256"``) so that a config never goes with other weights unnoticed;
:func:`load_genome` reads that back with ``torch.load(weights_only=True)``, which refuses
anything but tensors and plain containers.

:func:`save_trainer` writes a whole :class:`~optuna_evo.genreg.GenregTrainer` the same way
(tensors ``theta``, ``trust``, ``scales``, ``rng_state`` and the last generation's
diagnostics; the config, generation and ``"kind": "trainer"`` in the JSON), and
:func:`load_trainer` continues the run from it; :meth:`GenregTrainer.fit` writes one every few
generations when given a ``checkpoint`` path, so a crash loses little of a long run.

A failed or interrupted save leaves the previous file intact: every file is written in full
to a temporary file beside its target, then moved over it with :func:`os.replace`. (With the
torch format's two files, a crash in the instant between the two moves leaves new weights
beside the old config, which loading refuses rather than mixes.)
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import contextlib
import hashlib
import inspect
import io
import json
import os
from pathlib import Path
import stat
from typing import Any
import uuid

import torch

from optuna_evo._validation import check_choice
from optuna_evo._validation import check_int
from optuna_evo.genreg.trainer import ACTIVATIONS
from optuna_evo.genreg.trainer import Genome
from optuna_evo.genreg.trainer import GenregTrainer
from optuna_evo.genreg.trainer import _layer_shapes
from optuna_evo.genreg.trainer import _layer_views

FORMATS: tuple[str, ...] = ("auto", "safetensors", "torch")
"""Values of :func:`save_genome`'s ``format``."""

_META_KEY = "optuna_evo.genreg"
_TRAINER_KIND = "trainer"  # the document's "kind" in a trainer state; genomes have none
_DIGEST_KEY = "weights_sha256"
_SAFETENSORS_MAGIC_OFFSET = 8  # a safetensors file starts with an 8-byte header length, then "{"


def _has_safetensors() -> bool:
    try:
        import safetensors.torch  # noqa: F401
    except ImportError:
        return False
    return True


def _config_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def save_genome(
    path: str | os.PathLike[str],
    source: GenregTrainer | Genome | tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]],
    config: dict[str, Any] | None = None,
    *,
    format: str = "auto",
) -> Path:
    """Write a genome (a trainer's best, a :class:`Genome` or raw weights) with its config.

    The files are written to temporary files in the same directory and then moved into place,
    so a save that fails or is interrupted leaves the previous genome at ``path`` intact.

    Args:
        path: Output file (e.g. ``best.safetensors`` or ``best.pt``).
        source: A :class:`GenregTrainer` (its :meth:`~GenregTrainer.best_genome` is saved), a
            :class:`Genome`, or ``(weights, biases)``: per layer ``[in, out]`` and ``[out]``
            tensors (the activation is then ``config["activation"]``, default ``"tanh"``).
        config: Extra JSON-serialisable entries merged over the genome's own config (e.g. the
            task name and the accuracy reached).
        format: ``"auto"`` (safetensors when importable, else torch), ``"safetensors"`` or
            ``"torch"``.

    Returns:
        The path written.
    """
    check_choice("format", format, FORMATS)
    if isinstance(source, GenregTrainer):
        genome = source.best_genome()
    elif isinstance(source, Genome):
        genome = source
    elif isinstance(source, (tuple, list)) and len(source) == 2:
        activation = str((config or {}).get("activation", "tanh"))
        check_choice("activation", activation, ACTIVATIONS)
        genome = Genome(list(source[0]), list(source[1]), activation)
        _check_layers(genome)
    else:
        raise ValueError(
            f"source must be a GenregTrainer, a Genome or (weights, biases), got {type(source)!r}."
        )
    merged = {**genome.config, **(config or {})}
    document: dict[str, Any] = {
        "layers": genome.layers,
        "activation": genome.activation,
        "config": merged,
    }
    tensors: dict[str, torch.Tensor] = {}
    for i, (w, b) in enumerate(zip(genome.weights, genome.biases)):
        # Fresh, contiguous CPU copies: normal tensors even if the originals are inference ones.
        tensors[f"w{i}"] = w.detach().to("cpu", copy=True).contiguous()
        tensors[f"b{i}"] = b.detach().to("cpu", copy=True).contiguous()
    return _write_files(Path(path), tensors, document, format)


def _write_files(
    path: Path, tensors: dict[str, torch.Tensor], document: dict[str, Any], format: str
) -> Path:
    """Write ``tensors`` and the JSON ``document`` atomically in ``format`` (see the module)."""
    text = json.dumps(document)  # fails early on values JSON cannot hold
    path.parent.mkdir(parents=True, exist_ok=True)
    temps: list[Path] = []
    try:
        if format == "safetensors" or (format == "auto" and _has_safetensors()):
            import safetensors.torch

            tmp = _temp_beside(path, temps)
            tmp.touch()  # the mode a new file gets here (umask); safetensors writes 0o600
            mode = stat.S_IMODE(tmp.stat().st_mode)
            safetensors.torch.save_file(tensors, str(tmp), metadata={_META_KEY: text})
            with contextlib.suppress(OSError):  # a file system without modes keeps its own
                os.chmod(tmp, mode)
            _fsync(tmp)
            os.replace(tmp, path)
        else:
            weights_tmp = _temp_beside(path, temps)
            torch.save(tensors, weights_tmp)
            _fsync(weights_tmp)
            document[_DIGEST_KEY] = hashlib.sha256(weights_tmp.read_bytes()).hexdigest()
            config_path = _config_path(path)
            config_tmp = _temp_beside(config_path, temps)
            config_tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            _fsync(config_tmp)
            # Both files are complete before either replaces its old version, so only the
            # instant between the two renames mixes old and new. Weights go first and
            # _read_files reads the config first, so a reader never pairs a new config with old
            # weights; old config with new weights fails the config's digest check.
            os.replace(weights_tmp, path)
            os.replace(config_tmp, config_path)
    except BaseException:  # also on KeyboardInterrupt: leave no temporary files behind
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise
    return path


def _temp_beside(target: Path, temps: list[Path]) -> Path:
    # Same directory as the target: os.replace is atomic only within one file system.
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    temps.append(tmp)
    return tmp


def _fsync(path: Path) -> None:
    # The data must be on disk before the rename is, or a power cut can leave an empty file.
    with path.open("rb+") as f:
        os.fsync(f.fileno())


def _check_layers(genome: Genome) -> None:
    if not genome.weights or len(genome.weights) != len(genome.biases):
        raise ValueError("weights and biases must be non-empty and of equal length.")
    for i, (w, b) in enumerate(zip(genome.weights, genome.biases)):
        fits = w.dim() == 2 and b.dim() == 1 and b.shape[0] == w.shape[1]
        if not fits or (i and w.shape[0] != genome.weights[i - 1].shape[1]):
            raise ValueError(
                f"layer {i}: weight {tuple(w.shape)} / bias {tuple(b.shape)} do not chain."
            )


def _is_safetensors(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(_SAFETENSORS_MAGIC_OFFSET + 1)
    return len(head) == _SAFETENSORS_MAGIC_OFFSET + 1 and head[-1:] == b"{"


def _first_line(error: BaseException) -> str:
    # Some parsers raise with an empty message; the type name still says something.
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _damaged_safetensors(path: Path, error: Exception) -> ValueError:
    return ValueError(
        f"{path} is not a GENREG checkpoint: damaged safetensors file ({_first_line(error)})."
    )


def _parse_document(path: Path, raw: str | bytes, where: str) -> dict[str, Any]:
    """Return the saved config document, checked, or raise a ValueError naming ``path``."""
    try:
        document = json.loads(raw)
    except ValueError as e:  # also UnicodeDecodeError from non-UTF-8 bytes
        raise ValueError(f"{path}: {where} is not valid JSON ({_first_line(e)}).") from e
    if not isinstance(document, dict):
        raise ValueError(f"{path}: {where} is not a JSON object: not a GENREG checkpoint.")
    layers = document.get("layers")
    try:
        if not isinstance(layers, list) or len(layers) < 2:
            raise ValueError("missing or not a list of at least two widths")
        document["layers"] = [check_int(f"layers[{i}]", n, 1) for i, n in enumerate(layers)]
    except ValueError as e:
        raise ValueError(f"{path}: {where} has no valid 'layers' ({e}).") from e
    activation = document.get("activation")
    if activation not in ACTIVATIONS:
        raise ValueError(f"{path}: {where} has an unknown or missing activation {activation!r}.")
    if not isinstance(document.get("config", {}), dict):
        raise ValueError(f"{path}: {where} has a 'config' that is not a JSON object.")
    return document


def load_genome(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Genome:
    """Read a genome written by :func:`save_genome` (or the best genome of :func:`save_trainer`'s).

    Args:
        path: The file :func:`save_genome` returned; a trainer state written by
            :func:`save_trainer` gives its best genome (row 0 of the population), so a run in
            progress can be evaluated from its checkpoint.
        device: Device of the loaded tensors.

    Returns:
        The :class:`Genome` (its ``config`` holds the saved config).

    Raises:
        ValueError: If the file is not a GENREG checkpoint (empty, truncated, damaged, of
            another kind, or with a config that is missing, unreadable or belongs to other
            weights) or its tensors do not fit its layers. The message names the file.
        OSError: If the file cannot be read (e.g. it does not exist).
    """
    path = Path(path)
    document, tensors = _read_files(path)
    layers: list[int] = document["layers"]
    if document.get("kind") == _TRAINER_KIND:
        theta = tensors.get("theta")
        shapes, n_params = _layer_shapes(layers)
        if not isinstance(theta, torch.Tensor) or theta.dim() != 2 or theta.shape[1] != n_params:
            raise ValueError(f"{path}: tensor 'theta' missing or not of layers {layers}.")
        row_weights, row_biases = _layer_views(theta[:1].to(device), shapes)
        config = {**document.get("config", {}), "generation": document.get("generation")}
        return Genome(
            [w[0].clone() for w in row_weights],
            [b[0].clone() for b in row_biases],
            document["activation"],
            config,
        )
    weights, biases = [], []
    for i, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:])):
        w, b = tensors.get(f"w{i}"), tensors.get(f"b{i}")
        if not (isinstance(w, torch.Tensor) and isinstance(b, torch.Tensor)) or (
            tuple(w.shape) != (n_in, n_out) or tuple(b.shape) != (n_out,)
        ):
            raise ValueError(f"{path}: tensors w{i} / b{i} missing or not of layers {layers}.")
        weights.append(w.to(device))
        biases.append(b.to(device))
    return Genome(weights, biases, document["activation"], dict(document.get("config", {})))


def _read_files(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checked JSON document and the tensors of a checkpoint, or a ValueError naming it."""
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty: not a GENREG checkpoint.")
    tensors: Any
    if _is_safetensors(path):
        import safetensors

        try:
            handle = safetensors.safe_open(str(path), framework="pt", device="cpu")
        except Exception as e:  # SafetensorError for a truncated or damaged file
            raise _damaged_safetensors(path, e) from e
        with handle as f:
            metadata = f.metadata() or {}
            if _META_KEY not in metadata:
                raise ValueError(f"{path} has no {_META_KEY!r} metadata: not a GENREG checkpoint.")
            document = _parse_document(path, metadata[_META_KEY], f"metadata {_META_KEY!r}")
            try:
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
            except Exception as e:
                raise _damaged_safetensors(path, e) from e
    else:
        config_path = _config_path(path)
        # Config before weights: _write_files replaces the weights first, so the weights read
        # next are never older than this config.
        try:
            raw_config: bytes | None = config_path.read_bytes()
        except FileNotFoundError:
            raw_config = None
        data = path.read_bytes()
        try:  # weights_only: a checkpoint is never unpickled
            tensors = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as e:  # a damaged file fails anywhere in torch's parser
            raise ValueError(f"{path} is not a GENREG checkpoint: {_first_line(e)}") from e
        if not isinstance(tensors, dict):
            raise ValueError(f"{path} holds a {type(tensors).__name__}, not a GENREG checkpoint.")
        if raw_config is None:
            raise ValueError(f"{path} has no config file {config_path.name} beside it.")
        document = _parse_document(path, raw_config, f"config file {config_path.name}")
        digest = document.get(_DIGEST_KEY)
        if digest is not None and digest != hashlib.sha256(data).hexdigest():
            raise ValueError(
                f"{path}: the weights are not those of config file {config_path.name} "
                "(another save's file, or the weights are damaged)."
            )
    return document, tensors


def save_trainer(
    path: str | os.PathLike[str], trainer: GenregTrainer, *, format: str = "auto"
) -> Path:
    """Write a trainer's whole state, so that :func:`load_trainer` can continue the run.

    The file holds :meth:`GenregTrainer.state_dict`: the population, trust, mutation scales
    and the random generator's state as tensors, the config and the generation as JSON, in
    the same formats and with the same atomic replacement as :func:`save_genome`
    (a save that fails or is interrupted leaves the previous state intact).
    :meth:`GenregTrainer.fit` writes one every ``checkpoint_every`` generations when given a
    ``checkpoint`` path.

    Args:
        path: Output file (e.g. ``run.safetensors`` or ``run.pt``).
        trainer: The trainer to save.
        format: ``"auto"`` (safetensors when importable, else torch), ``"safetensors"`` or
            ``"torch"``.

    Returns:
        The path written.
    """
    check_choice("format", format, FORMATS)
    if not isinstance(trainer, GenregTrainer):
        raise ValueError(f"trainer must be a GenregTrainer, got {type(trainer)!r}.")
    state = trainer.state_dict()
    document: dict[str, Any] = {
        "kind": _TRAINER_KIND,
        "layers": list(trainer.layers),
        "activation": trainer.activation,
        "config": state["config"],
        "generation": state["generation"],
        "last_batch_size": state["last_batch_size"],
        "rng_device": state["rng_device"],
    }
    return _write_files(Path(path), state["tensors"], document, format)


def load_trainer(
    path: str | os.PathLike[str],
    device: str | torch.device | None = None,
    *,
    expect: Mapping[str, Any] | None = None,
) -> GenregTrainer:
    """Rebuild a trainer from :func:`save_trainer`'s file, ready to :meth:`~GenregTrainer.fit` on.

    On a device of the type it was saved on, the continued run is the run that was saved,
    bit for bit (same device model and software); on another type the random stream is
    reseeded (see :meth:`GenregTrainer.load_state_dict`). The data passed to
    :meth:`~GenregTrainer.fit` must be the run's own: the file does not name it.

    Example:

        .. code-block:: python

            trainer = GenregTrainer(layers=[784, 64, 10], seed=0)
            trainer.fit(x, y, 5000, checkpoint="run.safetensors", checkpoint_every=100)
            # ... after a crash at generation 3456, from generation 3400:
            trainer = load_trainer("run.safetensors")
            trainer.fit(x, y, 5000 - trainer.generation, checkpoint="run.safetensors")

    Args:
        path: The file :func:`save_trainer` wrote.
        device: Device of the trainer; ``None`` = the type it was saved on when that is
            available (so a CPU run stays on the CPU), else CUDA when available, else CPU.
        expect: The :class:`GenregTrainer` arguments the saved run must have been built
            with, as they would be passed to build it afresh (arguments left out: their
            defaults; ``device`` is ignored), so that a script resumes only the run it was
            asked for.

    Returns:
        The trainer, at the saved generation.

    Raises:
        ValueError: If the file is not a GENREG trainer state (a genome file, or a damaged
            one: see :func:`load_genome`), or its run differs from ``expect`` (the message
            names the differing arguments). The message names the file.
        OSError: If the file cannot be read (e.g. it does not exist).
    """
    path = Path(path)
    document, tensors = _read_files(path)
    if document.get("kind") != _TRAINER_KIND:
        raise ValueError(
            f"{path} holds a genome (save_genome), not a trainer state (save_trainer): "
            "use load_genome."
        )
    config = document.get("config", {})
    if expect is not None:
        signature = inspect.signature(GenregTrainer).parameters.items()
        defaults = {k: p.default for k, p in signature if p.default is not inspect.Parameter.empty}
        asked = {**defaults, **expect}
        asked.pop("device", None)
        # Compared as JSON reads them back: tuples are lists there, numpy numbers plain.
        wanted = json.loads(json.dumps(asked, default=lambda v: v.item()))
        differing = sorted(k for k, v in wanted.items() if config.get(k) != v)
        if differing:
            shown = ", ".join(f"{k}={config.get(k)!r} (asked {wanted[k]!r})" for k in differing)
            raise ValueError(f"{path} holds another run: {shown}.")
    saved_on = document.get("rng_device")
    if device is None and (
        saved_on == "cpu" or (saved_on == "cuda" and torch.cuda.is_available())
    ):
        device = saved_on
    try:
        trainer = GenregTrainer(**config, device=device)
        trainer.load_state_dict({**document, "tensors": tensors})
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: not a state this GenregTrainer can continue ({e})") from e
    return trainer
