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
    key = generation_key_of(trial)
    return None if key is None else int(trial.system_attrs[key])


def drawn_generations(trials: Sequence[FrozenTrial]) -> tuple[dict[int, int], set[int]]:
    """Where the evolution plots draw each trial: ``({trial number: generation}, prior)``.

    A trial with a generation is drawn at it. Generations are numbered per sampler class, and
    an optuna-evo sampler continuing a study counts the trials it found as its generation 0,
    so when classes ran one after another (their trials do not interleave) each class's
    generations are drawn after the last of the class before it: every parent is drawn left
    of its children. ``prior`` holds the drawn trials without a generation (another
    sampler's, or added with ``study.add_trial``): those before an optuna-evo sampler's first
    trial (its generation 0; by trial number, which is what the sampler counted unless
    results were added while its generation 0 was filling) and those that became parents
    (at their child's class's generation 0).

    Args:
        trials: The study's trials, in number order.

    Returns:
        The generation to draw each placed trial at, by trial number, and the numbers of the
        placed trials that have no generation of their own.
    """
    found = [(t, generation_key_of(t) or LINEAGE_KEY, generation_of(t)) for t in trials]
    first: dict[str, int] = {}  # a class's first and last trial numbers, newest generation
    last: dict[str, int] = {}
    newest: dict[str, int] = {}
    evo: set[str] = set()  # classes that count prior trials (optuna-evo's, with a lineage)
    for t, key, g in found:
        if g is not None:
            first.setdefault(key, t.number)
            last[key] = t.number
            newest[key] = max(newest.get(key, 0), g)
            if LINEAGE_KEY in t.system_attrs:
                evo.add(key)
    order = sorted(first, key=first.__getitem__)
    sequential = all(last[a] < first[b] for a, b in zip(order, order[1:]))
    offset: dict[str, int] = {}
    total = 0
    for key in order:
        offset[key] = total if sequential else 0
        total += newest[key]
    drawn = {t.number: offset[key] + g for t, key, g in found if g is not None}
    prior: set[int] = set()
    starts = [(first[key], offset[key]) for key in order if key in evo]
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
