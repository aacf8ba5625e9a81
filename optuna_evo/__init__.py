"""optuna-evo: evolutionary search for Optuna.

Public names: the samplers, the learning-curve pruner, the architecture helpers, and the
helpers that read a trial's lineage from storage. Subpackages: ``objectives`` (data, models,
training loop), ``checkpoint``, ``genreg``, ``predictors``, ``operators``, ``visualization``;
each is importable as an attribute (``optuna_evo.visualization.plot_genealogy``) and loads on
first access.
"""

import importlib
from typing import Any

from optuna_evo.architecture import Architecture
from optuna_evo.architecture import ArchitectureSpace
from optuna_evo.architecture import suggest_architecture
from optuna_evo.history import execution_details
from optuna_evo.history import export_csv
from optuna_evo.pruners import LearningCurvePruner
from optuna_evo.samplers import GenderSampler
from optuna_evo.samplers import GeneticSampler
from optuna_evo.samplers import Lineage
from optuna_evo.samplers import MAGESampler
from optuna_evo.samplers import PredictorAssist
from optuna_evo.samplers import assist_summary
from optuna_evo.samplers._population import lineage
from optuna_evo.samplers._population import parents

__version__ = "0.1.0"

# Subpackages that pull in torch, safetensors or plotly load on first attribute access, so
# importing the samplers stays light.
_SUBMODULES = frozenset(
    {
        "architecture",
        "checkpoint",
        "cli",
        "genreg",
        "history",
        "objectives",
        "operators",
        "predictors",
        "pruners",
        "samplers",
        "visualization",
    }
)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"optuna_evo.{name}")
    raise AttributeError(f"module 'optuna_evo' has no attribute {name!r}")


__all__ = [
    "Architecture",
    "ArchitectureSpace",
    "GenderSampler",
    "GeneticSampler",
    "LearningCurvePruner",
    "Lineage",
    "MAGESampler",
    "PredictorAssist",
    "__version__",
    "assist_summary",
    "execution_details",
    "export_csv",
    "lineage",
    "parents",
    "suggest_architecture",
]
