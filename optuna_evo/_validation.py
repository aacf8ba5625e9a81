"""Argument checks shared by every public name: one wording and one rule for numbers.

Each check raises ``ValueError`` naming the argument and the allowed range (the rule for bad
values throughout the package; an object of the wrong kind altogether, such as a string
where a trial or a model is expected, is a ``TypeError`` in a few places) and returns the
value as a native Python type, so that numpy scalars and integral floats read back from JSON
or a storage (``10.0``) are accepted where an integer is meant, and callers keep exactly what
was checked. ``bool`` is never a number here: ``epochs=True`` is a mistake, not ``1``.
"""

from __future__ import annotations

from collections.abc import Collection
import math
import numbers
from typing import Any
from typing import Literal
from typing import TypeVar
from typing import overload

import numpy as np

_T = TypeVar("_T")

MIN_TORCH_SEED = -(2**63)
"""Smallest seed a training run takes (``torch.manual_seed`` and its generators' range)."""
MAX_TORCH_SEED = 2**64 - 1
"""Largest seed a training run takes."""


def _interval(low: float, high: float, low_open: bool = False, high_open: bool = False) -> str:
    if low == -math.inf and high == math.inf:
        return ""
    if high == math.inf:
        return f" > {low}" if low_open else f" >= {low}"
    if low == -math.inf:
        return f" < {high}" if high_open else f" <= {high}"
    return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def _error(name: str, what: str, value: Any, none_ok: bool) -> ValueError:
    return ValueError(f"`{name}` must be {'None or ' if none_ok else ''}{what}, got {value!r}.")


def _as_int(value: Any, low: float, high: float) -> int | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        number = int(value)
    elif math.isfinite(value) and float(value).is_integer():
        number = int(float(value))
    else:
        return None
    return number if low <= number <= high else None


def _as_float(
    value: Any, low: float, high: float, low_open: bool, high_open: bool
) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    below = number <= low if low_open else number < low
    above = number >= high if high_open else number > high
    return None if not math.isfinite(number) or below or above else number


@overload
def check_int(
    name: str,
    value: Any,
    low: int | None = ...,
    high: int | None = ...,
    *,
    none_ok: Literal[False] = ...,
) -> int: ...


@overload
def check_int(
    name: str, value: Any, low: int | None = ..., high: int | None = ..., *, none_ok: bool
) -> int | None: ...


def check_int(
    name: str,
    value: Any,
    low: int | None = None,
    high: int | None = None,
    *,
    none_ok: bool = False,
) -> int | None:
    """Return ``value`` as an ``int`` if it is an integer in ``[low, high]``.

    ``low`` / ``high`` of ``None`` leave that side open; ``none_ok`` also lets ``None``
    (meaning "no limit") through unchanged.
    """
    if value is None and none_ok:
        return None
    lo = -math.inf if low is None else low
    hi = math.inf if high is None else high
    number = _as_int(value, lo, hi)
    if number is None:
        raise _error(name, "an integer" + _interval(lo, hi), value, none_ok)
    return number


@overload
def check_float(
    name: str,
    value: Any,
    low: float = ...,
    high: float = ...,
    *,
    low_open: bool = ...,
    high_open: bool = ...,
    none_ok: Literal[False] = ...,
) -> float: ...


@overload
def check_float(
    name: str,
    value: Any,
    low: float = ...,
    high: float = ...,
    *,
    low_open: bool = ...,
    high_open: bool = ...,
    none_ok: bool,
) -> float | None: ...


def check_float(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
    none_ok: bool = False,
) -> float | None:
    """Return ``value`` as a ``float`` if it is a finite number in the given interval.

    ``low_open`` / ``high_open`` exclude the bound itself; ``none_ok`` also lets ``None``
    through unchanged.
    """
    if value is None and none_ok:
        return None
    number = _as_float(value, low, high, low_open, high_open)
    if number is None:
        what = "a finite number" + _interval(low, high, low_open, high_open)
        raise _error(name, what, value, none_ok)
    return number


def check_probability(name: str, value: Any) -> float:
    """Return ``value`` as a ``float`` if it is a probability, i.e. in ``[0, 1]``."""
    return check_float(name, value, 0, 1)


def check_choice(name: str, value: _T, choices: Collection[Any]) -> _T:
    """Return ``value`` if it is one of ``choices``."""
    try:
        ok = value in choices
    except TypeError:  # An unhashable value tested against a set.
        ok = False
    if not ok:
        raise ValueError(f"`{name}` must be one of {tuple(choices)}, got {value!r}.")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` as a ``bool`` if it is ``True`` or ``False`` (numpy bools included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False, got {value!r}.")
    return bool(value)
