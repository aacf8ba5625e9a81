"""Objectives: datasets, models and a GPU-fast training loop that reports to Optuna.

- :mod:`~optuna_evo.objectives.data`: FashionMNIST / MNIST / tiny shakespeare / synthetic data
  as device-resident tensors.
- :mod:`~optuna_evo.objectives.models`: :class:`MLP` (from an
  :class:`~optuna_evo.architecture.Architecture`), :class:`SeedCNN`, :class:`CharTransformer`.
- :mod:`~optuna_evo.objectives.train`: :func:`train` with :class:`TrainConfig`.
- :mod:`~optuna_evo.objectives.tasks`: ready objectives :class:`FashionMNISTCNN`,
  :class:`MLPTask`, :class:`CharLM`.
"""

from __future__ import annotations

from optuna_evo.objectives.data import ClassificationSplits
from optuna_evo.objectives.data import DataNotFoundError
from optuna_evo.objectives.data import TextSplits
from optuna_evo.objectives.data import clear_cache
from optuna_evo.objectives.data import load_fashion_mnist
from optuna_evo.objectives.data import load_image_dataset
from optuna_evo.objectives.data import load_mnist
from optuna_evo.objectives.data import load_tiny_shakespeare
from optuna_evo.objectives.data import make_synthetic
from optuna_evo.objectives.data import make_text_splits
from optuna_evo.objectives.data import read_idx
from optuna_evo.objectives.models import MLP
from optuna_evo.objectives.models import CharTransformer
from optuna_evo.objectives.models import CharTransformerConfig
from optuna_evo.objectives.models import SeedCNN
from optuna_evo.objectives.models import count_parameters
from optuna_evo.objectives.tasks import CharLM
from optuna_evo.objectives.tasks import FashionMNISTCNN
from optuna_evo.objectives.tasks import MLPTask
from optuna_evo.objectives.tasks import SmallCharLM
from optuna_evo.objectives.tasks import default_mlp_architecture
from optuna_evo.objectives.train import EvalRecord
from optuna_evo.objectives.train import TrainConfig
from optuna_evo.objectives.train import TrainingDiverged
from optuna_evo.objectives.train import TrainingFailed
from optuna_evo.objectives.train import TrainResult
from optuna_evo.objectives.train import TrialOutOfMemory
from optuna_evo.objectives.train import train

__all__ = [
    "CharLM",
    "SmallCharLM",
    "CharTransformer",
    "CharTransformerConfig",
    "ClassificationSplits",
    "DataNotFoundError",
    "EvalRecord",
    "FashionMNISTCNN",
    "MLP",
    "MLPTask",
    "SeedCNN",
    "TextSplits",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "TrainingFailed",
    "TrialOutOfMemory",
    "clear_cache",
    "count_parameters",
    "default_mlp_architecture",
    "load_fashion_mnist",
    "load_image_dataset",
    "load_mnist",
    "load_tiny_shakespeare",
    "make_synthetic",
    "make_text_splits",
    "read_idx",
    "train",
]
