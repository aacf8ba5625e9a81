"""The distribution of objective values per generation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
import math

from optuna.study import Study
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
import plotly.graph_objects as go

from optuna_evo.operators.selection import constraint_violation
from optuna_evo.visualization._utils import check_target
from optuna_evo.visualization._utils import drawn_generations
from optuna_evo.visualization._utils import empty_figure
from optuna_evo.visualization._utils import trial_value
from optuna_evo.visualization._utils import unit_dtick


def plot_generations(
    study: Study,
    *,
    target: Callable[[FrozenTrial], float] | None = None,
    target_name: str = "Objective Value",
) -> go.Figure:
    """Plot the values of each generation's COMPLETE trials as a box with every point.

    One box per generation shows how the population's values spread; its points are the
    trials (hover for the trial number). Generation 0 also holds the prior trials an
    optuna-evo sampler began with (another sampler's, or added with ``study.add_trial``) and
    those that became parents; after a change of sampler class, generations are laid out as
    in :func:`~optuna_evo.visualization.plot_genealogy` (see
    :func:`~optuna_evo.visualization._utils.drawn_generations`). For single-objective
    studies plotted without a ``target``, a line joins each generation's best value (by the
    study's direction), so a stalled or improving search is visible at a glance; with a
    ``target`` there is no such line, since whether higher or lower is better is unknown (as
    in Optuna's ``plot_optimization_history``). In a constrained study
    (``trial.set_constraint``) the line joins the best feasible values, and infeasible points
    say so on hover. The generation axis has a tick at every generation when it spans at most
    30, and plotly's own spacing beyond.

    Example:

        .. code-block:: python

            from optuna_evo.visualization import plot_generations

            fig = plot_generations(study)
            fig.show()

    Args:
        study: A study run by an optuna-evo sampler (or an Optuna genetic sampler).
        target: A function giving the value to plot for a COMPLETE trial; required for
            multi-objective studies, like in :mod:`optuna.visualization`. Its values get no
            "Best in generation" line.
        target_name: The y axis' title.

    Returns:
        A :class:`plotly.graph_objects.Figure` with one ``Box`` trace per generation followed,
        for single-objective studies without a ``target``, by the "Best in generation"
        line. It has no data, and says why, when no COMPLETE trial with a finite value has
        a generation: either no trial has one (not an optuna-evo study) or none of those
        that have one is COMPLETE yet (the message counts them by state).

    Raises:
        ValueError: If the study is multi-objective and ``target`` is ``None``.
    """
    check_target(study, target)
    layout = go.Layout(
        title="Generations Plot",
        xaxis={"title": "Generation"},
        yaxis={"title": target_name},
        showlegend=True,
    )
    trials = study.get_trials(deepcopy=False)
    drawn, _ = drawn_generations(trials)
    by_generation: dict[int, list[tuple[FrozenTrial, float]]] = {}
    # States of the trials that have a generation, to say why nothing is plotted.
    states: Counter[str] = Counter()
    for t in trials:
        g = drawn.get(t.number)
        if g is None:
            continue
        states[t.state.name] += 1
        value = trial_value(t, target)
        if value is not None and math.isfinite(value):
            by_generation.setdefault(g, []).append((t, value))
    if not by_generation:
        if not trials:
            message = "There are no trials to plot."
        elif not states:
            # The first words are those of earlier releases (the CLI's report prints them).
            message = (
                "No COMPLETE trial has a generation: no trial has one (not an optuna-evo "
                "study); run the study with an optuna-evo sampler."
            )
        else:
            counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
            message = (
                f"No COMPLETE trial with a finite value yet (trials with a generation: {counts})."
            )
        return empty_figure(layout, message, __name__)

    generations = sorted(by_generation)
    infeasible = {
        t.number for members in by_generation.values() for t, _ in members
        if constraint_violation(t) > 0.0
    }  # fmt: skip
    data: list[go.Box | go.Scatter] = []
    for g in generations:
        members = by_generation[g]
        data.append(
            go.Box(
                x=[g] * len(members),
                y=[v for _, v in members],
                name=f"Generation {g}",
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                text=[
                    f"Trial {t.number}" + (" (infeasible)" if t.number in infeasible else "")
                    for t, _ in members
                ],
                hovertemplate="%{text}<br>" + target_name + " %{y:.6g}<extra></extra>",
                marker={"color": "rgb(31, 119, 180)", "size": 6},
                line={"color": "rgb(31, 119, 180)"},
                showlegend=False,
            )
        )
    # The study's direction says which values are best, not which targets are.
    if target is None and len(study.directions) == 1:
        pick = max if study.direction == StudyDirection.MAXIMIZE else min
        # Feasible trials only, as study.best_trial; a generation without one leaves a gap.
        best = []
        for g in generations:
            feasible = [v for t, v in by_generation[g] if t.number not in infeasible]
            best.append(pick(feasible) if feasible else None)
        data.append(
            go.Scatter(
                x=generations,
                y=best,
                mode="lines+markers",
                name="Best in generation",
                line={"color": "rgb(214, 39, 40)"},
            )
        )
    figure = go.Figure(data=data, layout=layout)
    # A tick per generation, unless there are too many to label.
    figure.layout.xaxis.dtick = unit_dtick(generations[0], generations[-1])
    return figure
