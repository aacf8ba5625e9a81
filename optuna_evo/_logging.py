"""Loggers under Optuna's library root, so Optuna's logging settings govern optuna-evo too.

``optuna.logging.get_logger(__name__)`` in a package outside ``optuna`` returns a logger that
Optuna's handler never sees: its INFO lines vanish and ``optuna.logging.set_verbosity`` has no
effect on it. Naming the loggers ``optuna.optuna_evo.*`` puts them under the ``optuna`` logger,
so they print in Optuna's format (``[I 2026-... ]``) and obey ``set_verbosity``,
``disable_default_handler`` and ``enable_propagation`` like Optuna's own messages.
"""

from __future__ import annotations

import logging

import optuna


def get_logger(name: str) -> logging.Logger:
    """Return the logger of module ``name`` (pass ``__name__``), below Optuna's root logger."""
    return optuna.logging.get_logger(f"optuna.{name}")
