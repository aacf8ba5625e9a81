"""optuna-evo samplers."""

from optuna_evo.samplers._population import Lineage
from optuna_evo.samplers._population import PopulationSampler
from optuna_evo.samplers.gender import GenderSampler
from optuna_evo.samplers.genetic import GeneticSampler
from optuna_evo.samplers.mage import MAGESampler

__all__ = ["GenderSampler", "GeneticSampler", "Lineage", "MAGESampler", "PopulationSampler"]
