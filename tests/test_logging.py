"""optuna-evo's messages go through Optuna's logging and obey its settings."""

from __future__ import annotations

import importlib
import logging
import pkgutil

import optuna
import pytest

import optuna_evo


def _package_loggers() -> dict[str, logging.Logger]:
    loggers = {}
    for info in pkgutil.walk_packages(optuna_evo.__path__, "optuna_evo."):
        module = importlib.import_module(info.name)
        logger = getattr(module, "_logger", None)
        if isinstance(logger, logging.Logger):
            loggers[info.name] = logger
    return loggers


def test_every_module_logger_sits_below_optunas_root_logger() -> None:
    loggers = _package_loggers()
    assert len(loggers) >= 8  # samplers, pruner, objectives, checkpoint, plots, GENREG
    for name, logger in loggers.items():
        assert logger.name == f"optuna.{name}"


def test_optuna_verbosity_and_propagation_govern_the_package(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = _package_loggers()["optuna_evo.samplers._population"]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.enable_propagation()
    try:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        assert not logger.isEnabledFor(logging.INFO)
        with caplog.at_level(logging.INFO):
            logger.info("hidden")
            optuna.logging.set_verbosity(optuna.logging.INFO)
            logger.info("shown")
    finally:
        optuna.logging.set_verbosity(verbosity)
        optuna.logging.disable_propagation()
    assert "shown" in caplog.text and "hidden" not in caplog.text
