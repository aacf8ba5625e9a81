"""optuna-evo: evolutionary search for Optuna.

Public names: the samplers, and the helpers that read a trial's lineage from storage.
"""

from optuna_evo.samplers import GeneticSampler
from optuna_evo.samplers import Lineage
from optuna_evo.samplers._population import lineage
from optuna_evo.samplers._population import parents

__version__ = "0.1.0"

__all__ = ["GeneticSampler", "Lineage", "__version__", "lineage", "parents"]
