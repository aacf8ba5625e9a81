"""GENREG on the rendered alphabet: evolve a 10000-128-26 MLP until it reads every letter.

The seed GENREG's first visual task: the capital letters A-Z drawn at 100x100 with a TrueType
font (:func:`optuna_evo.genreg.render_alphabet`). The network evolves without gradients until
all 26 canonical letters are recognised (or ``--generations`` run out); with ``--augmented`` it
trains on several fonts, offsets and scales per letter and is tested on unseen renderings.
Prints the per-letter accuracy table, saves the best genome (tensors + JSON) and reloads it.

Usage::

    python examples/genreg_alphabet.py --quick          # 24x24 letters on the CPU, ~1 minute
    python examples/genreg_alphabet.py                  # 100x100, 10000-128-26 (GPU advised)
    python examples/genreg_alphabet.py --augmented --generations 20000 --checkpoint run.pt

``--checkpoint`` keeps the whole run in that file at every accuracy check (50 generations);
the same command run again goes on from there (``--generations`` counts from the start).
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

from optuna_evo.genreg import ALPHABET_OPTIONS  # noqa: E402
from optuna_evo.genreg import GenregTrainer  # noqa: E402
from optuna_evo.genreg import format_per_class_table  # noqa: E402
from optuna_evo.genreg import load_genome  # noqa: E402
from optuna_evo.genreg import load_task  # noqa: E402
from optuna_evo.genreg import load_trainer  # noqa: E402
from optuna_evo.genreg import save_genome  # noqa: E402


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description="GENREG on the rendered alphabet")
    p.add_argument("--size", type=int, default=100, help="letter image size in pixels")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--population", type=int, default=200)
    p.add_argument("--generations", type=int, default=10_000, help="upper limit")
    p.add_argument("--augmented", action="store_true", help="several fonts/offsets/scales")
    p.add_argument("--variations", type=int, default=8, help="renderings per letter (augmented)")
    p.add_argument("--seed-options", action="store_true", help="the seed's defaults instead")
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", type=Path, default=None, help="where to save the best genome")
    p.add_argument(
        "--checkpoint", type=Path, default=None, help="keep the run there; resume from it"
    )
    p.add_argument("--quick", action="store_true", help="24x24 letters, small net, for the CPU")
    return p.parse_args()


def main() -> None:
    """Evolve until every letter is read, report, save and reload."""
    args = parse_args()
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    if args.quick:
        args.size, args.hidden = 24, 32
        args.generations = min(args.generations, 1500)
    name = "alphabet-augmented" if args.augmented else "alphabet"
    task = load_task(name, size=args.size, variations=args.variations, device=args.device)
    layers = task.default_layers(args.hidden)
    options: dict[str, Any] = {} if args.seed_options else dict(ALPHABET_OPTIONS)
    # One view of every letter per generation for the plain task, as many as there are
    # renderings (drawn at random) for the augmented one.
    options.setdefault("samples_per_class", 1 if name == "alphabet" else args.variations)
    if args.checkpoint is not None and args.checkpoint.exists():
        asked = {"layers": layers, "population": args.population, "seed": args.seed, **options}
        trainer = load_trainer(args.checkpoint, device=args.device, expect=asked)
        print(f"resumed {args.checkpoint} at generation {trainer.generation}")
    else:
        trainer = GenregTrainer(
            layers=layers,
            population=args.population,
            seed=args.seed,
            device=args.device,
            **options,
        )
    print(f"{name}: {'-'.join(map(str, trainer.layers))}, {len(task.train_y)} training images")
    start = time.perf_counter()
    accuracy = trainer.evaluate(task.test_x, task.test_y) if trainer.generation else 0.0
    check_every = 50
    while trainer.generation < args.generations and not (accuracy == 1.0 and name == "alphabet"):
        trainer.fit(
            task.train_x,
            task.train_y,
            check_every,
            checkpoint=args.checkpoint,
            checkpoint_every=check_every,
        )
        accuracy = trainer.evaluate(task.test_x, task.test_y)
        if trainer.generation % 500 == 0 or accuracy == 1.0:
            print(
                f"generation {trainer.generation}: {100 * accuracy:.1f} % "
                f"({time.perf_counter() - start:.1f}s)",
                flush=True,
            )
    elapsed = time.perf_counter() - start
    print(
        f"{trainer.generation} generations in {elapsed:.1f}s on {trainer.device}: "
        f"test accuracy {100 * accuracy:.1f} %"
    )
    acc, count = trainer.per_class_accuracy(task.test_x, task.test_y)
    print(format_per_class_table(acc, task.class_names, count))

    path = args.save or Path(tempfile.gettempdir()) / f"genreg_{name}.safetensors"
    save_genome(path, trainer, {"task": name, "size": args.size, "test_accuracy": accuracy})
    genome = load_genome(path, device=trainer.device)
    reloaded = genome.accuracy(task.test_x, task.test_y)
    print(f"saved {path}; reloaded genome: test accuracy {100 * reloaded:.1f} %")
    assert reloaded == accuracy, (reloaded, accuracy)


if __name__ == "__main__":
    main()
