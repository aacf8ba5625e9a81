"""Learning-curve families fitted to a curve prefix and extrapolated to a later step.

Pure numpy: no optimiser loop. Each nonlinear family has one shape parameter taken from a
small fixed grid; for every grid value the rest of the family is linear in its coefficients
and solved in closed form, and the grid value with the smallest squared error wins. A fit
over a dozen points takes well under a millisecond, cheap enough for a pruner that runs at
every report.

Families (``x`` is the step + 1, divided by the last fitted step + 1 so that grids are
scale-free; ``y`` the reported value):

============  ==================================================  ============================
name          form                                                fit
============  ==================================================  ============================
``last``      last reported value                                 --
``linear``    last value + slope x remaining steps                least-squares slope
``pow3``      ``c + a * x**(-alpha)`` (``c - a x^-α`` for a>0)    grid on α, linear in (c, a)
``exp3``      ``c + a * exp(-b * x)``                             grid on b, linear in (c, a)
``logpower``  ``a / (1 + (x / e**b)**c)`` (Domhan et al. 2015)    grid on a, log-linear in x
============  ==================================================  ============================

Every failure (too few points, a singular fit, ``logpower`` on non-positive values, a
non-finite result) falls back to the last value, and every prediction is clipped so that no
family moves away from the last value faster than :data:`CLIP_SPANS` times the prefix's
average pace (its value range over its step range, and at least that range), so one wild
extrapolation cannot dominate a mixture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math

import numpy as np

FAMILIES: tuple[str, ...] = ("last", "linear", "pow3", "exp3", "logpower")
"""Curve families, in the order of :meth:`CurveFit.predict`'s output."""

CLIP_SPANS = 3.0
"""Predictions stay within ``CLIP_SPANS * span * max(1, remaining / fitted steps)`` of the last
value, ``span`` being the prefix's max - min."""

MIN_POINTS_NONLINEAR = 3
"""Points a three-parameter family needs; with fewer it predicts the last value."""

_ALPHAS = np.geomspace(0.05, 4.0, 16)
_RATES = np.geomspace(0.2, 40.0, 16)
_LOGPOWER_HEADROOM = np.geomspace(0.01, 4.0, 12)


def clean_curve(
    steps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the finite points of a curve as float arrays sorted by step.

    Args:
        steps: Report steps (Optuna's ``step`` argument of ``trial.report``).
        values: Reported values, one per step.

    Returns:
        ``(steps, values)`` without non-finite values, sorted by step.
    """
    x = np.asarray(steps, dtype=float).ravel()
    y = np.asarray(values, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"steps and values differ in length: {x.size} != {y.size}.")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


def ends_finite(steps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray) -> bool:
    """Whether a curve's last report (the one at its largest step) is finite.

    A run whose last report is NaN or infinite diverged: the finite reports before it say
    nothing about where it ends. An empty curve counts as finite (nothing diverged).

    Args:
        steps: Report steps.
        values: Reported values, one per step.
    """
    x = np.asarray(steps, dtype=float).ravel()
    y = np.asarray(values, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"steps and values differ in length: {x.size} != {y.size}.")
    usable = np.flatnonzero(np.isfinite(x))
    if usable.size == 0:
        return True
    return bool(np.isfinite(y[usable[np.argmax(x[usable])]]))


def _linear_in(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least squares ``y ≈ c + a z`` for each row of ``z``: returns (c, a, sse) per row."""
    zm = z.mean(axis=1)
    dz = z - zm[:, None]
    ym = y.mean()
    dy = y - ym
    szz = np.einsum("ij,ij->i", dz, dz)
    szy = dz @ dy
    with np.errstate(divide="ignore", invalid="ignore"):
        a = szy / szz
        sse = float(dy @ dy) - szy * a  # residual sum of squares of a simple regression
    c = ym - a * zm
    bad = ~(np.isfinite(a) & np.isfinite(c)) | (szz <= 1e-300)
    sse[bad] = np.inf
    return c, a, sse


@dataclass(frozen=True)
class CurveFit:
    """The families fitted to one (windowed) curve prefix.

    Build it with :func:`fit_curve`; :meth:`predict` then extrapolates every family to any
    later step at the cost of a few arithmetic operations, so one fit serves many predictors.

    Attributes:
        x_last: Last fitted step + 1 (the normalisation of ``x``).
        x_first: First fitted step + 1.
        y_last: Last value.
        span: Value range of the prefix (max - min), the clipping unit.
        slope: Least-squares slope per step (``linear``).
        pow3: ``(c, a, alpha)`` or ``None`` when the fit failed.
        exp3: ``(c, a, b)`` or ``None``.
        logpower: ``(a, intercept, slope)`` of ``log(a / y - 1)`` against ``log x``, or
            ``None``.
    """

    x_last: float
    x_first: float
    y_last: float
    span: float
    slope: float
    pow3: tuple[float, float, float] | None
    exp3: tuple[float, float, float] | None
    logpower: tuple[float, float, float] | None

    def predict(self, target_step: float) -> np.ndarray:
        """Predict the value at ``target_step`` with every family, in :data:`FAMILIES` order.

        A target at or before the last fitted step gives the last value for every family.
        """
        y_last = self.y_last
        x_t = (float(target_step) + 1.0) / self.x_last
        if not x_t > 1.0:
            return np.full(len(FAMILIES), y_last)
        remaining = (x_t - 1.0) * self.x_last
        p, e, lp = self.pow3, self.exp3, self.logpower
        out = np.array(
            [
                y_last,
                y_last + self.slope * remaining,
                math.nan if p is None else p[0] + p[1] * x_t ** -p[2],
                math.nan if e is None else e[0] + e[1] * math.exp(-e[2] * x_t),
                math.nan
                if lp is None
                else lp[0] / (1.0 + math.exp(min(lp[1] + lp[2] * math.log(x_t), 700.0))),
            ]
        )
        out[~np.isfinite(out)] = y_last
        observed = self.x_last - self.x_first
        reach = CLIP_SPANS * self.span * (max(1.0, remaining / observed) if observed > 0 else 1.0)
        return np.clip(out, y_last - reach, y_last + reach)


def fit_curve(steps: np.ndarray, values: np.ndarray) -> CurveFit:
    """Fit every family of :data:`FAMILIES` to a curve prefix.

    Args:
        steps: Steps of the points to fit, increasing, finite (see :func:`clean_curve`).
        values: The values at those steps, finite; at least one point.

    Returns:
        The fitted :class:`CurveFit`.
    """
    x = np.asarray(steps, dtype=float) + 1.0
    y = np.asarray(values, dtype=float)
    if y.size == 0:
        raise ValueError("fit_curve needs at least one point.")
    x_last = float(max(x[-1], 1e-12))
    span = float(y.max() - y.min())
    y_last = float(y[-1])
    slope = 0.0
    pow3 = exp3 = logpower = None
    if y.size >= 2 and x[-1] > x[0]:
        dx = x - x.mean()
        slope = float((dx * (y - y.mean())).sum() / (dx * dx).sum())
    if y.size >= MIN_POINTS_NONLINEAR and span > 0.0 and x[0] > 0.0 and x[-1] > x[0]:
        u = x / x_last
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            z = np.concatenate(
                [np.exp(-_ALPHAS[:, None] * np.log(u)[None, :]), np.exp(-_RATES[:, None] * u)]
            )
            c, a, sse = _linear_in(z, y)
            n = _ALPHAS.size
            i = int(np.argmin(sse[:n]))
            if np.isfinite(sse[i]):
                pow3 = (float(c[i]), float(a[i]), float(_ALPHAS[i]))
            i = n + int(np.argmin(sse[n:]))
            if np.isfinite(sse[i]):
                exp3 = (float(c[i]), float(a[i]), float(_RATES[i - n]))
            if y.min() > 0.0:
                logpower = _fit_logpower(np.log(u), y)
    return CurveFit(x_last, float(x[0]), y_last, span, slope, pow3, exp3, logpower)


def _fit_logpower(log_u: np.ndarray, y: np.ndarray) -> tuple[float, float, float] | None:
    # For a fixed asymptote scale a > max(y), log(a / y - 1) is linear in log x.
    scales = y.max() * (1.0 + _LOGPOWER_HEADROOM)
    z = np.log(scales[:, None] / y[None, :] - 1.0)
    zm = z.mean(axis=1)
    lm = log_u.mean()
    dl = log_u - lm
    var = float((dl * dl).sum())
    if var <= 1e-300:
        return None
    s = ((z - zm[:, None]) * dl[None, :]).sum(axis=1) / var
    i0 = zm - s * lm
    fitted = scales[:, None] / (1.0 + np.exp(np.minimum(i0[:, None] + s[:, None] * log_u, 700.0)))
    sse = ((fitted - y[None, :]) ** 2).sum(axis=1)
    sse[~np.isfinite(sse)] = np.inf
    k = int(np.argmin(sse))
    if not np.isfinite(sse[k]):
        return None
    return float(scales[k]), float(i0[k]), float(s[k])
