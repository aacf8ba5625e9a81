"""Per-parameter views of Optuna distributions used by every operator.

Operators work on one parameter at a time in an *internal* coordinate: the log of the value
for ``log=True`` distributions, the value itself for other numeric ones, and the choice index
for categoricals. ``from_internal`` always returns a native Python value that the distribution
contains (clamped to the bounds, snapped to the step grid), so no operator can leak an
out-of-range or numpy-typed value into a trial.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution


def is_numeric(distribution: BaseDistribution) -> bool:
    """Return whether ``distribution`` is a float or int distribution."""
    return isinstance(distribution, (FloatDistribution, IntDistribution))


def internal_bounds(distribution: BaseDistribution) -> tuple[float, float]:
    """Return the (low, high) bounds of ``distribution`` in internal coordinates."""
    if isinstance(distribution, CategoricalDistribution):
        return 0.0, float(len(distribution.choices) - 1)
    assert isinstance(distribution, (FloatDistribution, IntDistribution))
    if distribution.log:
        return math.log(distribution.low), math.log(distribution.high)
    return float(distribution.low), float(distribution.high)


def to_internal(distribution: BaseDistribution, value: Any) -> float:
    """Map an external parameter value to its internal coordinate."""
    if isinstance(distribution, CategoricalDistribution):
        return float(distribution.to_internal_repr(value))
    assert isinstance(distribution, (FloatDistribution, IntDistribution))
    return math.log(value) if distribution.log else float(value)


def from_internal(distribution: BaseDistribution, x: float) -> Any:
    """Map an internal coordinate back to a native value inside ``distribution``."""
    low, high = internal_bounds(distribution)
    x = min(max(float(x), low), high)
    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[int(round(x))]
    assert isinstance(distribution, (FloatDistribution, IntDistribution))
    value = math.exp(x) if distribution.log else x
    # exp(log(low)) can land a hair outside [low, high]; clamp again in external space.
    value = min(max(value, distribution.low), distribution.high)
    step = distribution.step
    if step is not None:
        n = round((value - distribution.low) / step)
        n_max = math.floor((distribution.high - distribution.low) / step + 1e-9)
        # low + n * step can overshoot high by an ulp; clamp once more.
        value = min(distribution.low + min(max(n, 0), n_max) * step, distribution.high)
    if isinstance(distribution, IntDistribution):
        return int(round(value))
    return float(value)


def sample_uniform(distribution: BaseDistribution, rng: np.random.RandomState) -> Any:
    """Draw a value uniformly (in internal coordinates) from ``distribution``."""
    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[int(rng.randint(len(distribution.choices)))]
    assert isinstance(distribution, (FloatDistribution, IntDistribution))
    if distribution.step is not None and not distribution.log:
        # Uniform over the grid points, so the end points are as likely as inner ones.
        n_max = int(math.floor((distribution.high - distribution.low) / distribution.step + 1e-9))
        return from_internal(
            distribution, distribution.low + rng.randint(n_max + 1) * distribution.step
        )
    low, high = internal_bounds(distribution)
    if isinstance(distribution, IntDistribution):
        # Widen by half a unit so rounding gives the end points their fair share.
        if distribution.log:
            low, high = math.log(distribution.low - 0.5), math.log(distribution.high + 0.5)
        else:
            low, high = low - 0.5, high + 0.5
    return from_internal(distribution, rng.uniform(low, high))


def contains(distribution: BaseDistribution, value: Any) -> bool:
    """Return whether ``value`` is a valid external value of ``distribution``."""
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False
