"""The family tree of an evolutionary study: trials by generation, edges parent → child."""

from __future__ import annotations

from collections.abc import Callable
import math
from typing import Any

from optuna.study import Study
from optuna.trial import FrozenTrial
import plotly.graph_objects as go

from optuna_evo.visualization._utils import check_target
from optuna_evo.visualization._utils import drawn_generations
from optuna_evo.visualization._utils import empty_figure
from optuna_evo.visualization._utils import generation_of
from optuna_evo.visualization._utils import lineage_of
from optuna_evo.visualization._utils import trial_value
from optuna_evo.visualization._utils import unit_dtick

_MAX_HOVER_PARAMS = 12


def plot_genealogy(
    study: Study,
    *,
    target: Callable[[FrozenTrial], float] | None = None,
    target_name: str = "Objective Value",
) -> go.Figure:
    """Plot every trial at (generation, position in generation) with edges parent → child.

    Trials of one generation are stacked in trial-number order (position 0 is the
    generation's first trial; in a study one optuna-evo sampler ran from its start, the
    position is the ``agent`` column of :func:`optuna_evo.export_csv`). Markers
    of COMPLETE trials are coloured by their value; those whose value is not finite (``±inf``,
    or a ``target`` giving ``nan``) cannot be placed on the colour scale and have their own
    dark grey trace, "Non-finite value"; pruned, failed and running trials are light grey.
    Each edge joins a parent to its child as recorded by the sampler (see
    :func:`optuna_evo.lineage`); MAGE's elites point at their own previous agent. Hovering a
    marker shows the trial number, role, parents, value and parameters. Each axis has a tick
    at every integer when it spans at most 30 (generations or positions), and plotly's own
    spacing beyond.

    A study's prior trials (finished before an optuna-evo sampler took over: another
    sampler's, or added with ``study.add_trial``) count as generation 0 for the samplers;
    those that became parents are drawn there, with the role ``prior``. When samplers of
    several classes ran one after another (each numbers its generations from 0), each class's
    generations are drawn after the last of the class before it; classes whose trials
    interleave keep their own numbers (see
    :func:`~optuna_evo.visualization._utils.drawn_generations`).

    Studies run by an Optuna genetic sampler (``NSGAIISampler``, ``NSGAIIISampler``) are
    plotted too, without edges: those samplers store generations but not parents.

    Example:

        .. code-block:: python

            from optuna_evo.visualization import plot_genealogy

            fig = plot_genealogy(study)
            fig.show()

    Args:
        study: A study run by an optuna-evo sampler.
        target: A function giving the value to colour a COMPLETE trial by; required for
            multi-objective studies, like in :mod:`optuna.visualization`.
        target_name: The colour bar's title.

    Returns:
        A :class:`plotly.graph_objects.Figure`: an edge trace (lines) followed by the marker
        traces ("Trial", "No value (pruned, failed or running)", "Non-finite value"; each
        only when it has trials). It has no data, and says why, when no trial has a
        generation; trials of any state are plotted (failed and running ones in grey), so an
        optuna-evo study whose trials all failed still has its figure.

    Raises:
        ValueError: If the study is multi-objective and ``target`` is ``None``.
    """
    check_target(study, target)
    layout = go.Layout(
        title="Genealogy Plot",
        xaxis={"title": "Generation"},
        yaxis={"title": "Position in generation"},
        hovermode="closest",
    )
    trials = study.get_trials(deepcopy=False)
    drawn, prior = drawn_generations(trials)
    # Of the prior trials, those that became parents: the others would only crowd the tree.
    parent_numbers = {int(n) for t in trials for n in lineage_of(t).get("parent_numbers", [])}
    placed = [
        (drawn[t.number], t)
        for t in trials
        if t.number in drawn and (t.number not in prior or t.number in parent_numbers)
    ]
    if not placed:
        message = (
            "There are no trials to plot."
            if not trials
            else "No trial has a generation (not an optuna-evo study): run the study with an "
            "optuna-evo sampler."
        )
        return empty_figure(layout, message, __name__)

    placed.sort(key=lambda item: (item[0], item[1].number))
    position: dict[int, tuple[int, int]] = {}  # trial number -> (generation, position)
    counts: dict[int, int] = {}
    for g, t in placed:
        position[t.number] = (g, counts.get(g, 0))
        counts[g] = counts.get(g, 0) + 1

    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for _, t in placed:
        child = position[t.number]
        for number in lineage_of(t).get("parent_numbers", []):
            parent = position.get(int(number))
            if parent is None:  # a parent no longer in the study (deleted storage rows)
                continue
            edge_x += [parent[0], child[0], None]
            edge_y += [parent[1], child[1], None]

    valued: list[tuple[int, FrozenTrial, float | None]] = []
    non_finite: list[tuple[int, FrozenTrial, float | None]] = []
    unvalued: list[tuple[int, FrozenTrial, float | None]] = []
    for g, t in placed:
        value = trial_value(t, target)
        if value is None:
            unvalued.append((g, t, None))
        elif math.isfinite(value):
            valued.append((g, t, value))
        else:  # COMPLETE, but off any colour scale: shown apart, value in the hover
            non_finite.append((g, t, value))

    def markers(
        points: list[tuple[int, FrozenTrial, float | None]], name: str, marker: dict[str, Any]
    ) -> go.Scatter:
        return go.Scatter(
            x=[g for g, _, _ in points],
            y=[position[t.number][1] for _, t, _ in points],
            mode="markers",
            name=name,
            text=[_hover(g, t, v, target_name) for g, t, v in points],
            hovertemplate="%{text}<extra></extra>",
            marker={"size": 11, "line": {"width": 0.5, "color": "Grey"}, **marker},
        )

    data: list[go.Scatter] = [
        go.Scatter(
            x=edge_x,
            y=edge_y,
            mode="lines",
            line={"color": "rgba(120, 120, 120, 0.5)", "width": 1},
            name="Parent → child",
            hoverinfo="skip",
        )
    ]
    if valued:
        colours = {
            "color": [v for _, _, v in valued],
            "colorscale": "Viridis",
            "showscale": True,
            "colorbar": {"title": {"text": target_name}},
        }
        data.append(markers(valued, "Trial", colours))
    if unvalued:
        data.append(
            markers(unvalued, "No value (pruned, failed or running)", {"color": "#cccccc"})
        )
    if non_finite:
        data.append(
            markers(non_finite, "Non-finite value", {"symbol": "diamond", "color": "#555555"})
        )
    figure = go.Figure(data=data, layout=layout)
    # A tick per generation and per position, unless there are too many to label.
    figure.layout.xaxis.dtick = unit_dtick(placed[0][0], placed[-1][0])
    figure.layout.yaxis.dtick = unit_dtick(0, max(counts.values()) - 1)
    return figure


def _hover(generation: int, trial: FrozenTrial, value: float | None, target_name: str) -> str:
    info = lineage_of(trial)
    lines = [f"Trial {trial.number} ({trial.state.name})", f"Generation {generation}"]
    own = generation_of(trial)
    if own is not None and own != generation:  # an earlier sampler class's, shifted
        lines.append(f"(generation {own} of its sampler)")
    if info:
        lines.append(f"Role {info['role']}")
        parents = ", ".join(str(n) for n in info.get("parent_numbers", []))
        lines.append(f"Parents {parents or '-'}")
    elif own is None:
        lines.append("Role prior")
    if value is not None:
        lines.append(f"{target_name} {value:.6g}")
    items = sorted(trial.params.items())
    lines += [f"{name} {_short(v)}" for name, v in items[:_MAX_HOVER_PARAMS]]
    if len(items) > _MAX_HOVER_PARAMS:
        lines.append(f"... {len(items) - _MAX_HOVER_PARAMS} more params")
    return "<br>".join(lines)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
