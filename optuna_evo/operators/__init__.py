"""Small, pure evolutionary operators shared by every optuna-evo sampler."""

from optuna_evo.operators.crossover import BaseCrossover
from optuna_evo.operators.crossover import BlendCrossover
from optuna_evo.operators.crossover import UniformCrossover
from optuna_evo.operators.mutation import BaseMutation
from optuna_evo.operators.mutation import GaussianMutation
from optuna_evo.operators.mutation import ResetMutation
from optuna_evo.operators.selection import BaseSelection
from optuna_evo.operators.selection import TournamentSelection
from optuna_evo.operators.selection import TruncationSelection
from optuna_evo.operators.selection import constraint_violation
from optuna_evo.operators.selection import rank_trials
from optuna_evo.operators.selection import select_elites
from optuna_evo.operators.trust import TrustWeightedSelection

__all__ = [
    "BaseCrossover",
    "BaseMutation",
    "BaseSelection",
    "BlendCrossover",
    "GaussianMutation",
    "ResetMutation",
    "TournamentSelection",
    "TruncationSelection",
    "TrustWeightedSelection",
    "UniformCrossover",
    "constraint_violation",
    "rank_trials",
    "select_elites",
]
