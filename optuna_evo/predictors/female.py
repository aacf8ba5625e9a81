"""Female genomes: small evolvable learning-curve predictors, and their fitness.

A :class:`FemaleGenome` maps a curve prefix (the values a trial reported so far) to a
predicted final value. It mixes the families of :mod:`optuna_evo.predictors.curves`:

.. code-block:: text

    fit      = fit_curve(last `window` points of the prefix)
    x_eff    = last_step + horizon * (target_step - last_step)
    mixture  = sum_f weight_f * fit.predict(x_eff)[f] / sum_f weight_f
    predict  = mixture + bias * (last_value - first_value)

``horizon`` < 1 damps extrapolation (fits often overshoot), > 1 stretches it; ``bias`` adds a
share of the change seen so far (scale-free, so one genome works for any objective scale).

Its genes are Optuna distributions (:data:`GENE_SPACE`), so the shared per-parameter
operators of :mod:`optuna_evo.operators` cross over (BLX-α) and mutate (Gaussian) them
exactly as they do trial parameters.

Fitness (:func:`evaluate_female`), on finished trials ("males") whose final value is known,
from their first ``early_steps`` reports only::

    fitness = spearman(predicted, actual) - error_weight * mean|predicted - actual| / std(actual)

Higher is better; rank correlation decides which trials look promising, the error term keeps
predictions calibrated (the pruner compares them with real values).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution

from optuna_evo._validation import check_float
from optuna_evo._validation import check_int
from optuna_evo.operators._space import sample_uniform
from optuna_evo.operators.crossover import BaseCrossover
from optuna_evo.operators.crossover import BlendCrossover
from optuna_evo.operators.mutation import BaseMutation
from optuna_evo.operators.mutation import GaussianMutation
from optuna_evo.predictors.curves import FAMILIES
from optuna_evo.predictors.curves import CurveFit
from optuna_evo.predictors.curves import clean_curve
from optuna_evo.predictors.curves import ends_finite
from optuna_evo.predictors.curves import fit_curve

GENE_SPACE: dict[str, BaseDistribution] = {
    **{f"w_{name}": FloatDistribution(0.0, 1.0) for name in FAMILIES},
    "window": IntDistribution(3, 32),
    "horizon": FloatDistribution(0.25, 4.0, log=True),
    "bias": FloatDistribution(-1.0, 1.0),
}
"""Every gene of a :class:`FemaleGenome` and its range."""

_DIGITS = 6  # Stored genomes are rounded: small in storage, identical after a round trip.


def _round(value: float) -> float:
    return float(round(float(value), _DIGITS))


@dataclass(frozen=True)
class FemaleGenome:
    """A learning-curve predictor: a mixture of curve families with evolvable genes.

    Attributes:
        weights: Non-negative mixing weight per family, in :data:`FAMILIES` order.
        window: Number of most recent reports the families are fitted to (>= 1, at least 2
            are used; the whole prefix when it is shorter). Evolution draws it from [3, 32].
        horizon: Extrapolation factor applied to the remaining steps, > 0.
        bias: Share of the change seen so far added to the mixture.
    """

    weights: tuple[float, ...] = (0.2, 0.0, 0.5, 0.3, 0.0)
    window: int = 32
    horizon: float = 1.0
    bias: float = 0.0

    def __post_init__(self) -> None:
        if len(self.weights) != len(FAMILIES):
            raise ValueError(
                f"`weights` needs {len(FAMILIES)} values ({FAMILIES}), got {len(self.weights)}."
            )
        weights = tuple(
            _round(check_float(f"weights[{i}]", w, 0)) for i, w in enumerate(self.weights)
        )
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "window", check_int("window", self.window, 1))
        horizon = check_float("horizon", self.horizon, 0, low_open=True)
        object.__setattr__(self, "horizon", _round(horizon))
        object.__setattr__(self, "bias", _round(check_float("bias", self.bias)))

    # -- serialisation ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-serialisable form stored in the study's storage."""
        return {
            "weights": dict(zip(FAMILIES, self.weights)),
            "window": self.window,
            "horizon": self.horizon,
            "bias": self.bias,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FemaleGenome:
        """Inverse of :meth:`to_dict`; families missing from ``weights`` get weight 0."""
        weights = data["weights"]
        return cls(
            weights=tuple(float(weights.get(name, 0.0)) for name in FAMILIES),
            window=int(data["window"]),
            horizon=float(data["horizon"]),
            bias=float(data["bias"]),
        )

    def genes(self) -> dict[str, float | int]:
        """Return the genes by :data:`GENE_SPACE` name."""
        genes: dict[str, float | int] = {f"w_{n}": w for n, w in zip(FAMILIES, self.weights)}
        genes.update(window=self.window, horizon=self.horizon, bias=self.bias)
        return genes

    @classmethod
    def from_genes(cls, genes: Mapping[str, float | int]) -> FemaleGenome:
        """Inverse of :meth:`genes`."""
        return cls(
            weights=tuple(float(genes[f"w_{n}"]) for n in FAMILIES),
            window=int(genes["window"]),
            horizon=float(genes["horizon"]),
            bias=float(genes["bias"]),
        )

    # -- evolution ----------------------------------------------------------------------

    @classmethod
    def random(cls, rng: np.random.RandomState) -> FemaleGenome:
        """Draw every gene uniformly from :data:`GENE_SPACE` (log scale for ``horizon``)."""
        return cls.from_genes({n: sample_uniform(d, rng) for n, d in GENE_SPACE.items()})

    @classmethod
    def last_value(cls) -> FemaleGenome:
        """The baseline predictor: the final value is the last reported value."""
        return cls(weights=(1.0, 0.0, 0.0, 0.0, 0.0), window=3, horizon=1.0, bias=0.0)

    def crossover(
        self,
        other: FemaleGenome,
        rng: np.random.RandomState,
        operator: BaseCrossover | None = None,
    ) -> FemaleGenome:
        """Combine two genomes gene by gene (default: BLX-0.5, the shared operator)."""
        op = operator or BlendCrossover(0.5)
        a, b = self.genes(), other.genes()
        return FemaleGenome.from_genes(
            {n: op(d, [a[n], b[n]], rng) for n, d in GENE_SPACE.items()}
        )

    def mutate(
        self,
        rng: np.random.RandomState,
        prob: float,
        operator: BaseMutation | None = None,
    ) -> FemaleGenome:
        """Mutate each gene with probability ``prob`` (default: Gaussian, σ = 10 % of range)."""
        op = operator or GaussianMutation(0.1)
        genes = self.genes()
        for name, dist in GENE_SPACE.items():
            if rng.rand() < prob:
                genes[name] = op(dist, genes[name], rng)
        return FemaleGenome.from_genes(genes)

    # -- prediction ---------------------------------------------------------------------

    def predict(
        self,
        steps: Sequence[float] | np.ndarray,
        values: Sequence[float] | np.ndarray,
        target_step: float,
    ) -> float:
        """Predict the value a curve will have at ``target_step``.

        Args:
            steps: Steps of the reports so far.
            values: The reported values; non-finite ones before the last are ignored.
            target_step: The step whose value to predict (e.g. the study's last step).

        Returns:
            The prediction; ``nan`` when no finite value was reported or when the last
            report (at the largest step) is NaN or infinite: that run diverged, and its
            finite start must not stand in for its end.
        """
        x, y = clean_curve(steps, values)
        if y.size == 0 or not ends_finite(steps, values):
            return math.nan
        n = min(max(self.window, 2), y.size)
        return self.combine(fit_curve(x[-n:], y[-n:]), float(y[0]), target_step)

    def combine(self, fit: CurveFit, first_value: float, target_step: float) -> float:
        """Mix the families of an existing fit (see :meth:`predict`)."""
        x_last = fit.x_last - 1.0
        x_eff = x_last + self.horizon * max(float(target_step) - x_last, 0.0)
        preds = fit.predict(x_eff)
        total = sum(self.weights)
        mixture = float(np.dot(self.weights, preds) / total) if total > 0 else float(preds[0])
        return mixture + self.bias * (fit.y_last - first_value)


DEFAULT_FEMALE = FemaleGenome()
"""The fixed predictor used before any female is evolved (and by a standalone pruner)."""


@dataclass
class MaleCurve:
    """A finished trial's curve and final value, with a cache of prefix fits.

    Attributes:
        steps: Report steps, increasing.
        values: Reported values (finite).
        final: The trial's final (objective) value.
        number: The trial number, for reference.
    """

    steps: np.ndarray
    values: np.ndarray
    final: float
    number: int = -1
    _fits: dict[tuple[int, int], CurveFit] = field(default_factory=dict, repr=False)

    @classmethod
    def from_arrays(
        cls,
        steps: Sequence[float] | np.ndarray,
        values: Sequence[float] | np.ndarray,
        final: float,
        number: int = -1,
    ) -> MaleCurve:
        """Build from raw arrays (non-finite values are dropped)."""
        x, y = clean_curve(steps, values)
        return cls(x, y, float(final), number)

    def predict(self, genome: FemaleGenome, early_steps: int) -> float:
        """``genome``'s prediction of the final value from the first ``early_steps`` reports,
        for the curve's own last step."""
        k = min(early_steps, self.values.size)
        if k == 0:
            return math.nan
        n = min(max(genome.window, 2), k)
        fit = self._fits.get((k, n))
        if fit is None:
            fit = self._fits[(k, n)] = fit_curve(self.steps[k - n : k], self.values[k - n : k])
        return genome.combine(fit, float(self.values[0]), float(self.steps[-1]))


@dataclass(frozen=True)
class FemaleFitness:
    """How well a female predicted a set of males.

    Attributes:
        fitness: ``rho - error_weight * error`` (higher is better); ``None`` when too few
            males (fewer than 3) were available.
        rho: Spearman rank correlation of predicted and actual finals.
        error: Mean absolute error divided by the standard deviation of the actual finals.
        n_males: Number of males used.
    """

    fitness: float | None
    rho: float | None
    error: float | None
    n_males: int


def average_ranks(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``, ties sharing their average rank (``scipy.stats.rankdata``'s
    default, without importing scipy.stats, which costs about a second per process)."""
    a = np.asarray(values, dtype=float).ravel()
    sorter = np.argsort(a, kind="mergesort")
    inverse = np.empty(a.size, dtype=np.intp)
    inverse[sorter] = np.arange(a.size)
    ordered = a[sorter]
    new = np.r_[True, ordered[1:] != ordered[:-1]]
    dense = np.cumsum(new)[inverse]
    bounds = np.r_[np.nonzero(new)[0], a.size]
    return 0.5 * (bounds[dense] + bounds[dense - 1] + 1)


def rank_correlation(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); 0 when either side is constant."""
    ra = average_ranks(a)
    rb = average_ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def evaluate_female(
    genome: FemaleGenome,
    males: Sequence[MaleCurve],
    early_steps: int,
    error_weight: float = 0.5,
) -> FemaleFitness:
    """Score ``genome`` on finished males from their first ``early_steps`` reports.

    Args:
        genome: The predictor.
        males: Finished trials with known final values.
        early_steps: Reports the predictor may see.
        error_weight: Weight of the normalised error against rank correlation, >= 0.

    Returns:
        The :class:`FemaleFitness` (see the module docstring for the formula).
    """
    if len(males) < 3:
        return FemaleFitness(None, None, None, len(males))
    pred = np.array([m.predict(genome, early_steps) for m in males])
    actual = np.array([m.final for m in males])
    pred[~np.isfinite(pred)] = 0.0 if not np.isfinite(actual).any() else np.nanmean(actual)
    rho = rank_correlation(pred, actual)
    scale = float(actual.std())
    if not scale > 0:
        scale = max(float(np.abs(actual).mean()), 1e-12)
    error = float(np.abs(pred - actual).mean() / scale)
    return FemaleFitness(
        _round(rho - error_weight * error), _round(rho), _round(error), len(males)
    )
