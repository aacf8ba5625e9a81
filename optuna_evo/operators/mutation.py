"""Mutation operators, one parameter at a time.

The caller decides *whether* a parameter mutates (with its mutation probability); an operator
only says *how*. Both operators return native values inside the distribution.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution

from optuna_evo._validation import check_float
from optuna_evo.operators._space import from_internal
from optuna_evo.operators._space import internal_bounds
from optuna_evo.operators._space import is_numeric
from optuna_evo.operators._space import sample_uniform
from optuna_evo.operators._space import to_internal


class BaseMutation(abc.ABC):
    """Change one parameter value."""

    @abc.abstractmethod
    def __call__(
        self, distribution: BaseDistribution, value: Any, rng: np.random.RandomState
    ) -> Any:
        """Return the mutated value."""


class ResetMutation(BaseMutation):
    """Replace the value by a fresh uniform draw from the distribution (the seed paper's)."""

    def __call__(
        self, distribution: BaseDistribution, value: Any, rng: np.random.RandomState
    ) -> Any:
        """Return a fresh uniform sample; ``value`` is ignored."""
        return sample_uniform(distribution, rng)


class GaussianMutation(BaseMutation):
    """Add Gaussian noise in internal coordinates, σ relative to the parameter's range.

    Categorical parameters are reset instead (they have no metric).

    Args:
        sigma: Standard deviation as a fraction of the internal range, > 0.
    """

    def __init__(self, sigma: float = 0.1) -> None:
        self.sigma = check_float("mutation_sigma", sigma, 0, low_open=True)

    def __call__(
        self, distribution: BaseDistribution, value: Any, rng: np.random.RandomState
    ) -> Any:
        """Return ``value`` perturbed by N(0, (σ·range)²), clamped to the distribution."""
        if not is_numeric(distribution):
            return sample_uniform(distribution, rng)
        low, high = internal_bounds(distribution)
        x = to_internal(distribution, value) + rng.normal(0.0, self.sigma * (high - low))
        return from_internal(distribution, x)


def make_mutation(name: str | BaseMutation, sigma: float) -> BaseMutation:
    """Build a mutation operator from its name (``"reset"`` or ``"gaussian"``).

    ``sigma`` is checked whichever operator is chosen: a typo does not wait for a switch.
    """
    named: dict[str, BaseMutation] = {
        "reset": ResetMutation(),
        "gaussian": GaussianMutation(sigma),
    }
    if isinstance(name, BaseMutation):
        return name
    if isinstance(name, str) and name in named:
        return named[name]
    raise ValueError(f"`mutation` must be 'reset', 'gaussian' or a BaseMutation, got {name!r}.")
