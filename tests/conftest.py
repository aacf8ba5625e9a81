"""Shared pytest configuration."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("optuna.testing.pytest_samplers")
