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

README = Path(__file__).resolve().parents[1] / "README.md"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

SUBSET = "max_train=1000, max_val=500, max_test=500"
SHRINK: dict[str, str] = {
    'load_image_dataset("fashion-mnist")': f'load_image_dataset("fashion-mnist", {SUBSET})',
    'load_task("fashion-mnist")': f'load_task("fashion-mnist", {SUBSET})',
    "study.optimize(objective, n_trials=64)": "study.optimize(objective, n_trials=4)",
    "study.optimize(objective, n_trials=100)": "study.optimize(objective, n_trials=4)",
    "generations=600": "generations=5",
    "FashionMNISTCNN(epochs=3), n_trials=50": (
        "FashionMNISTCNN(epochs=1, max_train=1000, max_val=500, device='cpu'), n_trials=2"
    ),
}
"""README text -> what runs instead: the same calls on smaller sizes."""


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_every_shrink_applies_to_the_readme() -> None:
    text = "".join(_blocks())
    stale = [old for old in SHRINK if old not in text]
    assert not stale, f"the README no longer says {stale}: update SHRINK"


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="FashionMNIST files not installed")
def test_readme_python_examples_run_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the examples write artifacts/ and evolution.csv
    namespace: dict[str, Any] = {"__name__": "readme"}
    blocks = _blocks()
    assert len(blocks) >= 5
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
    finally:
        optuna.logging.set_verbosity(verbosity)
    # What the examples say they produce is there.
    assert (tmp_path / "evolution.csv").is_file()
    study = namespace["study"]
    assert any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert "Lineage(" in repr(namespace["optuna_evo"].lineage(study.trials[0], study))
    assert capsys.readouterr().out  # the examples print their results
