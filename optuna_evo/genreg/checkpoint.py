"""Save and reload GENREG genomes as plain tensors plus a JSON config; nothing is pickled.

:func:`save_genome` writes a `safetensors <https://huggingface.co/docs/safetensors>`_ file with
the tensors ``w0, b0, w1, b1, ...`` (weights ``[in, out]``, biases ``[out]``) and the JSON
config in its header metadata, when the ``safetensors`` package is importable. Otherwise (or
with ``format="torch"``) it writes the same tensor dict with :func:`torch.save` and the config
as JSON in ``<path>.json`` beside it; :func:`load_genome` reads that back with
``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import os
from pathlib import Path
import pickle
from typing import Any

import torch

from optuna_evo._validation import check_choice
from optuna_evo.genreg.trainer import ACTIVATIONS
from optuna_evo.genreg.trainer import Genome
from optuna_evo.genreg.trainer import GenregTrainer

FORMATS: tuple[str, ...] = ("auto", "safetensors", "torch")
"""Values of :func:`save_genome`'s ``format``."""

_META_KEY = "optuna_evo.genreg"
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
    document = {"layers": genome.layers, "activation": genome.activation, "config": merged}
    text = json.dumps(document)  # fails early on values JSON cannot hold
    tensors: dict[str, torch.Tensor] = {}
    for i, (w, b) in enumerate(zip(genome.weights, genome.biases)):
        # Fresh, contiguous CPU copies: normal tensors even if the originals are inference ones.
        tensors[f"w{i}"] = w.detach().to("cpu", copy=True).contiguous()
        tensors[f"b{i}"] = b.detach().to("cpu", copy=True).contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "safetensors" or (format == "auto" and _has_safetensors()):
        import safetensors.torch

        safetensors.torch.save_file(tensors, str(path), metadata={_META_KEY: text})
    else:
        torch.save(tensors, path)
        _config_path(path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


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


def load_genome(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Genome:
    """Read a genome written by :func:`save_genome`.

    Args:
        path: The file :func:`save_genome` returned.
        device: Device of the loaded tensors.

    Returns:
        The :class:`Genome` (its ``config`` holds the saved config).

    Raises:
        ValueError: If the file is not a GENREG genome or its tensors do not fit its layers.
    """
    path = Path(path)
    if _is_safetensors(path):
        import safetensors

        with safetensors.safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            if _META_KEY not in metadata:
                raise ValueError(f"{path} has no {_META_KEY!r} metadata: not a GENREG genome.")
            document = json.loads(metadata[_META_KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    else:
        try:  # weights_only: a genome file is never unpickled
            tensors = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
            raise ValueError(f"{path} is not a GENREG genome: {str(e).splitlines()[0]}") from e
        if not isinstance(tensors, dict):
            raise ValueError(f"{path} holds a {type(tensors).__name__}, not a GENREG genome.")
        config_path = _config_path(path)
        if not config_path.is_file():
            raise ValueError(f"{path} has no config file {config_path.name} beside it.")
        document = json.loads(config_path.read_text(encoding="utf-8"))
    layers = [int(n) for n in document["layers"]]
    activation = str(document["activation"])
    if activation not in ACTIVATIONS:
        raise ValueError(f"{path}: unknown activation {activation!r}.")
    weights, biases = [], []
    for i, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:])):
        w, b = tensors.get(f"w{i}"), tensors.get(f"b{i}")
        if w is None or b is None or tuple(w.shape) != (n_in, n_out) or tuple(b.shape) != (n_out,):
            raise ValueError(f"{path}: tensors w{i} / b{i} missing or not of layers {layers}.")
        weights.append(w.to(device))
        biases.append(b.to(device))
    return Genome(weights, biases, activation, dict(document.get("config", {})))
