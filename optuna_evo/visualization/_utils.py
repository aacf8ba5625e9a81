"""Helpers shared by the evolution plots: generations, targets, empty figures."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.study import Study
from optuna.trial import FrozenTrial
import plotly.graph_objects as go

from optuna_evo._logging import get_logger
from optuna_evo.samplers._population import LINEAGE_KEY
from optuna_evo.samplers._population import generation_key_of

_GENERATION_SUFFIX = ":generation"
MAX_UNIT_TICKS = 30
"""An integer axis spanning at most this many steps gets a tick at every integer; a longer
one leaves the spacing to plotly (hundreds of labels would overlap)."""


def check_target(study: Study, target: Callable[[FrozenTrial], float] | None) -> None:
    """Raise ``ValueError`` like :mod:`optuna.visualization` for multi-objective studies."""
    if target is None and len(study.directions) > 1:
        raise ValueError(
            "If the `study` is being used for multi-objective optimization, "
            "please specify the `target`."
        )


def trial_value(trial: FrozenTrial, target: Callable[[FrozenTrial], float] | None) -> float | None:
    """The value to plot for a trial: ``target(trial)`` or its objective value.

    ``None`` for trials that are not COMPLETE (pruned, failed, running), as in Optuna's plots.
    """
    if trial.state != optuna.trial.TrialState.COMPLETE:
        return None
    return float(target(trial)) if target is not None else trial.value


def generation_of(trial: FrozenTrial) -> int | None:
    """A trial's generation: optuna-evo's lineage, else an Optuna GA sampler's key.

    Optuna's genetic samplers (NSGA-II, NSGA-III) store it as the system attr
    ``{SamplerClass}:generation``; they record no parents.
    """
    info = trial.system_attrs.get(LINEAGE_KEY)
    if info is not None:
        return int(info["generation"])
    for key, value in trial.system_attrs.items():
        if key.endswith(_GENERATION_SUFFIX) and isinstance(value, int):
            return value
    return None


def drawn_generations(trials: Sequence[FrozenTrial]) -> tuple[dict[int, int], set[int]]:
    """Where the evolution plots draw each trial: ``({trial number: generation}, prior)``.

    A trial with a generation is drawn at it. Generations are numbered per sampler class, and
    a sampler continuing a study counts the trials it found as its generation 0, so when
    several classes ran one after another each class's generations follow the last of the
    class before it: every parent is drawn left of its children. ``prior`` holds the trials
    without a generation (another sampler's, or added with ``study.add_trial``) that are
    drawn: those a sampler found when it began (at its generation 0) and those that became
    parents (at their child's class's generation 0).

    Args:
        trials: The study's trials, in number order.

    Returns:
        The generation to draw each placed trial at, by trial number, and the numbers of the
        placed trials that have no generation of their own.
    """
    found = [(t, generation_key_of(t) or LINEAGE_KEY, generation_of(t)) for t in trials]
    first: dict[str, int] = {}  # a class's first trial number
    last: dict[str, int] = {}  # its newest generation
    for t, key, g in found:
        if g is not None:
            first.setdefault(key, t.number)
            last[key] = max(last.get(key, 0), g)
    offset: dict[str, int] = {}
    total = 0
    for key in sorted(first, key=first.__getitem__):
        offset[key] = total
        total += last[key]
    drawn = {t.number: offset[key] + g for t, key, g in found if g is not None}
    prior: set[int] = set()
    starts = sorted((first[key], offset[key]) for key in first)
    for t, _, g in found:
        later = [o for start, o in starts if start > t.number]
        if g is None and later:
            drawn[t.number] = later[0]
            prior.add(t.number)
    for t, key, g in found:
        for number in lineage_of(t).get("parent_numbers", []) if g is not None else ():
            if int(number) not in drawn:
                drawn[int(number)] = offset[key]
                prior.add(int(number))
    return drawn, prior


def lineage_of(trial: FrozenTrial) -> dict[str, Any]:
    """The stored lineage dict of a trial (empty for trials no optuna-evo sampler handled)."""
    return trial.system_attrs.get(LINEAGE_KEY) or {}


def unit_dtick(low: int, high: int) -> int | None:
    """The ``dtick`` of an axis of integers from ``low`` to ``high``: 1 when they are few.

    Generations and positions are integers, which plotly would label at halves on a short
    axis; on a long one (``None``) plotly picks a spacing whose labels do not overlap.
    """
    return 1 if high - low <= MAX_UNIT_TICKS else None


def empty_figure(layout: go.Layout, message: str, logger_name: str) -> go.Figure:
    """Log ``message`` as a warning (like Optuna's plots) and show it in an empty figure."""
    get_logger(logger_name).warning(message)
    figure = go.Figure(data=[], layout=layout)
    figure.add_annotation(
        text=message,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
    )
    return figure
