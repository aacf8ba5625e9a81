"""Every script in ``examples/`` runs end to end in its ``--quick`` mode."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import pytest

from optuna_evo.objectives.data import text_search_paths

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))
SHARED_DATA = REPO.parent / "shared" / "data"
# Tiny shakespeare cannot be downloaded here; these examples need a local copy.
NEEDS_TEXT = {"gender_char_lm"}


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_quick(script: Path, tmp_path: Path) -> None:
    env = dict(os.environ)
    if SHARED_DATA.is_dir():  # tiny shakespeare lives beside the checkout
        env.setdefault("OPTUNA_EVO_DATA_DIR", str(SHARED_DATA))
    if script.stem in NEEDS_TEXT:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "environ", env)
            patch.chdir(tmp_path)  # where the example will look
            found = any(p.is_file() for p in text_search_paths())
        if not found:
            pytest.skip("tiny shakespeare is not available")
    # Outputs (SQLite files, checkpoints, CSV) land in the temporary working directory.
    result = subprocess.run(
        [sys.executable, str(script), "--quick"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip(), "an example should report what it found"


def test_genreg_example_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    script = str(REPO / "examples" / "genreg_mnist.py")

    def run(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, script, "--quick", "--device", "cpu", "--generations", "40", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        return result.stdout

    straight = run()
    run("--generations", "15", "--checkpoint", "run.pt", "--checkpoint-every", "10")
    resumed = run("--checkpoint", "run.pt")
    assert "resumed run.pt at generation 15" in resumed
    # The same test accuracy, to the digit, as the run that never stopped.
    final = [line for line in straight.splitlines() if "generations in" in line]
    assert final and final[0].split("on cpu")[1] in resumed
