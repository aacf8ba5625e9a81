"""Crossover operators, one parameter at a time.

Each operator maps the values that the parents hold for one parameter to the child's value.
Working per parameter lets a child inherit conditional (define-by-run) parameters that only
one parent had, and keeps every operator usable by every sampler.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution

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
        if not (0.0 <= swapping_prob <= 1.0):
            raise ValueError(f"`swapping_prob` must be in [0, 1], got {swapping_prob}.")
        self.swapping_prob = swapping_prob

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
        if alpha < 0.0:
            raise ValueError(f"`blend_alpha` must be >= 0, got {alpha}.")
        self.alpha = alpha

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
    """Build a crossover operator from its name (``"uniform"`` or ``"blend"``)."""
    if isinstance(name, BaseCrossover):
        return name
    if name == "uniform":
        return UniformCrossover(swapping_prob)
    if name == "blend":
        return BlendCrossover(blend_alpha)
    raise ValueError(f"`crossover` must be 'uniform', 'blend' or a BaseCrossover, got {name!r}.")
