"""The shared argument checks: what passes, what it becomes, and what the error says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optuna_evo._validation import check_bool
from optuna_evo._validation import check_choice
from optuna_evo._validation import check_float
from optuna_evo._validation import check_int
from optuna_evo._validation import check_probability


@pytest.mark.parametrize("value", [3, np.int64(3), 3.0, np.float32(3.0)])
def test_check_int_accepts_integral_numbers_and_returns_a_python_int(value: object) -> None:
    out = check_int("n", value, 1, 5)
    assert out == 3 and type(out) is int


@pytest.mark.parametrize(
    "value, message",
    [
        (True, r"`n` must be an integer in \[1, 5\], got True\."),
        (0, r"in \[1, 5\], got 0\."),
        (6, r"in \[1, 5\], got 6\."),
        (2.5, r"got 2\.5\."),
        (math.inf, r"got inf\."),
        (math.nan, r"got nan\."),
        ("3", r"got '3'\."),
        (None, r"got None\."),
    ],
)
def test_check_int_names_the_argument_and_the_range(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_int("n", value, 1, 5)


def test_check_int_bounds_and_none() -> None:
    assert check_int("seed", -7) == -7
    assert check_int("limit", None, 1, none_ok=True) is None
    with pytest.raises(ValueError, match=r"`limit` must be None or an integer >= 1, got 0\."):
        check_int("limit", 0, 1, none_ok=True)
    with pytest.raises(ValueError, match=r"`k` must be an integer <= 4, got 5\."):
        check_int("k", 5, high=4)


@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.5), np.int8(1)])
def test_check_float_returns_a_python_float(value: object) -> None:
    out = check_float("p", value, 0, 1)
    assert out == float(value) and type(out) is float


@pytest.mark.parametrize(
    "kwargs, value, message",
    [
        ({"low": 0, "low_open": True}, 0.0, r"`x` must be a finite number > 0, got 0\.0\."),
        ({"low": 0, "high": 1, "high_open": True}, 1.0, r"in \[0, 1\), got 1\.0\."),
        ({"low": 0, "high": 1, "low_open": True}, 0, r"in \(0, 1\], got 0\."),
        ({"high": 2}, 3, r"`x` must be a finite number <= 2, got 3\."),
        ({}, math.nan, r"`x` must be a finite number, got nan\."),
        ({}, math.inf, r"got inf\."),
        ({}, False, r"got False\."),
        ({}, "0.1", r"got '0\.1'\."),
    ],
)
def test_check_float_refuses_values_outside_the_interval(
    kwargs: dict, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check_float("x", value, **kwargs)


def test_check_float_none_and_probability() -> None:
    assert check_float("clip", None, 0, low_open=True, none_ok=True) is None
    with pytest.raises(ValueError, match=r"`clip` must be None or a finite number > 0"):
        check_float("clip", -1.0, 0, low_open=True, none_ok=True)
    assert check_probability("p", 1) == 1.0
    with pytest.raises(ValueError, match=r"`p` must be a finite number in \[0, 1\]"):
        check_probability("p", 1.01)


def test_check_choice_and_bool() -> None:
    assert check_choice("mode", "single", ("single", "multi")) == "single"
    with pytest.raises(ValueError, match=r"`mode` must be one of \('single', 'multi'\)"):
        check_choice("mode", "both", ("single", "multi"))
    with pytest.raises(ValueError, match="`mode` must be one of"):
        check_choice("mode", ["single"], {"single", "multi"})  # Unhashable: no TypeError.
    assert check_bool("flag", np.bool_(True)) is True
    with pytest.raises(ValueError, match=r"`flag` must be True or False, got 1\."):
        check_bool("flag", 1)
