"""plotly figures for optuna-evo studies, in the style of :mod:`optuna.visualization`.

- :func:`plot_genealogy`: trials by generation, edges parent → child, coloured by value.
- :func:`plot_generations`: the distribution of values per generation.
- :func:`plot_predictor_accuracy`: GenderSampler's predicted vs actual final values.
- :func:`save_to_dashboard`: store the first two in the study for optuna-dashboard.
"""

from __future__ import annotations

from optuna_evo.visualization._dashboard import save_to_dashboard
from optuna_evo.visualization._genealogy import plot_genealogy
from optuna_evo.visualization._generations import plot_generations
from optuna_evo.visualization._predictor_accuracy import plot_predictor_accuracy

__all__ = [
    "plot_genealogy",
    "plot_generations",
    "plot_predictor_accuracy",
    "save_to_dashboard",
]
