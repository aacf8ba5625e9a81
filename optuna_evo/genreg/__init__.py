"""GENREG: trust-based, gradient-free evolution of network weights, the population on the GPU.

- :class:`GenregTrainer`: the evolution (seed-exact defaults, batched on one device).
- :func:`load_task` / :class:`GenregTask`: MNIST, FashionMNIST and the rendered alphabet.
- :func:`render_alphabet`: A-Z drawn with Pillow fonts, canonical and augmented.
- :func:`save_genome` / :func:`load_genome`: checkpoints as tensors plus JSON, no pickle;
  :func:`save_trainer` / :func:`load_trainer`: a whole run, to continue it after a crash.
- :class:`GenregObjective`: an Optuna objective over GENREG's hyperparameters (each trial's
  best genome kept through :mod:`optuna.artifacts` with an ``artifact_store``).
- :func:`format_per_class_table`: the seed's per-class accuracy table.

The trust idea for Optuna's GA lives in
:class:`optuna_evo.operators.trust.TrustWeightedSelection`.
"""

from __future__ import annotations

from optuna_evo.genreg.alphabet import LETTERS
from optuna_evo.genreg.alphabet import find_fonts
from optuna_evo.genreg.alphabet import render_alphabet
from optuna_evo.genreg.checkpoint import load_genome
from optuna_evo.genreg.checkpoint import load_trainer
from optuna_evo.genreg.checkpoint import save_genome
from optuna_evo.genreg.checkpoint import save_trainer
from optuna_evo.genreg.objective import DEFAULT_SPACE
from optuna_evo.genreg.objective import GENOME_FILENAME
from optuna_evo.genreg.objective import GenregObjective
from optuna_evo.genreg.tasks import TASKS
from optuna_evo.genreg.tasks import GenregTask
from optuna_evo.genreg.tasks import load_task
from optuna_evo.genreg.trainer import ALPHABET_OPTIONS
from optuna_evo.genreg.trainer import LOGPROB_OPTIONS
from optuna_evo.genreg.trainer import Genome
from optuna_evo.genreg.trainer import GenregTrainer
from optuna_evo.genreg.trainer import evaluate_batched
from optuna_evo.genreg.trainer import evaluate_loop
from optuna_evo.genreg.trainer import format_per_class_table
from optuna_evo.genreg.trainer import per_class_accuracy

__all__ = [
    "ALPHABET_OPTIONS",
    "LOGPROB_OPTIONS",
    "DEFAULT_SPACE",
    "GENOME_FILENAME",
    "LETTERS",
    "TASKS",
    "Genome",
    "GenregObjective",
    "GenregTask",
    "GenregTrainer",
    "evaluate_batched",
    "evaluate_loop",
    "find_fonts",
    "format_per_class_table",
    "load_genome",
    "load_task",
    "load_trainer",
    "per_class_accuracy",
    "render_alphabet",
    "save_genome",
    "save_trainer",
]
