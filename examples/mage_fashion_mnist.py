"""MAGE on FashionMNIST: agents evolve architecture, hyperparameters and weights together.

Each generation ("master epoch") every agent trains for ``--local-epochs`` starting from its
parent's weights (loaded through optuna.artifacts), so training continues across generations
like Population Based Training, while MAGESampler mutates hyperparameters (rank-scaled) and, in
multi mode, the architecture.

    python examples/mage_fashion_mnist.py --mode single            # fixed 784-128-10 MLP
    python examples/mage_fashion_mnist.py --mode multi --quick     # a CPU-sized run

Writes the study to ``--storage`` (SQLite by default; watch it with optuna-dashboard), the
checkpoints to ``--artifacts`` and the evolution log to ``--csv``.
"""

from __future__ import annotations

import argparse
import os
import warnings

import optuna
from optuna.artifacts import FileSystemArtifactStore

import optuna_evo
from optuna_evo import checkpoint
from optuna_evo.objectives import MLP
from optuna_evo.objectives import TrainConfig
from optuna_evo.objectives import load_image_dataset
from optuna_evo.objectives import train
from optuna_evo.objectives.data import resolve_device

SPACE = {
    "layers": [[784, 128, 10], [784, 256, 10], [784, 256, 128, 10]],
    "activations": ["relu", "tanh", "gelu"],
}


def main(argv: list[str] | None = None) -> optuna.Study:
    """Run the example; return the study."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["single", "multi"], default="multi")
    parser.add_argument(
        "--quick", action="store_true", help="tiny CPU-sized run (overrides the size flags)"
    )
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--local-epochs", type=int, default=1)
    parser.add_argument("--storage", default="sqlite:///mage-example.db")
    parser.add_argument("--artifacts", default="mage-artifacts")
    parser.add_argument("--csv", default="mage-evolution.csv")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.quick:
        args.generations, args.population = 3, 4

    device = resolve_device(args.device)
    cpu = device.type == "cpu"
    data = load_image_dataset(
        "fashion-mnist",
        args.data_dir,
        device,
        max_train=2000 if args.quick else (10000 if cpu else None),
        max_val=1000 if args.quick else (2000 if cpu else None),
    )
    os.makedirs(args.artifacts, exist_ok=True)
    store = FileSystemArtifactStore(args.artifacts)

    def objective(trial: optuna.Trial) -> float:
        arch = optuna_evo.suggest_architecture(trial, SPACE)
        lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        batch_size = trial.suggest_categorical("batch_size", [64, 128, 256])
        weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True)
        model = MLP(arch)
        checkpoint.load_parent(trial, model, store)  # noise as planned by the sampler
        config = TrainConfig(
            optimizer="adamw",
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            epochs=args.local_epochs,
            device=device,
            seed=args.seed + trial.number,
        )
        result = train(model, data, config, trial)
        checkpoint.save(trial, model, store)
        return result.best_val_loss

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna_evo.MAGESampler(
            args.mode,
            SPACE,
            population_size=args.population,
            n_elites=max(1, args.population // 4),
            mutation_prob=0.5,
            complexity_weight=0.01,
            weight_noise=1e-3,
            seed=args.seed,
        )
    study = optuna.create_study(
        storage=args.storage,
        study_name=f"mage-{args.mode}",
        sampler=sampler,
        pruner=optuna.pruners.NopPruner(),  # every agent trains its local epochs
        load_if_exists=True,
    )
    study.optimize(objective, n_trials=args.generations * args.population, show_progress_bar=True)
    n = optuna_evo.export_csv(study, args.csv)
    best = study.best_trial
    print(
        f"best agent: trial {best.number}, val loss {best.value:.4f}, "
        f"val acc {best.user_attrs.get('val_accuracy', float('nan')):.4f}, "
        f"architecture {best.system_attrs.get('optuna_evo:architecture', {}).get('widths')}"
    )
    print(f"evolution log ({n} rows) in {args.csv}")
    return study


if __name__ == "__main__":
    main()
