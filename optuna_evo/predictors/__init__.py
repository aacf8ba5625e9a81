"""Learning-curve predictors: curve families, evolvable female genomes, their storage.

- :mod:`~optuna_evo.predictors.curves`: pow3, exponential, log-power and last value + slope
  fitted to a curve prefix (closed-form / grid fits, fast enough for a pruner).
- :mod:`~optuna_evo.predictors.female`: :class:`FemaleGenome` (a mixture of those families
  with an evolved window, horizon and bias), its fitness on finished trials.
- :mod:`~optuna_evo.predictors.population`: female populations in the study's storage
  (shared by every worker), early-speed score of a male.
"""

from __future__ import annotations

from optuna_evo.predictors.curves import FAMILIES
from optuna_evo.predictors.curves import CurveFit
from optuna_evo.predictors.curves import fit_curve
from optuna_evo.predictors.female import DEFAULT_FEMALE
from optuna_evo.predictors.female import GENE_SPACE
from optuna_evo.predictors.female import FemaleFitness
from optuna_evo.predictors.female import FemaleGenome
from optuna_evo.predictors.female import MaleCurve
from optuna_evo.predictors.female import evaluate_female
from optuna_evo.predictors.female import rank_correlation
from optuna_evo.predictors.population import FEMALE_KEY
from optuna_evo.predictors.population import FEMALE_PARENTS_KEY
from optuna_evo.predictors.population import FEMALES_KEY_PREFIX
from optuna_evo.predictors.population import FemalePopulation
from optuna_evo.predictors.population import RankedFemale
from optuna_evo.predictors.population import best_female
from optuna_evo.predictors.population import early_speed
from optuna_evo.predictors.population import final_step
from optuna_evo.predictors.population import load_females
from optuna_evo.predictors.population import male_curves
from optuna_evo.predictors.population import rank_females
from optuna_evo.predictors.population import stored_female_generations
from optuna_evo.predictors.population import trial_curve
from optuna_evo.predictors.population import trial_female

__all__ = [
    "DEFAULT_FEMALE",
    "FAMILIES",
    "FEMALES_KEY_PREFIX",
    "FEMALE_KEY",
    "FEMALE_PARENTS_KEY",
    "GENE_SPACE",
    "CurveFit",
    "FemaleFitness",
    "FemaleGenome",
    "FemalePopulation",
    "MaleCurve",
    "RankedFemale",
    "best_female",
    "early_speed",
    "evaluate_female",
    "final_step",
    "fit_curve",
    "load_females",
    "male_curves",
    "rank_correlation",
    "rank_females",
    "stored_female_generations",
    "trial_curve",
    "trial_female",
]
