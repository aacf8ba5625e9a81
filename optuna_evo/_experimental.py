"""Experimental-API warnings in Optuna's style, versioned by optuna-evo's own releases."""

from __future__ import annotations

from collections.abc import Callable
import functools
from typing import Any
from typing import TypeVar
import warnings

from optuna.exceptions import ExperimentalWarning

_T = TypeVar("_T", bound=type)

_NOTE = """

.. note::
    Added in optuna-evo v{ver} as an experimental feature. The interface may change in newer
    versions without prior notice.
"""


def experimental_class(version: str) -> Callable[[_T], _T]:
    """Mark a class experimental: its constructor emits an ``ExperimentalWarning``.

    Args:
        version: The optuna-evo version that introduced the class.
    """

    def decorator(cls: _T) -> _T:
        # mypy sees ``cls`` as an instance of ``type``; reading the class's own __init__ is sound.
        init = cls.__init__  # type: ignore[misc]

        @functools.wraps(init)
        def wrapped_init(self: Any, *args: Any, **kwargs: Any) -> None:
            warnings.warn(
                f"{cls.__name__} is experimental (supported from optuna-evo v{version}). "
                "The interface can change in the future.",
                ExperimentalWarning,
                stacklevel=2,
            )
            init(self, *args, **kwargs)

        cls.__init__ = wrapped_init  # type: ignore[misc]
        cls.__doc__ = (cls.__doc__ or "").rstrip() + _NOTE.format(ver=version)
        return cls

    return decorator
