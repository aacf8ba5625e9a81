"""Benchmark problems for the CPU suite: four classic 10-D functions and one mixed problem.

Every problem is minimised and has a known optimum value, so results can be read as a gap.
Each problem exposes ``objective(trial)`` (define-by-run, for ``study.optimize`` or an
ask/tell loop) and ``evaluate(params)`` (the same function on a plain parameter dict, which
tests use to check the stated optimum).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
import math
from typing import Any

import optuna

DIM = 10
"""Dimension of the continuous problems."""

# 1-D minimiser of Styblinski-Tang, x* = root of 4x^3 - 32x + 5 = 0 near -2.9035.
_ST_X = -2.903534027771178
STYBLINSKI_TANG_MIN_PER_DIM = 0.5 * (_ST_X**4 - 16.0 * _ST_X**2 + 5.0 * _ST_X)
"""Exact per-dimension minimum of Styblinski-Tang (-39.16616570...; often quoted as -39.16599)."""


def sphere(x: list[float]) -> float:
    """Sphere function, ``sum(x_i^2)``; minimum 0 at the origin."""
    return float(sum(v * v for v in x))


def rosenbrock(x: list[float]) -> float:
    """Rosenbrock function; minimum 0 at ``(1, ..., 1)``."""
    return float(
        sum(100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2 for i in range(len(x) - 1))
    )


def rastrigin(x: list[float]) -> float:
    """Rastrigin function; minimum 0 at the origin, ~10^d local minima."""
    return float(10.0 * len(x) + sum(v * v - 10.0 * math.cos(2.0 * math.pi * v) for v in x))


def styblinski_tang(x: list[float]) -> float:
    """Styblinski-Tang function; minimum ``d * STYBLINSKI_TANG_MIN_PER_DIM`` at x_i ~ -2.9035."""
    return float(0.5 * sum(v**4 - 16.0 * v * v + 5.0 * v for v in x))


@dataclass(frozen=True)
class ContinuousProblem:
    """A box-constrained continuous function over ``dim`` float parameters ``x0..x{dim-1}``.

    Attributes:
        name: Display name.
        func: The function of a list of floats.
        low: Lower bound of every coordinate.
        high: Upper bound of every coordinate.
        optimum: The known minimum value.
        optimum_params: A minimiser (for tests).
        dim: Number of parameters.
    """

    name: str
    func: Callable[[list[float]], float]
    low: float
    high: float
    optimum: float
    optimum_params: dict[str, Any]
    dim: int = DIM

    def objective(self, trial: optuna.Trial) -> float:
        """Suggest ``x0..x{dim-1}`` and return the function value."""
        return self.func(
            [trial.suggest_float(f"x{i}", self.low, self.high) for i in range(self.dim)]
        )

    def evaluate(self, params: Mapping[str, Any]) -> float:
        """Return the function value of a parameter dict such as ``trial.params``."""
        return self.func([float(params[f"x{i}"]) for i in range(self.dim)])


# The mixed problem: a mock "training configuration" with a known best setting.
_INT_TARGETS = (3, -2, 7, 0)
_OPTIMIZER_OFFSET = {"sgd": 1.5, "momentum": 0.8, "adam": 0.0, "rmsprop": 0.4}
_OPTIMIZER_LR = {"sgd": 1e-2, "momentum": 3e-3, "adam": 1e-3, "rmsprop": 3e-4}
_ACTIVATION_OFFSET = {"relu": 0.3, "tanh": 0.6, "sigmoid": 1.0, "gelu": 0.0}


@dataclass(frozen=True)
class MixedProblem:
    """Mixed integer / log-float / categorical problem with a known optimum of 0.

    Parameters: four ints ``k0..k3`` in [-10, 10] (targets 3, -2, 7, 0), a log-int
    ``batch_size`` in [16, 1024] (target 128), a log-float ``lr`` in [1e-5, 1e-1], and two
    categoricals ``optimizer`` (sgd, momentum, adam, rmsprop) and ``activation`` (relu, tanh,
    sigmoid, gelu). Each categorical choice adds its own offset (0 only for ``adam`` and
    ``gelu``), and the best ``lr`` depends on the optimizer (1e-3 for adam), so the choice
    matters and interacts with a continuous parameter. Every term is >= 0::

        f = 0.05 * sum((k_i - t_i)^2) + 0.25 * (log2(batch_size) - 7)^2
            + (log10(lr / lr*(optimizer)))^2 + offset(optimizer) + offset(activation)

    Minimum 0 at k = (3, -2, 7, 0), batch_size = 128, optimizer = adam, lr = 1e-3,
    activation = gelu.
    """

    name: str = "mixed"
    optimum: float = 0.0
    optimum_params: dict[str, Any] = field(
        default_factory=lambda: {
            **{f"k{i}": t for i, t in enumerate(_INT_TARGETS)},
            "batch_size": 128,
            "lr": 1e-3,
            "optimizer": "adam",
            "activation": "gelu",
        }
    )

    def objective(self, trial: optuna.Trial) -> float:
        """Suggest the mixed parameters and return the objective value."""
        params: dict[str, Any] = {
            f"k{i}": trial.suggest_int(f"k{i}", -10, 10) for i in range(len(_INT_TARGETS))
        }
        params["batch_size"] = trial.suggest_int("batch_size", 16, 1024, log=True)
        params["lr"] = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        params["optimizer"] = trial.suggest_categorical("optimizer", list(_OPTIMIZER_OFFSET))
        params["activation"] = trial.suggest_categorical("activation", list(_ACTIVATION_OFFSET))
        return self.evaluate(params)

    def evaluate(self, params: Mapping[str, Any]) -> float:
        """Return the objective value of a parameter dict such as ``trial.params``."""
        ints = sum((int(params[f"k{i}"]) - t) ** 2 for i, t in enumerate(_INT_TARGETS))
        batch = (math.log2(int(params["batch_size"])) - 7.0) ** 2
        optimizer = str(params["optimizer"])
        lr = math.log10(float(params["lr"]) / _OPTIMIZER_LR[optimizer]) ** 2
        offsets = _OPTIMIZER_OFFSET[optimizer] + _ACTIVATION_OFFSET[str(params["activation"])]
        return float(0.05 * ints + 0.25 * batch + lr + offsets)


Problem = ContinuousProblem | MixedProblem
"""Any benchmark problem."""


def _same(value: float) -> dict[str, Any]:
    return {f"x{i}": value for i in range(DIM)}


PROBLEMS: tuple[Problem, ...] = (
    ContinuousProblem("sphere", sphere, -5.12, 5.12, 0.0, _same(0.0)),
    ContinuousProblem("rosenbrock", rosenbrock, -5.0, 10.0, 0.0, _same(1.0)),
    ContinuousProblem("rastrigin", rastrigin, -5.12, 5.12, 0.0, _same(0.0)),
    ContinuousProblem(
        "styblinski-tang",
        styblinski_tang,
        -5.0,
        5.0,
        DIM * STYBLINSKI_TANG_MIN_PER_DIM,
        _same(_ST_X),
    ),
    MixedProblem(),
)
"""The five problems of the CPU suite, in report order."""


def get_problem(name: str) -> Problem:
    """Return the problem called ``name`` from :data:`PROBLEMS`."""
    for problem in PROBLEMS:
        if problem.name == name:
            return problem
    raise KeyError(f"unknown problem {name!r}; known: {[p.name for p in PROBLEMS]}")
