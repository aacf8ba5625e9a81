"""The README's Python examples run, in order, in one namespace, as a reader would paste them.

Only their sizes shrink (:data:`SHRINK`: data subsets, fewer trials and generations), so a
renamed function, a changed argument or an example that no longer works fails here.
"""

from __future__ import annotations

from pathlib import Path
import re
from typing import Any
import warnings

import optuna
import pytest

from optuna_evo.objectives.data import DataNotFoundError
from optuna_evo.objectives.data import find_image_dir

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"```([\w+-]*)\n(.*?)```", re.S)
PYTHON_LABELS = {"python", "py"}

SUBSET = "max_train=1000, max_val=500, max_test=500"
SHRINK: dict[str, str] = {
    'load_image_dataset("fashion-mnist")': f'load_image_dataset("fashion-mnist", {SUBSET})',
    'load_task("fashion-mnist")': f'load_task("fashion-mnist", {SUBSET})',
    # Populations of 3 and 9 trials: three generations, so children are bred, inherit
    # weights and are assisted, not only drawn at random.
    'MAGESampler("multi", space, population_size=8, n_elites=2,': (
        'MAGESampler("multi", space, population_size=3, n_elites=1,'
    ),
    '"multi", space, population_size=8, crossover_prob=0.5,': (
        '"multi", space, population_size=3, crossover_prob=0.5,'
    ),
    "GenderSampler(population_size=10, n_top_males=4, n_top_females=4,": (
        "GenderSampler(population_size=3, n_top_males=2, n_top_females=2,"
    ),
    "study.optimize(objective, n_trials=64)": "study.optimize(objective, n_trials=9)",
    "study.optimize(objective, n_trials=100)": "study.optimize(objective, n_trials=9)",
    "generations=600": "generations=5",
    "FashionMNISTCNN(epochs=3), n_trials=50": (
        "FashionMNISTCNN(epochs=1, max_train=1000, max_val=500, device='cpu'), n_trials=2"
    ),
}
"""README text -> what runs instead: the same calls on smaller sizes."""


def _fences() -> list[tuple[str, str]]:
    return FENCE.findall(README.read_text(encoding="utf-8"))


def _blocks() -> list[str]:
    return [code for label, code in _fences() if label in PYTHON_LABELS]


def test_every_code_block_is_python_or_shell_and_every_shrink_applies() -> None:
    # A block labelled otherwise (e.g. "python3") would be skipped by the run below unseen.
    labels = {label for label, _ in _fences()}
    assert labels <= PYTHON_LABELS | {"bash", ""}, labels
    text = "".join(_blocks())
    stale = [old for old in SHRINK if old not in text]
    assert not stale, f"the README no longer says {stale}: update SHRINK"


def _has_fashion_mnist() -> bool:
    try:
        find_image_dir("fashion-mnist")
    except DataNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _has_fashion_mnist(), reason="FashionMNIST files not found")
def test_readme_python_examples_run_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import optuna_evo

    monkeypatch.chdir(tmp_path)  # the examples write artifacts/ and evolution.csv
    namespace: dict[str, Any] = {"__name__": "readme"}
    blocks = _blocks()
    assert len(blocks) >= 5
    studies: list[optuna.Study] = []
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            for i, block in enumerate(blocks):
                for old, new in SHRINK.items():
                    block = block.replace(old, new)
                try:
                    exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
                except Exception as e:
                    raise AssertionError(f"README python block {i + 1} fails:\n{block}") from e
                study = namespace.get("study")
                if isinstance(study, optuna.Study) and all(s is not study for s in studies):
                    studies.append(study)
    finally:
        optuna.logging.set_verbosity(verbosity)
    # What the examples say they produce is there.
    assert (tmp_path / "evolution.csv").is_file()
    assert capsys.readouterr().out  # the examples print their results
    samplers = [type(s.sampler).__name__ for s in studies]
    assert samplers == ["GeneticSampler", "MAGESampler", "GenderSampler", "MAGESampler"]
    for study in studies:
        states = {t.state for t in study.trials}
        assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
        roles = {optuna_evo.lineage(t, study).role for t in study.trials}
        assert roles & {"child", "mutant"}, (type(study.sampler).__name__, roles)
