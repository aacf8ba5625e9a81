"""Show the evolution plots in optuna-dashboard."""

from __future__ import annotations

import importlib.util

from optuna.study import Study

from optuna_evo._logging import get_logger
from optuna_evo.visualization._genealogy import plot_genealogy
from optuna_evo.visualization._generations import plot_generations
from optuna_evo.visualization._utils import generation_of

_logger = get_logger(__name__)

GENEALOGY_ID = "optuna-evo-genealogy"
"""Graph object id of the genealogy figure in the study (re-saving replaces it)."""

GENERATIONS_ID = "optuna-evo-generations"
"""Graph object id of the generations figure in the study."""


def save_to_dashboard(study: Study) -> list[str]:
    """Save the genealogy and generations figures to the study for optuna-dashboard.

    Uses :func:`optuna_dashboard.save_plotly_graph_object` with fixed graph object ids, so
    calling it again (every generation, or from several workers) replaces the figures instead
    of adding copies. optuna-dashboard shows them on the study's page. Figures with nothing
    to plot yet are not saved, nor are those of multi-objective studies (the plots need a
    ``target`` there).

    The per-trial generation, role, parents (and MAGE's architecture) need no saving: the
    samplers mirror them into user attrs, which the dashboard lists for every trial.

    Args:
        study: The study to annotate.

    Returns:
        The ids of the saved figures; empty when optuna-dashboard is not installed.
    """
    if importlib.util.find_spec("optuna_dashboard") is None:
        _logger.info("optuna-dashboard is not installed; no figure saved to the study.")
        return []
    from optuna_dashboard import save_plotly_graph_object

    if len(study.directions) > 1:
        return []  # the plots need a target for multi-objective studies
    # Checked first so studies of non-evolutionary samplers skip the plots' warnings.
    if not any(generation_of(t) is not None for t in study.get_trials(deepcopy=False)):
        return []
    saved = []
    for graph_id, plot in ((GENEALOGY_ID, plot_genealogy), (GENERATIONS_ID, plot_generations)):
        figure = plot(study)
        if figure.data:
            save_plotly_graph_object(study, figure, graph_object_id=graph_id)
            saved.append(graph_id)
    return saved
