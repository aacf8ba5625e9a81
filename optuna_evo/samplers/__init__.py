"""optuna-evo samplers."""

from optuna_evo.samplers._assist import PredictorAssist
from optuna_evo.samplers._assist import assist_summary
from optuna_evo.samplers._population import Lineage
from optuna_evo.samplers._population import PopulationSampler
from optuna_evo.samplers.gender import GenderSampler
from optuna_evo.samplers.genetic import GeneticSampler
from optuna_evo.samplers.mage import MAGESampler

__all__ = [
    "GenderSampler",
    "GeneticSampler",
    "Lineage",
    "MAGESampler",
    "PopulationSampler",
    "PredictorAssist",
    "assist_summary",
]
