"""Every script in ``examples/`` runs end to end in its ``--quick`` mode."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

from evo_testing import synthetic_text
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_quick(script: Path, tmp_path: Path) -> None:
    argv = [sys.executable, str(script), "--quick"]
    if script.stem == "gender_char_lm":
        # Tiny shakespeare cannot be downloaded here and a fresh clone lacks it: a stand-in.
        argv += ["--data", str(synthetic_text(tmp_path / "tinyshakespeare"))]
    # Outputs (SQLite files, checkpoints, CSV) land in the temporary working directory.
    result = subprocess.run(
        argv,
        cwd=tmp_path,
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
