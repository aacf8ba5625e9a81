"""An Optuna objective that tunes GENREG's evolution hyperparameters.

Example:
    .. code-block:: python

        import optuna
        from optuna_evo import GeneticSampler
        from optuna_evo.genreg import GenregObjective

        objective = GenregObjective("fashion-mnist", generations=600, report_every=50)
        study = optuna.create_study(
            direction=objective.direction,
            sampler=GeneticSampler(population_size=8, seed=0),
            pruner=optuna.pruners.MedianPruner(n_warmup_steps=100),
        )
        study.optimize(objective, n_trials=40)
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import math
import os
from pathlib import Path
import tempfile
import time
from typing import TYPE_CHECKING
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import torch

from optuna_evo._experimental import experimental_class
from optuna_evo._validation import check_choice
from optuna_evo._validation import check_int
from optuna_evo.checkpoint import check_artifact_store
from optuna_evo.genreg.checkpoint import save_genome
from optuna_evo.genreg.tasks import TASKS
from optuna_evo.genreg.tasks import GenregTask
from optuna_evo.genreg.tasks import load_task
from optuna_evo.genreg.trainer import GenregTrainer
from optuna_evo.objectives.data import resolve_device
from optuna_evo.objectives.tasks import suggest

if TYPE_CHECKING:
    from optuna.artifacts._protocol import ArtifactStore

DEFAULT_SPACE: dict[str, BaseDistribution] = {
    "mutation_rate": FloatDistribution(1e-3, 0.3, log=True),
    "child_mutation_rate": FloatDistribution(1e-3, 0.3, log=True),
    "mutation_scale": FloatDistribution(1e-3, 0.5, log=True),
    "trust_decay": FloatDistribution(0.0, 1.0),
    "trust_inheritance": FloatDistribution(0.0, 1.0),
    "population": IntDistribution(50, 400, step=50),
    "survival_cutoff": FloatDistribution(0.05, 0.5),
}
"""Default search space of :class:`GenregObjective` (names are GenregTrainer arguments)."""

GENOME_FILENAME = "genome.safetensors"
"""File name a trial's best genome is uploaded under; read it back with
``optuna.artifacts.download_artifact(artifact_store=store, file_path="best.safetensors",
artifact_id=study.best_trial.user_attrs["genome_artifact_id"])`` and
:func:`~optuna_evo.genreg.load_genome` (its format follows the content, whatever the name)."""


@experimental_class("0.1.0")
class GenregObjective:
    """Evolve a GENREG population per trial and return its validation accuracy.

    Each trial builds a :class:`~optuna_evo.genreg.GenregTrainer` from the suggested
    hyperparameters (the parameters of ``space`` that are not fixed in ``trainer_kwargs``),
    evolves it for ``generations`` generations on the training split, reports the best genome's
    validation accuracy every ``report_every`` generations (step = generation) and stops early
    when ``trial.should_prune()`` says so. Trial ``n`` uses seed ``seed + n``. The user attrs
    ``generations_per_second`` and ``generations`` are set on every trial.

    Args:
        dataset: One of :data:`~optuna_evo.genreg.tasks.TASKS`.
        generations: Generations per trial, >= 1.
        report_every: Report (and check pruning) every this many generations, >= 1.
        device: Device; ``None`` = CUDA when available, else CPU.
        data_dir: Directory of the image dataset's idx files.
        max_train: Use only this many training images.
        max_val: Validate on only this many validation images.
        layers: Layer widths; defaults to ``[features, 64, classes]``.
        seed: Base seed.
        space: Search space, parameter name to distribution; defaults to
            :data:`DEFAULT_SPACE`.
        task: An already loaded task (then ``dataset`` and the data arguments are ignored).
        artifact_store: Keep every trial's best genome (:func:`~optuna_evo.genreg.save_genome`,
            tensors + JSON) in this :mod:`optuna.artifacts` store when the trial ends, also
            when it is pruned; the user attr ``genome_artifact_id`` names it, so the winner
            of a study is one download away (see :data:`GENOME_FILENAME`). ``None`` (default)
            keeps nothing.
        **trainer_kwargs: Fixed :class:`~optuna_evo.genreg.GenregTrainer` arguments (they are
            not suggested even when in ``space``).
    """

    direction: str = "maximize"
    """Optimisation direction of the returned value (validation accuracy)."""

    def __init__(
        self,
        dataset: str = "fashion-mnist",
        generations: int = 300,
        report_every: int = 25,
        device: str | torch.device | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        max_train: int | None = None,
        max_val: int | None = None,
        layers: Sequence[int] | None = None,
        seed: int = 0,
        space: Mapping[str, BaseDistribution] | None = None,
        task: GenregTask | None = None,
        artifact_store: ArtifactStore | None = None,
        **trainer_kwargs: Any,
    ) -> None:
        if task is None:
            check_choice("dataset", dataset, TASKS)
        if artifact_store is not None:
            check_artifact_store(artifact_store)
        generations = check_int("generations", generations, 1)
        report_every = check_int("report_every", report_every, 1)
        seed = check_int("seed", seed, 0)
        for reserved in ("seed", "device", "layers"):
            if reserved in trainer_kwargs:
                raise ValueError(f"pass {reserved!r} as GenregObjective's own argument.")
        self.dataset = task.name if task is not None else dataset
        self.generations = generations
        self.report_every = report_every
        self.device = resolve_device(device)
        self.data_dir = data_dir
        self.max_train = max_train
        self.max_val = max_val
        self.layers = None if layers is None else [int(n) for n in layers]
        self.seed = seed
        self.space = dict(DEFAULT_SPACE if space is None else space)
        self.trainer_kwargs = dict(trainer_kwargs)
        self.artifact_store = artifact_store
        self._task = task

    @property
    def search_space(self) -> dict[str, BaseDistribution]:
        """The parameters a trial suggests (``space`` minus the fixed ones)."""
        return {k: v for k, v in self.space.items() if k not in self.trainer_kwargs}

    def load_task(self) -> GenregTask:
        """Load (once) and return the task."""
        if self._task is None:
            self._task = load_task(
                self.dataset,
                data_dir=self.data_dir,
                device=self.device,
                max_train=self.max_train,
                max_val=self.max_val,
                max_test=1,  # the objective never looks at the test split
            )
        return self._task

    def __call__(self, trial: optuna.trial.BaseTrial) -> float:
        """Evolve one configuration; return the best genome's final validation accuracy."""
        task = self.load_task()
        params = {name: suggest(trial, name, d) for name, d in self.search_space.items()}
        trainer = GenregTrainer(
            layers=self.layers or task.default_layers(),
            seed=self.seed + trial.number,
            device=self.device,
            **self.trainer_kwargs,
            **params,
        )
        val_x, val_y = task.val_x[: self.max_val], task.val_y[: self.max_val]
        accuracy = math.nan
        elapsed = 0.0
        while trainer.generation < self.generations:
            chunk = min(self.report_every, self.generations - trainer.generation)
            start = time.perf_counter()
            trainer.fit(task.train_x, task.train_y, chunk)
            elapsed += time.perf_counter() - start
            accuracy = trainer.evaluate(val_x, val_y)
            trial.report(accuracy, trainer.generation)
            trial.set_user_attr("generations", trainer.generation)
            trial.set_user_attr("generations_per_second", trainer.generation / max(elapsed, 1e-9))
            if trial.should_prune():
                self._save(trial, trainer, accuracy)
                raise optuna.TrialPruned(
                    f"pruned at generation {trainer.generation} (accuracy {accuracy:.4f})"
                )
        self._save(trial, trainer, accuracy)
        return accuracy

    def _save(
        self, trial: optuna.trial.BaseTrial, trainer: GenregTrainer, accuracy: float
    ) -> None:
        # Artifacts need a live trial (a FrozenTrial or FixedTrial has no storage to write to).
        if self.artifact_store is None or not isinstance(trial, optuna.Trial):
            return
        with tempfile.TemporaryDirectory() as folder:
            path = save_genome(
                Path(folder) / GENOME_FILENAME,
                trainer,
                {"dataset": self.dataset, "trial": trial.number, "val_accuracy": accuracy},
            )
            artifact_id = optuna.artifacts.upload_artifact(
                artifact_store=self.artifact_store, file_path=str(path), study_or_trial=trial
            )
        trial.set_user_attr("genome_artifact_id", artifact_id)
