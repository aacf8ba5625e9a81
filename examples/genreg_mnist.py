"""GENREG on MNIST / FashionMNIST: gradient-free evolution of a 784-64-10 MLP.

Evolves a population of networks by trust (no gradients anywhere), prints the per-class
accuracy table of the best genome, saves it as a checkpoint (tensors + JSON, no pickle) and
reloads it to check the test accuracy. ``--tune N`` instead runs an Optuna study of N trials
over GENREG's hyperparameters with :class:`~optuna_evo.GeneticSampler`.

Usage::

    python examples/genreg_mnist.py --quick                      # CPU, under a minute
    python examples/genreg_mnist.py --dataset fashion-mnist      # seed configuration, 600 gens
    python examples/genreg_mnist.py --dataset fashion-mnist --best --generations 5000
    python examples/genreg_mnist.py --dataset mnist --download   # MNIST via torchvision
    python examples/genreg_mnist.py --quick --tune 8             # tune with GeneticSampler
    python examples/genreg_mnist.py --best --generations 5000 --checkpoint run.safetensors

``--checkpoint`` keeps the whole run in that file every ``--checkpoint-every`` generations; run
the same command again after a crash (or Ctrl-C) and it goes on from there, exactly as the
uninterrupted run would have (``--generations`` is the total).

MNIST is not shipped with the system packages: put its idx files in ``./.data/mnist`` (or pass
``--data-dir``), or use ``--download`` where the internet is reachable.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import tempfile
import time
from typing import Any
import warnings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Run from a plain checkout.

import optuna  # noqa: E402

from optuna_evo import GeneticSampler  # noqa: E402
from optuna_evo.genreg import LOGPROB_OPTIONS  # noqa: E402
from optuna_evo.genreg import GenregObjective  # noqa: E402
from optuna_evo.genreg import GenregTrainer  # noqa: E402
from optuna_evo.genreg import format_per_class_table  # noqa: E402
from optuna_evo.genreg import load_genome  # noqa: E402
from optuna_evo.genreg import load_task  # noqa: E402
from optuna_evo.genreg import load_trainer  # noqa: E402
from optuna_evo.genreg import save_genome  # noqa: E402


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description="GENREG on MNIST / FashionMNIST")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="fashion-mnist")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--download", action="store_true", help="download with torchvision")
    p.add_argument("--device", default=None)
    p.add_argument("--generations", type=int, default=600)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--best", action="store_true", help="use the tuned options, not the seed's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", type=Path, default=None, help="where to save the best genome")
    p.add_argument(
        "--checkpoint", type=Path, default=None, help="keep the run there; resume from it"
    )
    p.add_argument("--checkpoint-every", type=int, default=100, help="generations")
    p.add_argument("--tune", type=int, default=0, help="run an Optuna study of N trials")
    p.add_argument("--quick", action="store_true", help="small subset and run, for the CPU")
    return p.parse_args()


def main() -> None:
    """Train (or tune), report, save and reload."""
    args = parse_args()
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.INFO)
    limits = {"max_train": 10_000, "max_val": 2_000, "max_test": 2_000} if args.quick else {}
    task = load_task(
        args.dataset,
        data_dir=args.data_dir,
        device=args.device,
        download=args.download,
        **limits,
    )
    layers = task.default_layers(args.hidden)
    generations = min(args.generations, 150) if args.quick else args.generations
    options: dict[str, Any] = dict(LOGPROB_OPTIONS) if args.best else {}
    if args.quick:
        options.update(population=50, samples_per_class=10)

    if args.tune:
        quick_kwargs: dict[str, Any] = {"samples_per_class": 10} if args.quick else {}
        objective = GenregObjective(
            task=task,
            generations=generations,
            report_every=max(generations // 5, 1),
            device=args.device,
            layers=layers,
            seed=args.seed,
            **quick_kwargs,
        )
        study = optuna.create_study(
            direction="maximize",  # objective.direction
            sampler=GeneticSampler(population_size=4, seed=args.seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=4),
        )
        study.optimize(objective, n_trials=args.tune)
        print(f"best validation accuracy {study.best_value:.4f} with {study.best_params}")
        return

    if args.checkpoint is not None and args.checkpoint.exists():
        asked = {"layers": layers, "seed": args.seed, **options}
        trainer = load_trainer(args.checkpoint, device=args.device, expect=asked)
        print(f"resumed {args.checkpoint} at generation {trainer.generation}")
    else:
        trainer = GenregTrainer(layers=layers, seed=args.seed, device=args.device, **options)
    print(f"{args.dataset}: {'-'.join(map(str, trainer.layers))}, {trainer.config()}")
    todo = max(generations - trainer.generation, 0)
    start = time.perf_counter()
    trainer.fit(
        task.train_x,
        task.train_y,
        todo,
        progress=True,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
    )
    elapsed = time.perf_counter() - start
    accuracy = trainer.evaluate(task.test_x, task.test_y)
    print(
        f"{todo} generations in {elapsed:.1f}s ({todo / max(elapsed, 1e-9):.1f}/s) on "
        f"{trainer.device}, {trainer.generation} in all: test accuracy {100 * accuracy:.2f} %"
    )
    acc, count = trainer.per_class_accuracy(task.test_x, task.test_y)
    print(format_per_class_table(acc, task.class_names, count))

    path = args.save or Path(tempfile.gettempdir()) / f"genreg_{args.dataset}.safetensors"
    save_genome(path, trainer, {"task": args.dataset, "test_accuracy": accuracy})
    genome = load_genome(path, device=trainer.device)
    reloaded = genome.accuracy(task.test_x, task.test_y)
    print(f"saved {path}; reloaded genome: test accuracy {100 * reloaded:.2f} %")
    assert reloaded == accuracy, (reloaded, accuracy)


if __name__ == "__main__":
    main()
