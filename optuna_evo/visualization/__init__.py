"""plotly figures for optuna-evo studies, in the style of :mod:`optuna.visualization`."""

from __future__ import annotations

from optuna_evo.visualization._predictor_accuracy import plot_predictor_accuracy

__all__ = ["plot_predictor_accuracy"]
