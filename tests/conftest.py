"""Shared pytest configuration."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("optuna.testing.pytest_samplers")


@pytest.fixture(autouse=True, scope="session")
def _no_user_download_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Loaders search the download cache; a developer's ~/.cache must not decide a test.
    import os

    from optuna_evo.objectives.data import ENV_CACHE_DIR

    os.environ[ENV_CACHE_DIR] = str(tmp_path_factory.mktemp("download-cache"))


@pytest.fixture(autouse=True)
def _optuna_warnings_shown() -> object:
    # Some modules quiet Optuna when imported; which import ran last must not decide whether
    # a test that reads the log sees its warnings.
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(verbosity)
