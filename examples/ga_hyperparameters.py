"""The seed GA paper's run: GeneticSampler tunes SGD for the FashionMNIST CNN.

The GA evolves learning rate (1e-4..1, log), momentum (0..0.9) and weight decay (0..0.1) for
the two-conv CNN trained with SGD, batch 64 and StepLR(γ=0.7), on the 50k / 10k split (on a
CPU on 5000 / 2000 images of it, so that a run takes minutes, not hours).

    python examples/ga_hyperparameters.py                   # population 10, 3 generations
    python examples/ga_hyperparameters.py --quick           # population 4, 2 generations,
                                                            # 1 epoch on 1000 / 500 images

Prints each generation's best and the lineage of the best trial.
"""

from __future__ import annotations

import argparse
import warnings

import optuna

import optuna_evo
from optuna_evo.objectives import FashionMNISTCNN
from optuna_evo.objectives.data import resolve_device


def main(argv: list[str] | None = None) -> optuna.Study:
    """Run the example; return the study."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny CPU-sized run (overrides the size flags)"
    )
    parser.add_argument("--population", type=int, default=10)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--storage", default=None, help="e.g. sqlite:///ga.db (default: memory)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    device = resolve_device(args.device)
    small = args.quick or device.type == "cpu"
    if args.quick:
        args.population, args.generations, args.epochs = 4, 2, 1
    task = FashionMNISTCNN(
        args.data_dir,
        device,
        epochs=args.epochs,
        max_train=1000 if args.quick else (5000 if small else None),
        max_val=500 if args.quick else (2000 if small else None),
        seed=args.seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna_evo.GeneticSampler(population_size=args.population, seed=args.seed)
    # The paper's GA keeps every trial to the end: Optuna's default MedianPruner would prune
    # finished trials at their last (with --quick: only) report.
    study = optuna.create_study(
        storage=args.storage, sampler=sampler, pruner=optuna.pruners.NopPruner()
    )
    study.optimize(
        task, n_trials=args.population * args.generations, show_progress_bar=not args.quick
    )
    # Every trial here was sampled by the GA, so each has a lineage.
    lineages = {t.number: optuna_evo.lineage(t, study) for t in study.trials}
    generations = {t.number: info.generation for t in study.trials if (info := lineages[t.number])}
    for g in sorted(set(generations.values())):
        value, number = min(
            (t.value, t.number)
            for t in study.trials
            if generations.get(t.number) == g and t.value is not None
        )
        print(f"generation {g}: best val loss {value:.4f} (trial {number})")
    best = study.best_trial
    print(f"best: trial {best.number} {best.params}")
    trial: optuna.trial.FrozenTrial | None = best
    while trial is not None and (info := lineages[trial.number]) is not None:
        print(f"  trial {trial.number}: generation {info.generation}, {info.role}")
        found = optuna_evo.parents(trial, study)
        trial = found[0] if found else None
    return study


if __name__ == "__main__":
    main()
