"""Predicted vs actual final values of the best female predictor, per generation."""

from __future__ import annotations

from collections.abc import Sequence
import math

import optuna
from optuna.study import Study
import plotly.graph_objects as go

from optuna_evo._logging import get_logger
from optuna_evo.predictors.female import FemaleGenome
from optuna_evo.predictors.female import rank_correlation
from optuna_evo.predictors.population import load_females
from optuna_evo.predictors.population import male_curves
from optuna_evo.predictors.population import stored_female_generations
from optuna_evo.samplers._population import LINEAGE_KEY

_logger = get_logger(__name__)


def plot_predictor_accuracy(study: Study, generations: Sequence[int] | None = None) -> go.Figure:
    """Plot each generation's best female's predicted final values against the actual ones.

    For every generation ``g`` with a stored female population (a study run by
    :class:`~optuna_evo.samplers.gender.GenderSampler`), the population's best female
    predicts the final value of each COMPLETE trial *of generation g* from its first
    ``early_steps`` reports. Those trials were not among the ones the female was selected on
    (only earlier generations were), so the points show out-of-sample accuracy. Points on the
    dashed diagonal are exact; each legend entry gives the number of trials, the generation's
    Spearman ρ and, for comparison, that of the "last value" predictor on the same trials.

    Example:

        .. code-block:: python

            from optuna_evo.visualization import plot_predictor_accuracy

            fig = plot_predictor_accuracy(study)
            fig.show()

    Args:
        study: A study run with GenderSampler (trials that reported intermediate values).
        generations: Generations to show; all stored ones by default.

    Returns:
        A :class:`plotly.graph_objects.Figure`. It has no data when nothing can be plotted
        (no stored females, or no finished trial with more than ``early_steps`` reports).
    """
    layout = go.Layout(
        title="Predictor Accuracy Plot",
        xaxis={"title": "Actual final value"},
        yaxis={"title": "Predicted final value"},
        legend={"title": "Best female of"},
    )
    stored = stored_female_generations(study)
    chosen = stored if generations is None else [g for g in generations if g in stored]
    trials = study.get_trials(deepcopy=False)
    by_generation: dict[int, list[optuna.trial.FrozenTrial]] = {}
    for t in trials:
        info = t.system_attrs.get(LINEAGE_KEY)
        if info is not None:
            by_generation.setdefault(int(info["generation"]), []).append(t)

    data: list[go.Scatter] = []
    low, high = math.inf, -math.inf
    for g in chosen:
        population = load_females(study, g)
        if population is None or population.best is None:
            continue
        k = population.early_steps
        males = male_curves(by_generation.get(g, []), k)
        if not males:
            continue
        genome = population.best
        predicted = [m.predict(genome, k) for m in males]
        actual = [m.final for m in males]
        baseline = [m.predict(FemaleGenome.last_value(), k) for m in males]
        if len(males) >= 3:
            rho = rank_correlation(predicted, actual)
            rho_last = rank_correlation(baseline, actual)
            label = f"Generation {g} (n={len(males)}, ρ={rho:.2f}; last value ρ={rho_last:.2f})"
        else:  # a rank correlation of one or two points says nothing
            label = f"Generation {g} (n={len(males)})"
        low = min(low, *actual, *predicted)
        high = max(high, *actual, *predicted)
        data.append(
            go.Scatter(
                x=actual,
                y=predicted,
                mode="markers",
                name=label,
                text=[f"Trial {m.number}" for m in males],
                hovertemplate="%{text}<br>actual %{x:.4g}<br>predicted %{y:.4g}",
            )
        )
    if not data:
        _logger.warning(
            "There is nothing to plot: no stored female population with finished trials of "
            "its generation that reported more than `early_steps` values."
        )
        return go.Figure(data=[], layout=layout)
    data.append(
        go.Scatter(
            x=[low, high],
            y=[low, high],
            mode="lines",
            line={"dash": "dash", "color": "gray"},
            name="Exact prediction",
            hoverinfo="skip",
        )
    )
    return go.Figure(data=data, layout=layout)
