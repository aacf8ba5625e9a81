"""Predictor-assisted architecture search on FashionMNIST with MAGE in multi mode.

Agents evolve an MLP's depth, widths, activation, per-layer block type (plain or residual)
and skip edges k -> k + 2, together with lr / batch size / weight decay. Children come from
one-point crossover of two tournament winners' layer lists (or from one parent) plus
rank-scaled mutation, and before a child is trained:

* a surrogate (numpy ridge ensemble on random features) fitted on the finished trials scores
  ``--candidates`` proposed children and keeps the most promising one (mean - kappa * std);
* the duplicate cache re-mutates a child whose configuration some trial already has;
* the stability guard resamples a child predicted to be worse than its parent by more than
  ``--stability-threshold`` (validation loss units).

Every trial trains a fresh model for ``--epochs`` (no weight inheritance) from the same seed,
so equal configurations give the same result (on a CPU; a GPU's kernels may differ in the last
digits): the cache saves that training. Elites are the exception by design: they re-train
their parent's configuration.

    python examples/predictor_assisted_nas.py --quick            # a CPU-sized run, seconds
    python examples/predictor_assisted_nas.py --device cuda      # the full search on a GPU
    python examples/predictor_assisted_nas.py --no-assist        # the same MAGE, unassisted

Writes the study to ``--storage`` (SQLite by default; watch it with optuna-dashboard, where
each trial's ``optuna_evo:assist`` user attr shows its prediction) and the evolution log to
``--csv``.
"""

from __future__ import annotations

import argparse
import warnings

import optuna
import torch

import optuna_evo
from optuna_evo.objectives import MLP
from optuna_evo.objectives import TrainConfig
from optuna_evo.objectives import load_image_dataset
from optuna_evo.objectives import train
from optuna_evo.objectives.data import resolve_device
from optuna_evo.samplers import PredictorAssist
from optuna_evo.samplers import assist_summary

SPACE = {
    "layers": [[784, 128, 10], [784, 256, 10], [784, 256, 128, 10]],
    "activations": ["relu", "tanh", "gelu"],
    "blocks": ["linear", "residual"],
    "skips": True,
    "max_layers": 4,
}


def main(argv: list[str] | None = None) -> optuna.Study:
    """Run the example; return the study."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny CPU-sized run (overrides the size flags)"
    )
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--stability-threshold", type=float, default=0.1)
    parser.add_argument("--no-assist", action="store_true", help="plain MAGE, for comparison")
    parser.add_argument("--storage", default="sqlite:///predictor-assisted-nas.db")
    parser.add_argument("--csv", default="predictor-assisted-evolution.csv")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.quick:
        args.generations, args.population, args.epochs = 3, 4, 1

    device = resolve_device(args.device)
    cpu = device.type == "cpu"
    data = load_image_dataset(
        "fashion-mnist",
        args.data_dir,
        device,
        max_train=1000 if args.quick else (10000 if cpu else None),
        max_val=500 if args.quick else (2000 if cpu else None),
    )

    def objective(trial: optuna.Trial) -> float:
        arch = optuna_evo.suggest_architecture(trial, SPACE)
        lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        batch_size = trial.suggest_categorical("batch_size", [64, 128, 256])
        weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True)
        config = TrainConfig(
            optimizer="adamw",
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            epochs=args.epochs,
            device=device,
            seed=args.seed,
        )
        torch.manual_seed(args.seed)  # the initial weights too: equal configs, equal results
        return train(MLP(arch), data, config, trial).best_val_loss

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        assist = None
        if not args.no_assist:
            assist = PredictorAssist(
                n_candidates=args.candidates,
                min_trials=args.population,
                stability_threshold=args.stability_threshold,
            )
        sampler = optuna_evo.MAGESampler(
            "multi",
            SPACE,
            population_size=args.population,
            n_elites=1,
            mutation_prob=0.5,
            crossover_prob=0.5,
            assist=assist,
            seed=args.seed,
        )
    study = optuna.create_study(
        storage=args.storage,
        study_name="predictor-assisted-nas" + ("-plain" if args.no_assist else ""),
        sampler=sampler,
        # One or two reports per trial: Optuna's default MedianPruner would prune finished
        # agents at their last report.
        pruner=optuna.pruners.NopPruner(),
        load_if_exists=True,
    )
    study.optimize(objective, n_trials=args.generations * args.population)
    n = optuna_evo.export_csv(study, args.csv)
    best = study.best_trial
    arch = best.system_attrs.get("optuna_evo:architecture", {})
    print(
        f"best agent: trial {best.number}, val loss {best.value:.4f}, "
        f"val acc {best.user_attrs.get('val_accuracy', float('nan')):.4f}, "
        f"widths {arch.get('widths')}, blocks {arch.get('blocks')}, skips {arch.get('skips')}"
    )
    distinct = len({tuple(sorted(t.params.items())) for t in study.trials})
    elites = sum(
        info is not None and info.role == "elite"
        for info in (optuna_evo.lineage(t, study) for t in study.trials)
    )
    print(
        f"{len(study.trials)} trials ({elites} elites re-training their parent's "
        f"configuration), {distinct} distinct configurations"
    )
    if not args.no_assist:
        summary = assist_summary(study)
        print(
            f"surrogate: {summary['assisted_trials']} children chosen among "
            f"{args.candidates} candidates each; duplicates re-mutated: "
            f"{summary['duplicates_remutated']}; stability guard rejected "
            f"{summary['guard_rejections']} of {summary['guard_checks']} checked children "
            f"({100 * summary['guard_rejection_rate']:.1f}%)"
        )
    print(f"evolution log ({n} rows) in {args.csv}")
    return study


if __name__ == "__main__":
    main()
