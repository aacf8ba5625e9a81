"""optuna-evo pruners."""

from __future__ import annotations

from optuna_evo.pruners._learning_curve import CurvePredictor
from optuna_evo.pruners._learning_curve import LearningCurvePruner

__all__ = ["CurvePredictor", "LearningCurvePruner"]
