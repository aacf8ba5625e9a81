"""Every script in ``examples/`` runs end to end in its ``--quick`` mode."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_quick(script: Path, tmp_path: Path) -> None:
    env = dict(os.environ)
    if SHARED_DATA.is_dir():  # tiny shakespeare lives beside the checkout
        env.setdefault("OPTUNA_EVO_DATA_DIR", str(SHARED_DATA))
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
