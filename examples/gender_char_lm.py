"""Male/female pairing on a character-level language model (tiny shakespeare).

Males are transformer configurations (depth, heads, width, learning rate, batch size,
dropout) scored by how fast their validation loss falls over the first ``--early-steps``
evaluations and by their final loss; females are learning-curve predictors that evolve to
forecast a configuration's final loss from its early curve. GenderSampler pairs the top males
with the top females every generation, and LearningCurvePruner stops runs that the best female
predicts cannot reach the top ``n_best``.

    python examples/gender_char_lm.py --quick     # CPU: tiny models, a few minutes at most
    python examples/gender_char_lm.py             # GPU: the paper's space, 2000 steps a run

Writes the study to ``--storage`` (SQLite by default; re-running resumes it) and the
predicted-vs-actual plot of the females to ``--plot`` (HTML).
"""

from __future__ import annotations

import argparse
import warnings

import optuna
from optuna.trial import TrialState
import torch

from optuna_evo.objectives import CharLM
from optuna_evo.objectives import SmallCharLM
from optuna_evo.predictors import load_females
from optuna_evo.pruners import LearningCurvePruner
from optuna_evo.samplers.gender import GenderSampler
from optuna_evo.visualization import plot_predictor_accuracy


def main(argv: list[str] | None = None) -> optuna.Study:
    """Run the example; return the study."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny CPU-sized run (overrides the size flags)"
    )
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--population", type=int, default=10)
    parser.add_argument("--early-steps", type=int, default=3, help="evaluations seen early")
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--eval-interval", type=int, default=100)
    parser.add_argument("--data", default=None, help="tiny shakespeare input.txt (or its dir)")
    parser.add_argument("--download", action="store_true", help="download it if not found")
    parser.add_argument("--storage", default="sqlite:///gender-example.db")
    parser.add_argument("--study-name", default=None)
    parser.add_argument("--plot", default="gender-predictor-accuracy.html")
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    if args.quick:
        args.generations, args.population = 3, 6
        args.max_steps, args.eval_interval = 40, 4
        torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared CPU
    task_class = SmallCharLM if args.quick else CharLM
    task = task_class(
        args.data,  # None: $OPTUNA_EVO_DATA_DIR and the usual folders are searched
        args.device,
        download=args.download,
        max_steps=args.max_steps,
        eval_interval=args.eval_interval,
        eval_iters=2 if args.quick else 20,
        block_size=32 if args.quick else 256,
        seed=args.seed,
    )
    sampler = GenderSampler(
        population_size=args.population,
        n_top_males=max(2, args.population // 3),
        n_top_females=max(2, args.population // 3),
        early_steps=args.early_steps,
        seed=args.seed,
    )
    study = optuna.create_study(
        storage=args.storage or None,
        study_name=args.study_name or ("gender-char-lm-quick" if args.quick else "gender-char-lm"),
        direction="minimize",  # the task returns its best validation loss
        sampler=sampler,
        pruner=LearningCurvePruner(),
        load_if_exists=True,
    )
    study.optimize(task, n_trials=args.generations * args.population, show_progress_bar=True)
    summarize(study, args.max_steps)
    figure = plot_predictor_accuracy(study)
    if args.plot and figure.data:
        figure.write_html(args.plot, include_plotlyjs="cdn")
        print(f"predicted vs actual final loss per generation: {args.plot}")
    return study


def summarize(study: optuna.Study, max_steps: int) -> None:
    """Print the best configuration, the steps the pruner saved and the best female."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    trained = sum(max(t.intermediate_values, default=0) for t in complete + pruned)
    budget = max_steps * len(complete + pruned)
    other = len(trials) - len(complete) - len(pruned)
    print(f"{len(complete)} complete, {len(pruned)} pruned, {other} other")
    if budget:
        saved = 100 * (1 - trained / budget)
        print(f"training steps run: {trained} of {budget} ({saved:.0f} % saved by pruning)")
    if complete:
        best = study.best_trial
        print(f"best: trial {best.number}, val loss {best.value:.4f}, params {best.params}")
    population = load_females(study)
    if population is not None and population.scored:
        top = population.members[0]
        print(
            f"best female (generation {population.generation}, scored on {population.n_males} "
            f"males): fitness {top.fitness}, rank correlation {top.rho}, genome {top.genome}"
        )
    for trace in plot_predictor_accuracy(study).data:
        if trace.mode == "markers":
            print(f"  out-of-sample accuracy, {trace.name}")


if __name__ == "__main__":
    main()
