"""A light surrogate of the objective: predicts a configuration's value before it is trained.

Parameters are encoded in the same coordinates the operators use (log scale for ``log=True``,
one-hot for categoricals, see :mod:`optuna_evo.operators._space`), each numeric one scaled to
[0, 1] over its distribution. The model is numpy only: an ensemble of ridge regressions on
random Fourier features (plus the raw inputs), each member fitted on a bootstrap resample with
its own length scale. The ensemble's mean is the prediction and the spread of its members the
uncertainty, so a sampler can rank candidates optimistically (``mean - κ·std`` when
minimising).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution

from optuna_evo._validation import check_float
from optuna_evo._validation import check_int
from optuna_evo.operators._space import internal_bounds


class ParamEncoder:
    """Encode parameter dicts as fixed-length vectors in [0, 1].

    A numeric parameter becomes its internal coordinate scaled to [0, 1] (values outside the
    distribution are clipped) and a missing-indicator column; a categorical one becomes a
    one-hot block (all zeros when missing or not among the choices). Columns follow the
    sorted parameter names, so two encoders of the same distributions agree.

    Args:
        distributions: The parameters to encode and their distributions.
    """

    def __init__(self, distributions: Mapping[str, BaseDistribution]) -> None:
        self.distributions = dict(sorted(distributions.items()))
        self._columns: dict[str, int] = {}
        width = 0
        for name, dist in self.distributions.items():
            self._columns[name] = width
            width += len(dist.choices) if isinstance(dist, CategoricalDistribution) else 2
        self.n_columns = width

    def encode(self, params_list: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Return an array of shape ``(len(params_list), n_columns)``."""
        out = np.zeros((len(params_list), self.n_columns))
        rows = np.arange(len(params_list))
        for name, dist in self.distributions.items():
            col = self._columns[name]
            values = [params.get(name, _MISSING) for params in params_list]
            if isinstance(dist, CategoricalDistribution):
                # Keyed by type too: True == 1 and 1 == 1.0 must not share a column.
                index = {(type(c), c): i for i, c in enumerate(dist.choices)}
                hits = [(r, index.get((type(v), v))) for r, v in enumerate(values)]
                hits = [(r, i) for r, i in hits if i is not None]
                if hits:
                    r, i = zip(*hits)
                    out[list(r), col + np.array(i)] = 1.0
                continue
            x = np.array([_number(v) for v in values])
            low, high = internal_bounds(dist)
            if getattr(dist, "log", False):
                with np.errstate(invalid="ignore", divide="ignore"):
                    x = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)
            scaled = np.full(len(x), 0.5) if high == low else (x - low) / (high - low)
            missing = np.isnan(x)
            out[rows, col] = np.where(missing, 0.5, np.clip(np.nan_to_num(scaled), 0.0, 1.0))
            out[rows, col + 1] = missing
        return out


_MISSING = object()


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


class SurrogateModel(abc.ABC):
    """A fitted surrogate."""

    @abc.abstractmethod
    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the predicted mean and standard deviation for each row of ``x``."""


class BaseSurrogate(abc.ABC):
    """A regression model family: :meth:`fit` returns a :class:`SurrogateModel`.

    Fitting returns a new object rather than changing ``self``, so one surrogate can serve
    several threads and every trial's fit depends only on its inputs and random stream.
    """

    @abc.abstractmethod
    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.RandomState) -> SurrogateModel:
        """Fit to inputs ``x`` (``(n, d)``, in [0, 1]) and finite targets ``y`` (``(n,)``)."""


@dataclass(frozen=True)
class _FittedEnsemble(SurrogateModel):
    weights: np.ndarray  # (members, D + d + 1)
    projections: np.ndarray  # (members, d, D)
    offsets: np.ndarray  # (members, D)
    y_mean: float
    y_scale: float

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = np.stack(
            [
                _features(x, w, b) @ beta
                for w, b, beta in zip(self.projections, self.offsets, self.weights)
            ]
        )
        mean = preds.mean(axis=0) * self.y_scale + self.y_mean
        std = preds.std(axis=0) * self.y_scale
        return mean, std


def _features(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    n_features = w.shape[1]
    rff = math.sqrt(2.0 / n_features) * np.cos(x @ w + b)
    return np.hstack([rff, x, np.ones((x.shape[0], 1))])


class RandomFeatureEnsemble(BaseSurrogate):
    """Bootstrap ensemble of ridge regressions on random Fourier features.

    Each member draws a length scale log-uniformly in ``lengthscale_range`` (times
    ``sqrt(d)``, the scale of distances in the unit cube), ``n_features`` random Fourier
    features of an RBF kernel with it, and a bootstrap resample of the data; it then solves a
    ridge regression on ``[features, x, 1]`` against the standardised targets. Fitting ``n``
    trials costs ``O(members · n · D²)``: milliseconds for a few hundred trials.

    Args:
        n_members: Ensemble size, >= 2 (the spread of the members is the uncertainty).
        n_features: Random features per member, >= 1.
        alpha: Ridge penalty, > 0.
        lengthscale_range: ``(low, high)`` with ``0 < low <= high``.
    """

    def __init__(
        self,
        n_members: int = 8,
        n_features: int = 64,
        alpha: float = 1e-2,
        lengthscale_range: tuple[float, float] = (0.1, 1.0),
    ) -> None:
        self.n_members = check_int("n_members", n_members, 2)
        self.n_features = check_int("n_features", n_features, 1)
        self.alpha = check_float("alpha", alpha, 0, low_open=True)
        low, high = lengthscale_range
        low = check_float("lengthscale_range[0]", low, 0, low_open=True)
        high = check_float("lengthscale_range[1]", high, 0, low_open=True)
        if not low <= high:
            raise ValueError(
                f"`lengthscale_range` must be (low, high) with low <= high, got "
                f"{lengthscale_range!r}."
            )
        self.lengthscale_range = (low, high)

    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.RandomState) -> SurrogateModel:
        """Fit the ensemble (see the class docstring)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        n, d = x.shape
        if n == 0 or y.shape != (n,) or not np.all(np.isfinite(y)):
            raise ValueError("fit needs at least one row and one finite target per row.")
        y_mean = float(y.mean())
        y_scale = float(y.std()) or 1.0
        z = (y - y_mean) / y_scale
        low, high = (math.log(v) for v in self.lengthscale_range)
        scale = math.sqrt(max(d, 1))
        weights, projections, offsets = [], [], []
        for _ in range(self.n_members):
            lengthscale = math.exp(rng.uniform(low, high)) * scale
            w = rng.normal(0.0, 1.0 / lengthscale, size=(d, self.n_features))
            b = rng.uniform(0.0, 2.0 * math.pi, size=self.n_features)
            rows = rng.randint(n, size=n)
            phi = _features(x[rows], w, b)
            # einsum, not ``phi.T @ phi``: a multithreaded BLAS call costs several times more
            # than the arithmetic on matrices this small, especially on busy machines.
            gram = np.einsum("ni,nj->ij", phi, phi) + self.alpha * np.eye(phi.shape[1])
            weights.append(np.linalg.solve(gram, phi.T @ z[rows]))
            projections.append(w)
            offsets.append(b)
        return _FittedEnsemble(
            np.stack(weights), np.stack(projections), np.stack(offsets), y_mean, y_scale
        )


def make_surrogate(surrogate: str | BaseSurrogate) -> BaseSurrogate:
    """Build a surrogate from its name (``"ensemble"``) or return the instance given."""
    if isinstance(surrogate, BaseSurrogate):
        return surrogate
    if surrogate == "ensemble":
        return RandomFeatureEnsemble()
    raise ValueError(
        f"`surrogate` must be 'ensemble', a BaseSurrogate or None, got {surrogate!r}."
    )
