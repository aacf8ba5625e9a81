"""Architecture specifications for fully connected networks.

An :class:`Architecture` is a small, pure-Python description of a multilayer perceptron: the
layer widths, one activation and one block type per hidden layer, a dropout rate and optional
skip connections.
It is what the architecture helpers produce from a trial and what
:class:`optuna_evo.objectives.MLP` builds a network from. It imports no deep-learning library,
so samplers and operators can create, compare and mutate architectures cheaply.

Hidden layers are numbered ``0 .. n_hidden - 1``; "block" ``k`` maps ``widths[k]`` to
``widths[k + 1]`` and, for ``k < n_hidden``, is followed by its activation (and dropout). Block
``n_hidden`` is the linear output layer. A skip edge ``(i, j)`` adds the output of hidden layer
``i`` to the input of block ``j``; ``j = i + 2`` is the usual residual connection around one
block, and ``j = n_hidden`` feeds the output layer. A hidden layer's *block type* is
``"linear"`` (``Linear -> activation``) or ``"residual"`` (``Linear -> activation`` plus the
block's own input, projected when the widths differ).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass
import itertools
import math
import re
from typing import Any
from typing import TypeVar

from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import IntDistribution

from optuna_evo._validation import check_bool
from optuna_evo._validation import check_choice
from optuna_evo._validation import check_float
from optuna_evo._validation import check_int

ACTIVATIONS: tuple[str, ...] = ("relu", "tanh", "gelu", "sigmoid", "silu", "leaky_relu")
"""Activation names an :class:`Architecture` may use."""

BLOCKS: tuple[str, ...] = ("linear", "residual")
"""Block types a hidden layer may have (see the module docstring)."""

_V = TypeVar("_V")

_FIELDS = ("widths", "activations", "dropout", "skips", "blocks")


@dataclass(frozen=True, init=False)
class Architecture:
    """Specification of a multilayer perceptron.

    Instances are immutable (assigning an attribute raises
    :class:`dataclasses.FrozenInstanceError`); the list fields are private copies, so build a
    changed architecture with :meth:`replace` instead of mutating them. Architectures compare
    and hash by value, which makes them usable as dictionary keys (e.g. to detect duplicates).

    Args:
        widths:
            Layer widths ``[n_inputs, hidden_1, ..., hidden_k, n_outputs]``; at least two
            entries, each a positive integer.
        activations:
            One name from :data:`ACTIVATIONS` per hidden layer (``len(widths) - 2`` entries).
            A single string is broadcast to every hidden layer.
        dropout:
            Dropout probability after every hidden activation, in ``[0, 1)``.
        skips:
            Skip edges ``(i, j)`` between hidden layers: the output of hidden layer ``i`` is
            added to the input of block ``j``. Requires ``0 <= i`` and
            ``i + 2 <= j <= n_hidden``; no duplicates. Stored sorted.
        blocks:
            One block type from :data:`BLOCKS` per hidden layer; a single string is broadcast
            and an empty list means all ``"linear"``.

    Raises:
        ValueError: If an argument is out of its allowed range; the message names it.

    Example:
        .. code-block:: python

            arch = Architecture(widths=[784, 256, 256, 10], activations="relu", skips=[(0, 2)])
            assert Architecture.from_dict(arch.to_dict()) == arch
    """

    widths: list[int]
    activations: list[str]
    dropout: float
    skips: list[tuple[int, int]]
    blocks: list[str]

    # An explicit constructor, because it takes more than it stores (a single activation or
    # block name for every layer) and the stored fields are normalised, validated copies.
    def __init__(
        self,
        widths: Sequence[int],
        activations: Sequence[str] | str = (),
        dropout: float = 0.0,
        skips: Sequence[tuple[int, int]] = (),
        blocks: Sequence[str] | str = (),
    ) -> None:
        widths = _validate_widths(widths)
        n_hidden = len(widths) - 2
        activations = _validate_activations(activations, n_hidden)
        dropout = check_float("dropout", dropout, 0, 1, high_open=True)
        skips = _validate_skips(skips, n_hidden)
        blocks = _validate_blocks(blocks, n_hidden)
        # Frozen dataclass: the fields are installed through object.__setattr__.
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "activations", activations)
        object.__setattr__(self, "dropout", dropout)
        object.__setattr__(self, "skips", skips)
        object.__setattr__(self, "blocks", blocks)

    def __hash__(self) -> int:
        return hash(
            (
                tuple(self.widths),
                tuple(self.activations),
                self.dropout,
                tuple(self.skips),
                tuple(self.blocks),
            )
        )

    @property
    def n_hidden(self) -> int:
        """Number of hidden layers (``len(widths) - 2``)."""
        return len(self.widths) - 2

    @property
    def n_inputs(self) -> int:
        """Input width (``widths[0]``)."""
        return self.widths[0]

    @property
    def n_outputs(self) -> int:
        """Output width (``widths[-1]``)."""
        return self.widths[-1]

    def replace(self, **changes: Any) -> Architecture:
        """Return a validated copy with some fields changed.

        Args:
            changes: New values for any of ``widths``, ``activations``, ``dropout``, ``skips``,
                ``blocks``.

        Returns:
            A new :class:`Architecture`.
        """
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dictionary (lists only, no tuples).

        Returns:
            ``{"widths": [...], "activations": [...], "dropout": float, "skips": [[i, j], ...],
            "blocks": [...]}``.
        """
        return {
            "widths": list(self.widths),
            "activations": list(self.activations),
            "dropout": self.dropout,
            "skips": [[i, j] for i, j in self.skips],
            "blocks": list(self.blocks),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Architecture:
        """Build an architecture from :meth:`to_dict` output (e.g. after a JSON round trip).

        Args:
            data: Mapping with ``widths``, ``activations`` (one per hidden layer; may be left
                out without hidden layers) and optionally ``dropout``, ``skips``, ``blocks``
                (absent in architectures stored before block types existed).

        Returns:
            The validated :class:`Architecture`.

        Raises:
            ValueError: If keys are missing or unknown, or a value is invalid.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"`data` must be a mapping, got {type(data).__name__}.")
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise ValueError(f"`data` has unknown keys {unknown}; allowed: {list(_FIELDS)}.")
        if "widths" not in data:
            raise ValueError("`data` must contain 'widths'.")
        skips_raw = data.get("skips", [])
        if not isinstance(skips_raw, Sequence) or isinstance(skips_raw, str):
            raise ValueError(f"`skips` must be a list of [i, j] pairs, got {skips_raw!r}.")
        skips = [_as_pair(edge) for edge in skips_raw]
        return cls(
            widths=list(data["widths"]),
            activations=data.get("activations", []),
            dropout=data.get("dropout", 0.0),
            skips=skips,
            blocks=data.get("blocks", []),
        )


def _as_pair(edge: Any) -> tuple[int, int]:
    if isinstance(edge, str) or not isinstance(edge, Sequence) or len(edge) != 2:
        raise ValueError(f"`skips` entries must be pairs (i, j) of ints, got {edge!r}.")
    return (edge[0], edge[1])


def _fit(values: list[_V], n: int) -> list[_V]:
    """``values`` cut or padded (by repeating its last entry) to length ``n``."""
    return (values + values[-1:] * n)[:n]


def _validate_widths(widths: Any) -> list[int]:
    if isinstance(widths, str) or not isinstance(widths, Sequence):
        raise ValueError(f"`widths` must be a list of positive ints, got {widths!r}.")
    if len(widths) < 2:
        raise ValueError(
            f"`widths` must have at least 2 entries (inputs and outputs), got {len(widths)}."
        )
    return [check_int(f"widths[{k}]", w, 1) for k, w in enumerate(widths)]


def _validate_activations(activations: Any, n_hidden: int) -> list[str]:
    if isinstance(activations, str):
        activations = [activations] * n_hidden
    if not isinstance(activations, Sequence):
        raise ValueError(f"`activations` must be a list of names, got {activations!r}.")
    out = list(activations)
    if len(out) != n_hidden:
        raise ValueError(
            f"`activations` must have one entry per hidden layer ({n_hidden}), got {len(out)}."
        )
    return [check_choice(f"activations[{k}]", name, ACTIVATIONS) for k, name in enumerate(out)]


def _validate_blocks(blocks: Any, n_hidden: int) -> list[str]:
    if isinstance(blocks, str):
        blocks = [blocks] * n_hidden
    if not isinstance(blocks, Sequence):
        raise ValueError(f"`blocks` must be a list of block types, got {blocks!r}.")
    out = list(blocks) or ["linear"] * n_hidden
    if len(out) != n_hidden:
        raise ValueError(
            f"`blocks` must have one entry per hidden layer ({n_hidden}), got {len(out)}."
        )
    return [check_choice(f"blocks[{k}]", name, BLOCKS) for k, name in enumerate(out)]


def _bound(space: Mapping[str, Any], key: str, default: int) -> int:
    # Only the type here: ArchitectureSpace checks the ranges and their order.
    return check_int(f"search_space[{key!r}]", space.get(key, default))


def _validate_skips(skips: Any, n_hidden: int) -> list[tuple[int, int]]:
    if isinstance(skips, str) or not isinstance(skips, Sequence):
        raise ValueError(f"`skips` must be a list of (i, j) pairs, got {skips!r}.")
    out: list[tuple[int, int]] = []
    for k, edge in enumerate(skips):
        i, j = _as_pair(edge)
        i, j = check_int(f"skips[{k}][0]", i), check_int(f"skips[{k}][1]", j)
        if not (0 <= i and i + 2 <= j <= n_hidden):
            raise ValueError(
                f"`skips[{k}]` must satisfy 0 <= i and i + 2 <= j <= n_hidden "
                f"(n_hidden={n_hidden}), got the skip edge ({i}, {j})."
            )
        if (i, j) in out:
            raise ValueError(f"`skips` must not contain the edge ({i}, {j}) twice.")
        out.append((i, j))
    return sorted(out)


ARCHITECTURE_KEY = "optuna_evo:architecture"
"""Trial system attr holding the architecture a sampler planned for a trial (``to_dict``)."""

N_HIDDEN_PARAM = "arch_n_hidden"
WIDTH_PARAM = "arch_width_{}"
ACTIVATION_PARAM = "arch_activation"
LAYER_ACTIVATION_PARAM = "arch_activation_{}"
BLOCK_PARAM = "arch_block_{}"
SKIP_PARAM = "arch_skip_{}"
MUTATIONS = (
    "add_layer",
    "remove_layer",
    "change_width",
    "change_activation",
    "change_block",
    "toggle_skip",
)
"""Architecture mutations; the last two only where the space has block types / skips."""

_SPACE_KEYS = (
    "layers",
    "activations",
    "min_layers",
    "max_layers",
    "min_width",
    "max_width",
    "blocks",
    "skips",
    "layer_activations",
)
_PARAM_PATTERN = re.compile(r"arch_(n_hidden|activation|(width|activation|block|skip)_(\d+))")


@dataclass(frozen=True)
class ArchitectureSpace:
    """The architectures an evolutionary search may visit, and how they mutate.

    Built from a search-space mapping with :meth:`from_dict`:
    ``{"layers": [[784, 128, 10], [784, 256, 128, 10]], "activations": ["relu", "tanh"]}``
    plus optional bounds. Every entry of ``layers`` must share the input and output widths.
    Default bounds: ``min_layers`` = 1 (0 if an entry has no hidden layer), ``max_layers`` =
    the deepest entry's hidden layers + 2, ``min_width`` = half the narrowest hidden width (at
    least 1), ``max_width`` = twice the widest hidden width. Mutations never leave these bounds.

    Optional genes (all off by default, which keeps the parameters below unchanged):
    ``"blocks": ["linear", "residual"]`` gives each hidden layer a block type,
    ``"skips": True`` adds a skip edge ``k -> k + 2`` gene per layer, and
    ``"layer_activations": True`` gives each hidden layer its own activation.

    As trial parameters an architecture is ``arch_n_hidden`` (int), ``arch_width_0`` ..
    ``arch_width_{n-1}`` (log-int in [min_width, max_width]) and ``arch_activation``
    (categorical; ``arch_activation_{k}`` per layer with ``layer_activations``), plus
    ``arch_block_{k}`` (categorical, when more than one block type is allowed) and
    ``arch_skip_{k}`` for ``k < n - 1`` (categorical ``[False, True]``: edge ``(k, k + 2)``),
    so it shows in optuna-dashboard and any Optuna sampler can search it.

    Args:
        layers: Initial architectures as width lists ``[n_inputs, hidden..., n_outputs]``.
        activations: Allowed activation names (from :data:`ACTIVATIONS`).
        min_layers: Fewest hidden layers, >= 0.
        max_layers: Most hidden layers, >= min_layers.
        min_width: Narrowest hidden layer, >= 1.
        max_width: Widest hidden layer, >= min_width.
        blocks: Allowed block types (from :data:`BLOCKS`); the first is the default.
        skips: Whether skip edges ``k -> k + 2`` are part of the genome.
        layer_activations: One activation gene per hidden layer instead of one for all.
    """

    layers: tuple[tuple[int, ...], ...]
    activations: tuple[str, ...]
    min_layers: int
    max_layers: int
    min_width: int
    max_width: int
    blocks: tuple[str, ...] = ("linear",)
    skips: bool = False
    layer_activations: bool = False

    def __post_init__(self) -> None:
        lows = {"min_layers": 0, "max_layers": 0, "min_width": 1, "max_width": 1}
        for name, low in lows.items():
            object.__setattr__(self, name, check_int(name, getattr(self, name), low))
        if self.min_layers > self.max_layers:
            raise ValueError(
                f"`max_layers` must be >= `min_layers`={self.min_layers}, got {self.max_layers}."
            )
        if self.min_width > self.max_width:
            raise ValueError(
                f"`max_width` must be >= `min_width`={self.min_width}, got {self.max_width}."
            )
        if not self.blocks or any(b not in BLOCKS for b in self.blocks):
            raise ValueError(
                f"`blocks` must be a non-empty list of entries from {BLOCKS}, got {self.blocks}."
            )
        for entry in self.layers:
            hidden = entry[1:-1]
            if not (self.min_layers <= len(hidden) <= self.max_layers) or any(
                not (self.min_width <= w <= self.max_width) for w in hidden
            ):
                raise ValueError(
                    f"`layers` entry {list(entry)} must lie within the bounds {self}."
                )

    @classmethod
    def from_dict(cls, space: Mapping[str, Any]) -> ArchitectureSpace:
        """Build and validate a space from ``{"layers": ..., "activations": ..., bounds}``."""
        if not isinstance(space, Mapping):
            raise ValueError(f"`search_space` must be a mapping, got {type(space).__name__}.")
        unknown = sorted(set(space) - set(_SPACE_KEYS))
        if unknown:
            raise ValueError(f"`search_space` has unknown keys {unknown}; allowed: {_SPACE_KEYS}.")
        layers = space.get("layers")
        if not isinstance(layers, Sequence) or len(layers) == 0:
            raise ValueError("`search_space['layers']` must be a non-empty list of width lists.")
        entries = tuple(tuple(_validate_widths(entry)) for entry in layers)
        if len({(e[0], e[-1]) for e in entries}) != 1:
            raise ValueError(
                "all `search_space['layers']` entries must share input/output widths."
            )
        activations = space.get("activations", ["relu"])
        if (
            isinstance(activations, str)
            or not isinstance(activations, Sequence)
            or not activations
        ):
            raise ValueError("`search_space['activations']` must be a non-empty list of names.")
        for k, name in enumerate(activations):
            check_choice(f"search_space['activations'][{k}]", name, ACTIVATIONS)
        blocks = space.get("blocks", ["linear"])
        if isinstance(blocks, str) or not isinstance(blocks, Sequence) or not blocks:
            raise ValueError(
                f"`search_space['blocks']` must be a non-empty list from {BLOCKS}, got {blocks!r}."
            )
        for k, name in enumerate(blocks):
            check_choice(f"search_space['blocks'][{k}]", name, BLOCKS)
        skips = check_bool("search_space['skips']", space.get("skips", False))
        layer_activations = check_bool(
            "search_space['layer_activations']", space.get("layer_activations", False)
        )
        hidden = [w for e in entries for w in e[1:-1]] or [max(entries[0][-1], 1)]
        return cls(
            layers=entries,
            activations=tuple(dict.fromkeys(activations)),
            min_layers=_bound(space, "min_layers", min(1, *(len(e) - 2 for e in entries))),
            max_layers=_bound(space, "max_layers", max(len(e) - 2 for e in entries) + 2),
            min_width=_bound(space, "min_width", max(1, min(hidden) // 2)),
            max_width=_bound(space, "max_width", 2 * max(hidden)),
            blocks=tuple(dict.fromkeys(blocks)),
            skips=skips,
            layer_activations=layer_activations,
        )

    @property
    def n_inputs(self) -> int:
        """Input width shared by every architecture."""
        return self.layers[0][0]

    @property
    def n_outputs(self) -> int:
        """Output width shared by every architecture."""
        return self.layers[0][-1]

    def fixed(self) -> Architecture:
        """The single-mode architecture: the first ``layers`` entry, first activation."""
        return Architecture(list(self.layers[0]), self.activations[0], blocks=self.blocks[0])

    def sample(self, rng: Any) -> Architecture:
        """Draw an initial architecture uniformly from ``layers`` × ``activations``.

        With block types or skips in the genome, each hidden layer also draws its block type
        uniformly and each skip edge ``k -> k + 2`` is on with probability 1/2.
        """
        widths = self.layers[int(rng.randint(len(self.layers)))]
        arch = Architecture(
            list(widths),
            self.activations[int(rng.randint(len(self.activations)))],
            blocks=self.blocks[0],
        )
        n = arch.n_hidden
        if len(self.blocks) > 1:
            arch = arch.replace(
                blocks=[self.blocks[int(rng.randint(len(self.blocks)))] for _ in range(n)]
            )
        if self.skips:
            arch = arch.replace(skips=[(k, k + 2) for k in range(n - 1) if rng.rand() < 0.5])
        return arch

    def mutate(self, arch: Architecture, rng: Any) -> tuple[Architecture, str]:
        """Apply one random mutation allowed by the bounds and the genome.

        Returns:
            The mutated architecture and the mutation's name (one of :data:`MUTATIONS`, or
            ``"none"`` when the bounds allow none).
        """
        hidden = list(arch.widths[1:-1])
        n = len(hidden)
        ops = []
        if n < self.max_layers:
            ops.append("add_layer")
        if n > self.min_layers:
            ops.append("remove_layer")
        if n > 0 and self.min_width < self.max_width:
            ops.append("change_width")
        if n > 0 and len(self.activations) > 1:
            ops.append("change_activation")
        if n > 0 and len(self.blocks) > 1:
            ops.append("change_block")
        if self.skips and n >= 2:
            ops.append("toggle_skip")
        if not ops:
            return arch, "none"
        op = ops[int(rng.randint(len(ops)))]
        default = arch.activations[0] if arch.activations else self.activations[0]
        activations = list(arch.activations)
        blocks = list(arch.blocks)
        skips = list(arch.skips)
        if op == "add_layer":
            pos = int(rng.randint(n + 1))
            width = hidden[min(pos, n - 1)] if n else self._clamp(self.n_outputs * 4)
            hidden.insert(pos, width)
            activations.insert(pos, activations[min(pos, n - 1)] if n else default)
            blocks.insert(pos, self.blocks[0])
            skips = _shift_skips(skips, pos, +1, n + 1)
        elif op == "remove_layer":
            pos = int(rng.randint(n))
            del hidden[pos], activations[pos], blocks[pos]
            skips = _shift_skips(skips, pos, -1, n - 1)
        elif op == "change_width":
            k = int(rng.randint(n))
            old = hidden[k]
            new = self._clamp(round(old * math.exp(rng.normal(0.0, 0.5))))
            if new == old:  # always change something
                new = self._clamp(old + 1) if old < self.max_width else old - 1
            hidden[k] = new
        elif op == "change_activation":
            k = int(rng.randint(n)) if self.layer_activations else 0
            others = [a for a in self.activations if a != activations[k]]
            new_activation = others[int(rng.randint(len(others)))]
            if self.layer_activations:
                activations[k] = new_activation
            else:
                activations = [new_activation] * n
        elif op == "change_block":
            k = int(rng.randint(n))
            others = [b for b in self.blocks if b != blocks[k]]
            blocks[k] = others[int(rng.randint(len(others)))]
        else:  # toggle_skip
            k = int(rng.randint(n - 1))
            edge = (k, k + 2)
            skips = [e for e in skips if e != edge] if edge in skips else [*skips, edge]
        if not self.layer_activations and activations:
            activations = [activations[0]] * len(hidden)
        if self.skips:  # the genome holds k -> k + 2 edges only; shifted ones are dropped
            skips = [(i, j) for i, j in skips if j == i + 2]
        widths = [arch.n_inputs, *hidden, arch.n_outputs]
        mutated = arch.replace(widths=widths, activations=activations, blocks=blocks, skips=skips)
        return mutated, op

    def project(self, arch: Architecture) -> Architecture:
        """Return ``arch`` made expressible by this space's trial parameters.

        The number of hidden layers is brought into ``[min_layers, max_layers]`` (the last
        layers dropped, or the last one repeated; e.g. a crossover of two deep parents, or a
        study resumed with a smaller ``max_layers``); the input and output widths become the
        space's (a study resumed with one more feature); widths are clamped to the bounds; without
        ``layer_activations`` every layer takes the first layer's activation; activations and
        block types the space does not allow are replaced by its first; skip edges are kept
        only if they are ``k -> k + 2`` edges of a space with ``skips`` that still fit.
        """
        n = min(max(arch.n_hidden, self.min_layers), self.max_layers)
        hidden = list(arch.widths[1:-1]) or [self.layers[0][1] if len(self.layers[0]) > 2 else 1]
        activations = list(arch.activations) or [self.activations[0]]
        blocks = list(arch.blocks) or [self.blocks[0]]
        hidden, activations, blocks = _fit(hidden, n), _fit(activations, n), _fit(blocks, n)
        activations = [a if a in self.activations else self.activations[0] for a in activations]
        if not self.layer_activations and activations:
            activations = [activations[0]] * n
        return arch.replace(
            widths=[self.n_inputs, *(self._clamp(w) for w in hidden), self.n_outputs],
            activations=activations,
            blocks=[b if b in self.blocks else self.blocks[0] for b in blocks],
            skips=[(i, j) for i, j in arch.skips if self.skips and j == i + 2 and j <= n],
        )

    def _clamp(self, width: int) -> int:
        return int(min(max(width, self.min_width), self.max_width))

    def is_param(self, name: str) -> bool:
        """Whether ``name`` is one of the architecture's trial parameters."""
        return _PARAM_PATTERN.fullmatch(name) is not None

    def param_distributions(self, n_hidden: int) -> dict[str, BaseDistribution]:
        """The parameters (in suggestion order) of an architecture with ``n_hidden`` layers.

        These are exactly the distributions :meth:`suggest` uses, so values drawn from them
        can be handed back through a sampler.
        """
        out: dict[str, BaseDistribution] = {
            N_HIDDEN_PARAM: IntDistribution(self.min_layers, self.max_layers)
        }
        for k in range(n_hidden):
            out[WIDTH_PARAM.format(k)] = IntDistribution(self.min_width, self.max_width, log=True)
        activations = CategoricalDistribution(list(self.activations))
        if self.layer_activations:
            for k in range(n_hidden):
                out[LAYER_ACTIVATION_PARAM.format(k)] = activations
        else:
            out[ACTIVATION_PARAM] = activations
        if len(self.blocks) > 1:
            for k in range(n_hidden):
                out[BLOCK_PARAM.format(k)] = CategoricalDistribution(list(self.blocks))
        if self.skips:
            for k in range(n_hidden - 1):
                out[SKIP_PARAM.format(k)] = CategoricalDistribution([False, True])
        return out

    def param_value(self, arch: Architecture, name: str) -> Any:
        """The value ``arch`` gives the trial parameter ``name`` (None if it has none)."""
        match = _PARAM_PATTERN.fullmatch(name)
        if match is None:
            return None
        if name == N_HIDDEN_PARAM:
            return arch.n_hidden
        if name == ACTIVATION_PARAM:
            return arch.activations[0] if arch.activations else self.activations[0]
        kind, k = match.group(2), int(match.group(3))
        if kind == "skip":
            return (k, k + 2) in arch.skips if k + 2 <= arch.n_hidden else None
        if k >= arch.n_hidden:
            return None
        if kind == "width":
            return arch.widths[1 + k]
        return arch.activations[k] if kind == "activation" else arch.blocks[k]

    def to_params(self, arch: Architecture) -> dict[str, Any]:
        """The trial parameters of ``arch`` (see :meth:`param_distributions`)."""
        return {
            name: self.param_value(arch, name) for name in self.param_distributions(arch.n_hidden)
        }

    def from_params(self, params: Mapping[str, Any]) -> Architecture | None:
        """Rebuild the architecture that :meth:`suggest` returns for these parameter values.

        Genes the space has but ``params`` lacks take their defaults (first activation, first
        block type, no skip), so parameters recorded before a gene existed still work.

        Returns:
            The architecture, or ``None`` if the depth or a width is missing.
        """
        try:
            n = check_int(N_HIDDEN_PARAM, params.get(N_HIDDEN_PARAM))
            widths = [
                check_int(WIDTH_PARAM.format(k), params.get(WIDTH_PARAM.format(k)))
                for k in range(n)
            ]
        except ValueError:  # Missing (None) or not an integer: not an architecture.
            return None
        if self.layer_activations:
            activations = [
                params.get(LAYER_ACTIVATION_PARAM.format(k), self.activations[0]) for k in range(n)
            ]
        else:
            activations = [params.get(ACTIVATION_PARAM, self.activations[0])] * n
        blocks = [params.get(BLOCK_PARAM.format(k), self.blocks[0]) for k in range(n)]
        skips = [(k, k + 2) for k in range(n - 1) if params.get(SKIP_PARAM.format(k)) is True]
        return Architecture(
            [self.n_inputs, *widths, self.n_outputs], activations, skips=skips, blocks=blocks
        )

    def suggest(self, trial: Any) -> Architecture:
        """Suggest an architecture as trial parameters (see the class docstring)."""
        n = trial.suggest_int(N_HIDDEN_PARAM, self.min_layers, self.max_layers)
        widths = [
            trial.suggest_int(WIDTH_PARAM.format(k), self.min_width, self.max_width, log=True)
            for k in range(n)
        ]
        choices = list(self.activations)
        if self.layer_activations:
            activations = [
                trial.suggest_categorical(LAYER_ACTIVATION_PARAM.format(k), choices)
                for k in range(n)
            ]
        else:
            activations = [trial.suggest_categorical(ACTIVATION_PARAM, choices)] * n
        if len(self.blocks) > 1:
            blocks = [
                trial.suggest_categorical(BLOCK_PARAM.format(k), list(self.blocks))
                for k in range(n)
            ]
        else:
            blocks = [self.blocks[0]] * n
        skips = []
        if self.skips:
            skips = [
                (k, k + 2)
                for k in range(n - 1)
                if trial.suggest_categorical(SKIP_PARAM.format(k), [False, True])
            ]
        return Architecture(
            [self.n_inputs, *widths, self.n_outputs], activations, skips=skips, blocks=blocks
        )


def _shift_skips(
    skips: list[tuple[int, int]], pos: int, delta: int, n_hidden: int
) -> list[tuple[int, int]]:
    # Re-index skip edges after inserting (+1) or deleting (-1) hidden layer ``pos``; edges
    # that touch a deleted layer or become invalid are dropped.
    out = []
    for i, j in skips:
        if delta < 0 and i == pos:
            continue
        i2 = i + delta if i >= pos else i
        j2 = j + delta if j > pos else j
        if 0 <= i2 and i2 + 2 <= j2 <= n_hidden:
            out.append((i2, j2))
    return out


def align_hidden_layers(parent: Architecture, child: Architecture) -> dict[int, int]:
    """Which hidden layer of ``child`` continues each hidden layer of ``parent``.

    A child inheriting weights should get each trained layer on the layer it became: after an
    added or removed layer, the layers behind it moved by one place. Equal depths map every
    layer to itself (a width or activation change keeps the layer's place). Otherwise the
    layers are matched in order on equal ``(width, block type)``, as many as possible (a
    longest common subsequence); among such matchings the one that carries the most skip
    edges onto skip edges of the child wins (a mutation moves them with their layers), then
    the one whose matched layers also keep their input width, then the one matching the
    earliest layers. Unmatched layers continue nothing: a new layer
    keeps its fresh weights, a removed one is dropped.

    Args:
        parent: The architecture the weights were trained in.
        child: The architecture that inherits them.

    Returns:
        ``{parent hidden index: child hidden index}``, increasing in both.
    """
    if parent.n_hidden == child.n_hidden:
        return {k: k for k in range(parent.n_hidden)}
    a = list(zip(parent.widths[1:-1], parent.blocks))
    b = list(zip(child.widths[1:-1], child.blocks))
    # longest[i][j]: most matches between a[i:] and b[j:].
    longest = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            longest[i][j] = (
                longest[i + 1][j + 1] + 1
                if a[i] == b[j]
                else max(longest[i + 1][j], longest[i][j + 1])
            )
    pairs: dict[int, int] = {}
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j] and longest[i][j] == longest[i + 1][j + 1] + 1:
            pairs[i] = j
            i, j = i + 1, j + 1
        elif longest[i + 1][j] >= longest[i][j + 1]:
            i += 1
        else:
            j += 1
    if math.comb(len(a), len(pairs)) * math.comb(len(b), len(pairs)) > 4096:
        return pairs  # too many equally long matchings to weigh: the earliest one

    def score(match: dict[int, int]) -> tuple[int, int]:
        blocks = {**match, parent.n_hidden: child.n_hidden}  # the output block stays last
        edges = {(match.get(i), blocks.get(j)) for i, j in parent.skips}
        same_input = sum(parent.widths[p] == child.widths[c] for p, c in match.items())
        return len(edges & set(child.skips)), same_input

    best, best_score = pairs, score(pairs)
    for kept in itertools.combinations(range(len(a)), len(pairs)):
        for into in itertools.combinations(range(len(b)), len(pairs)):
            if all(a[p] == b[c] for p, c in zip(kept, into)):
                match = dict(zip(kept, into))
                if score(match) > best_score:  # strictly: ties keep the earliest layers
                    best, best_score = match, score(match)
    return best


def suggest_architecture(trial: Any, search_space: Mapping[str, Any]) -> Architecture:
    """Suggest an MLP architecture from ``search_space`` in a define-by-run objective.

    With :class:`~optuna_evo.MAGESampler` (or :class:`~optuna_evo.GeneticSampler` given the
    same ``architecture_space``) the values are the trial's planned architecture: fixed in
    MAGE's single mode; in multi mode drawn from ``layers`` × ``activations`` in generation 0
    (GeneticSampler's generation 0 samples them as ordinary parameters within the bounds) and
    inherited, crossed over and mutated afterwards. With any other sampler they are searched
    as ordinary parameters within the bounds of :class:`ArchitectureSpace`.

    Args:
        trial: The trial.
        search_space: ``{"layers": [...], "activations": [...]}`` plus optional bounds and
            genes (see :class:`ArchitectureSpace`).

    Returns:
        The :class:`Architecture` (its params are visible in optuna-dashboard).
    """
    return ArchitectureSpace.from_dict(search_space).suggest(trial)
