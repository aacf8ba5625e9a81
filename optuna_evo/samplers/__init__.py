"""optuna-evo samplers."""

from optuna_evo.samplers._population import Lineage
from optuna_evo.samplers._population import PopulationSampler
from optuna_evo.samplers.genetic import GeneticSampler

__all__ = ["GeneticSampler", "Lineage", "PopulationSampler"]
