"""Crossover operators: one parameter at a time, and whole architectures.

Each parameter operator maps the values that the parents hold for one parameter to the child's
value. Working per parameter lets a child inherit conditional (define-by-run) parameters that
only one parent had, and keeps every operator usable by every sampler.
:func:`architecture_crossover` recombines two :class:`~optuna_evo.architecture.Architecture`
genomes layer by layer.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution

from optuna_evo._validation import check_float
from optuna_evo._validation import check_probability
from optuna_evo.architecture import Architecture
from optuna_evo.operators._space import from_internal
from optuna_evo.operators._space import is_numeric
from optuna_evo.operators._space import to_internal


class BaseCrossover(abc.ABC):
    """Combine the parents' values of one parameter into the child's value."""

    @abc.abstractmethod
    def __call__(
        self, distribution: BaseDistribution, values: Sequence[Any], rng: np.random.RandomState
    ) -> Any:
        """Return the child's value; ``values`` holds one value per parent (at least one)."""


class UniformCrossover(BaseCrossover):
    """Take each parameter from a randomly chosen parent.

    Args:
        swapping_prob: Probability of taking the second parent's value, in [0, 1].
    """

    def __init__(self, swapping_prob: float = 0.5) -> None:
        self.swapping_prob = check_probability("swapping_prob", swapping_prob)

    def __call__(
        self, distribution: BaseDistribution, values: Sequence[Any], rng: np.random.RandomState
    ) -> Any:
        """Return the first parent's value, or the second's with ``swapping_prob``."""
        if len(values) > 1 and rng.rand() < self.swapping_prob:
            return values[1]
        return values[0]


class BlendCrossover(BaseCrossover):
    """BLX-α: draw uniformly from the parents' interval widened by ``alpha`` on each side.

    Works in internal coordinates (log scale for ``log=True``) and is clamped to the
    distribution; categorical parameters fall back to a uniform pick among the parents.

    Args:
        alpha: Widening factor, >= 0 (0.5 is the classic BLX-0.5).
    """

    def __init__(self, alpha: float = 0.5) -> None:
        self.alpha = check_float("blend_alpha", alpha, 0)

    def __call__(
        self, distribution: BaseDistribution, values: Sequence[Any], rng: np.random.RandomState
    ) -> Any:
        """Return a blended value inside ``distribution``."""
        if not is_numeric(distribution):
            return values[int(rng.randint(len(values)))]
        xs = [to_internal(distribution, v) for v in values]
        lo, hi = min(xs), max(xs)
        d = hi - lo
        return from_internal(distribution, rng.uniform(lo - self.alpha * d, hi + self.alpha * d))


def make_crossover(
    name: str | BaseCrossover, swapping_prob: float, blend_alpha: float
) -> BaseCrossover:
    """Build a crossover operator from its name (``"uniform"`` or ``"blend"``).

    Both settings are checked whichever operator is chosen: a typo does not wait for a switch.
    """
    named: dict[str, BaseCrossover] = {
        "uniform": UniformCrossover(swapping_prob),
        "blend": BlendCrossover(blend_alpha),
    }
    if isinstance(name, BaseCrossover):
        return name
    if isinstance(name, str) and name in named:
        return named[name]
    raise ValueError(f"`crossover` must be 'uniform', 'blend' or a BaseCrossover, got {name!r}.")


def architecture_crossover(
    first: Architecture, second: Architecture, rng: np.random.RandomState
) -> tuple[Architecture, tuple[int, int]]:
    """One-point crossover of two architectures' hidden-layer lists.

    A cut position ``c`` is drawn uniformly from ``1 .. max(n_first, n_second) - 1``; the
    child takes ``first``'s hidden layers before the cut and ``second``'s from the cut on
    (cut-and-splice when the depths differ: the cut is ``min(c, n)`` in each parent, so the
    child's depth lies between the parents'). Each layer carries its own width, activation and
    block type. A skip edge travels with its source layer: ``first``'s edges from layers
    before the cut keep their indices, ``second``'s edges from layers at or after the cut are
    shifted with their layers, and an edge whose target falls beyond the child's output layer
    is dropped, so the child is always valid. Dropout comes from ``first``. When neither parent
    has two hidden layers there is no interior cut and the child is a copy of ``first``.

    Args:
        first: The first parent (input/output widths must match ``second``'s).
        second: The second parent.
        rng: Random stream.

    Returns:
        The child and the cuts ``(a, b)``: the child is ``first``'s layers ``[:a]`` followed by
        ``second``'s layers ``[b:]``.

    Raises:
        ValueError: If the parents' input or output widths differ.
    """
    if (first.n_inputs, first.n_outputs) != (second.n_inputs, second.n_outputs):
        raise ValueError(
            "architecture_crossover needs parents with the same input/output widths, got "
            f"{first.widths} and {second.widths}."
        )
    n_a, n_b = first.n_hidden, second.n_hidden
    longest = max(n_a, n_b)
    if longest < 2:
        return first, (n_a, n_b)
    c = int(rng.randint(1, longest))
    a, b = min(c, n_a), min(c, n_b)
    n = a + n_b - b
    widths = [first.n_inputs, *first.widths[1 : 1 + a], *second.widths[1 + b : -1]]
    widths.append(first.n_outputs)
    shift = a - b
    skips = [(i, j) for i, j in first.skips if i < a and j <= n]
    skips += [(i + shift, j + shift) for i, j in second.skips if i >= b and j + shift <= n]
    child = Architecture(
        widths,
        [*first.activations[:a], *second.activations[b:]],
        dropout=first.dropout,
        skips=sorted(set(skips)),
        blocks=[*first.blocks[:a], *second.blocks[b:]],
    )
    return child, (a, b)
