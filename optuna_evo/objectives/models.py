"""Models used by the objectives: an MLP built from an architecture, the seed CNN, and a
nanoGPT-style character transformer.

Every model outputs raw logits (use :func:`torch.nn.functional.cross_entropy`) and exposes its
parameter count as ``model.n_params`` (see also :func:`count_parameters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import math
import re

import torch
from torch import nn
from torch.nn import functional as F

from optuna_evo._validation import check_choice
from optuna_evo._validation import check_float
from optuna_evo._validation import check_int
from optuna_evo.architecture import ACTIVATIONS
from optuna_evo.architecture import Architecture
from optuna_evo.architecture import align_hidden_layers


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``model``; tied (shared) tensors are counted once.

    Args:
        model: Any module.
        trainable_only: Count only parameters with ``requires_grad``.

    Returns:
        The parameter count.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class _CountsParameters:
    """Mixin adding the ``n_params`` property."""

    @property
    def n_params(self) -> int:
        """Number of scalar parameters (tied tensors counted once)."""
        return count_parameters(self)  # type: ignore[arg-type]


def make_activation(name: str) -> nn.Module:
    """Return the activation module for a name in :data:`~optuna_evo.architecture.ACTIVATIONS`.

    Raises:
        ValueError: If ``name`` is unknown.
    """
    factories = {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "gelu": nn.GELU,
        "sigmoid": nn.Sigmoid,
        "silu": nn.SiLU,
        "leaky_relu": nn.LeakyReLU,
    }
    return factories[check_choice("activation", name, ACTIVATIONS)]()


_LAYER_KEY = re.compile(r"(?P<kind>linears|residual_projections)\.(?P<k>\d+)\.(?P<rest>.+)")
_SKIP_KEY = re.compile(r"skip_projections\.(?P<i>\d+)_(?P<j>\d+)\.(?P<rest>.+)")


class MLP(_CountsParameters, nn.Module):
    """Multilayer perceptron built from an :class:`~optuna_evo.architecture.Architecture`.

    Inputs are flattened, so image batches ``(N, C, H, W)`` work when
    ``arch.widths[0] == C * H * W``. Hidden block ``k`` is ``Linear -> activation -> Dropout``;
    a ``"residual"`` block (``arch.blocks[k]``) adds its own input to that output, through a
    bias-free ``nn.Linear`` projection when its input and output widths differ. The last block
    is a plain ``Linear`` producing logits. A skip edge ``(i, j)`` adds the output of hidden
    layer ``i`` to the input of block ``j``, through a bias-free ``nn.Linear`` projection when
    the widths differ.

    Parameter count: every block ``k`` has ``w[k] * w[k+1] + w[k+1]``; a residual block adds
    ``w[k] * w[k+1]`` when ``w[k] != w[k+1]``; a skip edge ``(i, j)`` adds
    ``w[i+1] * w[j]`` when ``w[i+1] != w[j]`` (``w`` = ``arch.widths``).

    Args:
        arch: The architecture.
    """

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        if not isinstance(arch, Architecture):
            raise ValueError(f"`arch` must be an Architecture, got {type(arch).__name__}.")
        self.arch = arch
        w = arch.widths
        self.linears = nn.ModuleList(nn.Linear(w[k], w[k + 1]) for k in range(len(w) - 1))
        self.activations = nn.ModuleList(make_activation(a) for a in arch.activations)
        self.dropout = nn.Dropout(arch.dropout) if arch.dropout > 0 else nn.Identity()
        # Hidden layer i has width w[i + 1]; block j takes inputs of width w[j].
        self.skip_projections = nn.ModuleDict(
            {
                f"{i}_{j}": (
                    nn.Identity() if w[i + 1] == w[j] else nn.Linear(w[i + 1], w[j], bias=False)
                )
                for i, j in arch.skips
            }
        )
        # Block k maps width w[k] to w[k + 1]; a residual block adds its (projected) input.
        self.residual_projections = nn.ModuleDict(
            {
                str(k): nn.Identity()
                if w[k] == w[k + 1]
                else nn.Linear(w[k], w[k + 1], bias=False)
                for k, block in enumerate(arch.blocks)
                if block == "residual"
            }
        )
        self._skips_into: dict[int, list[tuple[int, str]]] = {}
        for i, j in arch.skips:
            self._skips_into.setdefault(j, []).append((i, f"{i}_{j}"))

    def inherit_state(
        self, parent: Architecture, state: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """A ``parent`` MLP's state dict, arranged for this MLP to inherit it.

        Module names hold layer positions (``linears.{k}``; the output layer is
        ``linears.{n_hidden}``), which an added or removed hidden layer shifts. Hidden layers
        are matched with :func:`~optuna_evo.architecture.align_hidden_layers`, the output layer
        always with the output layer, and skip and residual projections with the layers they
        connect; tensors of unmatched parent layers are left out. A square hidden layer this
        MLP adds starts close to the identity (Net2Net's deeper network), so the child starts
        near its parent's function instead of with a random layer in its middle: a linear
        block gets ``W = I, b = 0`` (exact for ReLU after a ReLU layer, whose outputs it passes
        on unchanged; approximate for other activations), a residual block its fresh weights
        scaled by 1e-3 and ``b = 0`` (it adds almost nothing to its input while ``act(0) = 0``,
        and can still learn; not done for sigmoid). An added layer that changes the width
        keeps its fresh weights.

        Args:
            parent: The parent's architecture.
            state: The parent's state dict.

        Returns:
            Tensors under this MLP's keys (a key it lacks is simply not copied by a loader).
        """
        hidden = align_hidden_layers(parent, self.arch)
        blocks = {**hidden, parent.n_hidden: self.arch.n_hidden}  # block k makes layer k
        out: dict[str, torch.Tensor] = {}
        for key, tensor in state.items():
            if m := _LAYER_KEY.fullmatch(key):
                k = (blocks if m["kind"] == "linears" else hidden).get(int(m["k"]))
                if k is not None:
                    out[f"{m['kind']}.{k}.{m['rest']}"] = tensor
            elif m := _SKIP_KEY.fullmatch(key):
                i, j = hidden.get(int(m["i"])), blocks.get(int(m["j"]))
                if i is not None and j is not None:
                    out[f"skip_projections.{i}_{j}.{m['rest']}"] = tensor
            else:
                out[key] = tensor
        w = self.arch.widths
        for k in sorted(set(range(self.arch.n_hidden)) - set(hidden.values())):
            if parent.n_hidden >= self.arch.n_hidden or w[k] != w[k + 1]:
                continue
            if self.arch.blocks[k] == "linear":
                weight = torch.eye(w[k])
            elif self.arch.activations[k] != "sigmoid":
                linear = self.linears[k]
                assert isinstance(linear, nn.Linear)
                weight = linear.weight.detach().cpu() * 1e-3  # not 0: ReLU'(0) = 0 stalls it
            else:
                continue
            out[f"linears.{k}.weight"] = weight
            out[f"linears.{k}.bias"] = torch.zeros(w[k + 1])
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits of shape ``(N, arch.widths[-1])``."""
        h = x.flatten(1)
        hidden: list[torch.Tensor] = []
        n_hidden = self.arch.n_hidden
        for k, linear in enumerate(self.linears):
            for i, key in self._skips_into.get(k, ()):
                h = h + self.skip_projections[key](hidden[i])
            x = h
            h = linear(h)
            if k < n_hidden:
                h = self.dropout(self.activations[k](h))
                if str(k) in self.residual_projections:
                    h = h + self.residual_projections[str(k)](x)
                hidden.append(h)
        return h


class SeedCNN(_CountsParameters, nn.Module):
    """The seed CNN: pytorch/examples' MNIST ``Net`` with width knobs, returning logits.

    ``conv(in -> c1, 3) -> ReLU -> conv(c1 -> c2, 3) -> ReLU -> max-pool 2 -> Dropout(0.25) ->
    flatten -> Linear(-> hidden) -> ReLU -> Dropout(0.5) -> Linear(-> n_classes)``. The
    defaults reproduce the original's 1,199,882 parameters on 28x28 inputs.

    Args:
        c1: Channels of the first convolution.
        c2: Channels of the second convolution.
        hidden: Width of the hidden linear layer.
        n_classes: Number of outputs.
        in_channels: Input channels.
        image_size: Input height and width (square images), at least 6.
        dropout1: Dropout after pooling.
        dropout2: Dropout after the hidden linear layer.
    """

    def __init__(
        self,
        c1: int = 32,
        c2: int = 64,
        hidden: int = 128,
        n_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 28,
        dropout1: float = 0.25,
        dropout2: float = 0.5,
    ) -> None:
        super().__init__()
        c1 = check_int("c1", c1, 1)
        c2 = check_int("c2", c2, 1)
        hidden = check_int("hidden", hidden, 1)
        n_classes = check_int("n_classes", n_classes, 1)
        in_channels = check_int("in_channels", in_channels, 1)
        image_size = check_int("image_size", image_size, 6)
        dropout1 = check_float("dropout1", dropout1, 0, 1, high_open=True)
        dropout2 = check_float("dropout2", dropout2, 0, 1, high_open=True)
        self.conv1 = nn.Conv2d(in_channels, c1, 3, 1)
        self.conv2 = nn.Conv2d(c1, c2, 3, 1)
        self.dropout1 = nn.Dropout(dropout1)
        self.dropout2 = nn.Dropout(dropout2)
        pooled = (image_size - 4) // 2
        self.fc1 = nn.Linear(c2 * pooled * pooled, hidden)
        self.fc2 = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits of shape ``(N, n_classes)`` for images ``(N, C, H, W)``."""
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return self.fc2(x)


@dataclass
class CharTransformerConfig:
    """Configuration of :class:`CharTransformer` (defaults: nanoGPT's baby GPT).

    Attributes:
        vocab_size: Number of token ids (65 for tiny shakespeare).
        block_size: Maximum context length.
        n_layer: Number of transformer blocks.
        n_head: Attention heads; must divide ``n_embd``.
        n_embd: Embedding width.
        dropout: Dropout probability (embeddings, attention, residual branches).
        bias: Use biases in linear layers and LayerNorms (nanoGPT's shakespeare config: no).
    """

    vocab_size: int = 65
    block_size: int = 256
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.2
    bias: bool = False

    def __post_init__(self) -> None:
        for arg in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            setattr(self, arg, check_int(arg, getattr(self, arg), 1))
        if self.n_embd % self.n_head:
            raise ValueError(
                f"`n_embd` must be divisible by `n_head`, got n_embd={self.n_embd} and "
                f"n_head={self.n_head}."
            )
        self.dropout = check_float("dropout", self.dropout, 0, 1, high_open=True)


class _CausalSelfAttention(nn.Module):
    def __init__(self, config: CharTransformerConfig) -> None:
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape  # noqa: N806 (nanoGPT's names)
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class _FeedForward(nn.Module):
    def __init__(self, config: CharTransformerConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class _Block(nn.Module):
    def __init__(self, config: CharTransformerConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = _CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = _FeedForward(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class CharTransformer(_CountsParameters, nn.Module):
    """A nanoGPT-style decoder-only transformer for character-level language modelling.

    Pre-LayerNorm blocks with causal :func:`~torch.nn.functional.scaled_dot_product_attention`
    (flash attention on GPUs), a 4x GELU MLP, learned position embeddings, and the output head
    tied to the token embedding. Initialisation follows nanoGPT (normal(0, 0.02), residual
    projections scaled by ``1 / sqrt(2 * n_layer)``).

    Args:
        config: The :class:`CharTransformerConfig`.
    """

    stacked_parameters: tuple[str, ...] = ("attn.c_attn.weight", "attn.c_attn.bias")
    """State-dict key endings of tensors that stack q, k and v along dim 0: a checkpoint of
    another width must not be copied into them as one slice (it would cut across the three)."""

    def __init__(self, config: CharTransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight  # Weight tying (nanoGPT, Press & Wolf 2017).
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Return next-token logits ``(B, T, vocab_size)`` for token ids ``(B, T)``."""
        _, t = idx.shape
        if t > self.config.block_size:
            raise ValueError(f"sequence length {t} exceeds block_size {self.config.block_size}.")
        pos = torch.arange(t, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
    ) -> torch.Tensor:
        """Sample ``max_new_tokens`` continuations of ``idx`` ``(B, T)`` (call ``eval()`` first).

        Args:
            idx: Conditioning token ids.
            max_new_tokens: Number of tokens to append.
            temperature: Softmax temperature, ``> 0``.
            top_k: Sample only from the ``top_k`` most likely tokens.

        Returns:
            Token ids ``(B, T + max_new_tokens)``.
        """
        temperature = check_float("temperature", temperature, 0, low_open=True)
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.config.block_size :])[:, -1, :] / temperature
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("inf")
            next_id = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            idx = torch.cat((idx, next_id), dim=1)
        return idx
