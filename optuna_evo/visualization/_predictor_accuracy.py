"""Predicted vs actual final values of the best female predictor, per generation."""

from __future__ import annotations

from collections.abc import Sequence
import math

import optuna
from optuna.study import Study
import plotly.graph_objects as go

from optuna_evo.predictors.female import FemaleGenome
from optuna_evo.predictors.female import rank_correlation
from optuna_evo.predictors.population import load_females
from optuna_evo.predictors.population import male_curves
from optuna_evo.predictors.population import stored_female_generations
from optuna_evo.samplers._population import LINEAGE_KEY
from optuna_evo.visualization._utils import empty_figure


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
        A :class:`plotly.graph_objects.Figure`. It has no data, and says why, when nothing
        can be plotted: no stored female population (not a GenderSampler study), none of the
        requested ``generations`` stored, or no COMPLETE trial of a stored generation with
        more than ``early_steps`` reports (e.g. every trial reported once).
    """
    layout = go.Layout(
        title="Predictor Accuracy Plot",
        xaxis={"title": "Actual final value"},
        yaxis={"title": "Predicted final value"},
        legend={"title": "Best female of"},
    )
    stored = stored_female_generations(study)
    trials = study.get_trials(deepcopy=False)
    if not stored:
        message = (
            "There are no trials to plot."
            if not trials
            else "No generation has a stored female population: run the study with GenderSampler."
        )
        return empty_figure(layout, message, __name__)
    chosen = stored if generations is None else [g for g in generations if g in stored]
    if not chosen:
        return empty_figure(
            layout,
            f"None of the generations {list(generations or [])} has a stored female "
            f"population (stored: {_span(stored)}): there is nothing to plot.",
            __name__,
        )
    by_generation: dict[int, list[optuna.trial.FrozenTrial]] = {}
    for t in trials:
        info = t.system_attrs.get(LINEAGE_KEY)
        if info is not None:
            by_generation.setdefault(int(info["generation"]), []).append(t)

    data: list[go.Scatter] = []
    low, high = math.inf, -math.inf
    # Why generations gave no points, for the message of an empty figure.
    empty_populations: list[int] = []
    no_males: list[int] = []
    early_steps: set[int] = set()
    n_complete = 0
    for g in chosen:
        population = load_females(study, g)
        if population is None or population.best is None:
            empty_populations.append(g)
            continue
        k = population.early_steps
        members = by_generation.get(g, [])
        males = male_curves(members, k)
        if not males:
            no_males.append(g)
            early_steps.add(k)
            n_complete += sum(t.state == optuna.trial.TrialState.COMPLETE for t in members)
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
        return empty_figure(
            layout, _empty_reason(empty_populations, no_males, early_steps, n_complete), __name__
        )
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


def _empty_reason(
    empty_populations: list[int], no_males: list[int], early_steps: set[int], n_complete: int
) -> str:
    """Why no generation gave points (each one had an empty population or no usable trial)."""
    if not no_males:
        return f"The female populations of {_span(empty_populations)} are empty."
    k = f"early_steps={min(early_steps)}" if len(early_steps) == 1 else "early_steps"
    if n_complete == 0:
        message = f"No trial of {_span(no_males)} is COMPLETE yet"
    else:
        message = (
            f"No trial has enough intermediate values for the predictor: none of the "
            f"{n_complete} COMPLETE trials of {_span(no_males)} has a finite value and more "
            f"than {k} finite reports"
        )
    message += ", so the best female has nothing to predict."
    if empty_populations:
        message += f" The female populations of {_span(empty_populations)} are empty."
    return message


def _span(generations: Sequence[int]) -> str:
    """``generation 3`` / ``generations 0, 1`` for a message; ``first..last`` when many."""
    if len(generations) == 1:
        return f"generation {generations[0]}"
    if len(generations) > 4:
        return f"generations {generations[0]}..{generations[-1]}"
    return "generations " + ", ".join(str(g) for g in generations)
