"""Smoke tests of the MAGE and gender GPU benchmarks in ``--quick`` mode (on the CPU).

Each script runs once in a subprocess; the tests check that its markdown report has every
table row with finite numbers and a goal line, and that these checks reject broken reports.
"""

from __future__ import annotations

from dataclasses import replace
import math
from pathlib import Path
import re
import subprocess
import sys

from evo_testing import synthetic_text
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # ``benchmarks`` is not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import gender_gpu  # noqa: E402
from benchmarks import mage_gpu  # noqa: E402
from benchmarks._common import NOT_REACHED  # noqa: E402
from optuna_evo.objectives import SmallCharLM  # noqa: E402
from optuna_evo.objectives.data import DataNotFoundError  # noqa: E402
from optuna_evo.objectives.data import load_image_dataset  # noqa: E402

pytestmark = pytest.mark.slow

_NUMBER = re.compile(r"^-?\d[\d,]*(\.\d+)?(e[+-]\d+)?$")


def _skip_without_fashion_mnist() -> None:
    try:
        load_image_dataset("fashion-mnist", None, "cpu", max_train=8, max_val=8)
    except DataNotFoundError as exc:
        pytest.skip(f"FashionMNIST not installed: {exc}")


def _run_quick(script: str, out: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--quick", "--out", str(out), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out.read_text(encoding="utf-8")


def _table_rows(markdown: str, header_start: str) -> list[list[str]]:
    """Body rows of every markdown table whose header row starts with ``header_start``."""
    rows: list[list[str]] = []
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith(header_start):
            continue
        for body in lines[i + 2 :]:
            if not body.startswith("|"):
                break
            rows.append([c.strip() for c in body.strip().strip("|").split("|")])
    return rows


def _finite(cell: str) -> float:
    assert _NUMBER.match(cell), cell
    value = float(cell.replace(",", ""))
    assert math.isfinite(value), cell
    return value


def _time_or_not_reached(cell: str) -> float:
    """A time to target: a finite number >= 0, or the script's "not reached"."""
    if cell == NOT_REACHED:
        return math.inf
    value = _finite(cell)
    assert value >= 0.0, cell
    return value


def _accuracy(cell: str) -> float:
    value = _finite(cell)
    assert 0.0 < value <= 1.0, cell
    return value


def _check_header(markdown: str) -> None:
    for needle in ("- Device: **", "- Date: ", "- Command: `", "- Versions: ", "- Data: "):
        assert needle in markdown, needle
    assert "--quick" in markdown and "the figures mean nothing" in markdown


# -- MAGE ---------------------------------------------------------------------------------


def _check_mage_report(markdown: str) -> None:
    _check_header(markdown)
    args = mage_gpu.parse_args(["--quick"])
    assert "## (a)" in markdown and "## (b)" in markdown
    part_a, part_b = markdown.split("## (b)")
    for part, labels, n_cells in (
        (part_a, mage_gpu.SINGLE_ARMS, 8),
        (part_b, mage_gpu.MULTI_SAMPLERS, 9),
    ):
        runs = _table_rows(part, "| Run | Seed | Trials |")
        assert [(r[0], r[1]) for r in runs] == [
            (label, str(seed)) for seed in args.seeds for label in labels
        ]
        for row in runs:
            assert len(row) == n_cells, row
            assert _finite(row[2]) >= 1 and _finite(row[3]) >= 1  # trials, epochs
            _accuracy(row[4])
            _time_or_not_reached(row[5])
            assert _finite(row[6]) > 0.0 and _finite(row[7]) > 0.0  # GPU time, wall
        summary = _table_rows(part, "| Run | Median best val accuracy |")
        assert [r[0] for r in summary] == list(labels)
        for row in summary:
            _accuracy(row[1])
            _time_or_not_reached(row[2])
            reached, n = (int(x) for x in row[3].split("/"))
            assert 0 <= reached <= n == len(args.seeds)
            assert _finite(row[4]) > 0.0 and _finite(row[5]) >= 1
    assert re.search(r"^Result: median GPU time to .* Inherited weights faster", part_a, re.M)
    assert re.search(r"^Goal: MAGE reaches .*\*\*(met|not met)\*\*", part_b, re.M)


@pytest.fixture(scope="module")
def mage_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The report of one ``benchmarks/mage_gpu.py --quick`` run."""
    _skip_without_fashion_mnist()
    return _run_quick("mage_gpu.py", tmp_path_factory.mktemp("mage") / "mage.md")


def test_mage_quick_report_is_complete(mage_report: str) -> None:
    _check_mage_report(mage_report)


def test_mage_report_check_rejects_broken_reports(mage_report: str) -> None:
    lines = mage_report.splitlines()
    row = next(line for line in lines if line.startswith("| MAGE single, from scratch | 1 |"))
    with pytest.raises(AssertionError):
        _check_mage_report(mage_report.replace(row + "\n", "", 1))
    cells = row.split("|")
    cells[5] = " nan "  # best val accuracy
    with pytest.raises(AssertionError):
        _check_mage_report(mage_report.replace(row, "|".join(cells), 1))
    goal = next(line for line in lines if line.startswith("Goal: "))
    with pytest.raises(AssertionError):
        _check_mage_report(mage_report.replace(goal, "", 1))


# -- gender -------------------------------------------------------------------------------


def _states(cell: str) -> int:
    assert re.fullmatch(r"\d+/\d+/\d+", cell), cell
    return sum(int(x) for x in cell.split("/"))


def _check_gender_report(markdown: str) -> None:
    _check_header(markdown)
    args = gender_gpu.parse_args(["--quick"])
    lm = _table_rows(markdown, "| Run | Trials | Final train loss |")
    assert [r[0] for r in lm] == list(gender_gpu.LM_RUNS)
    for row in lm:
        assert len(row) == 8, row
        assert _states(row[1]) >= (1 if row[0] == "baseline" else 2)
        assert _finite(row[2]) > 0.0 and _finite(row[3]) > 0.0  # losses
        assert _finite(row[4]) > 0.0 and _finite(row[5]) > 0.0  # train time, tokens/s
        reached = _time_or_not_reached(row[6])
        assert _finite(row[7]) > 0.0
        if row[0] == "baseline":  # the baseline reaches its own best
            assert math.isfinite(reached)
    assert re.search(r"^Goal: the combined run .*\*\*(met|not met)\*\*", markdown, re.M)

    cnn = _table_rows(markdown, "| Pruner | Seed | Trials |")
    assert [(r[0], r[1]) for r in cnn] == [
        (arm, str(seed)) for seed in args.cnn_seeds for arm in gender_gpu.CNN_ARMS
    ]
    for row in cnn:
        assert len(row) == 8, row
        assert _states(row[2]) == args.cnn_trials
        assert _finite(row[3]) >= 1  # epochs trained over all trials
        _accuracy(row[4])
        _time_or_not_reached(row[5])
        assert _finite(row[6]) > 0.0 and _finite(row[7]) > 0.0
    summary = _table_rows(markdown, "| Pruner | Median GPU time")
    assert [r[0] for r in summary] == list(gender_gpu.CNN_ARMS)
    for row in summary:
        _time_or_not_reached(row[1])
        assert _finite(row[3]) > 0.0
        _accuracy(row[4])
    assert re.search(r"^Result \(medians\): the same trials took", markdown, re.M)


@pytest.fixture(scope="module")
def gender_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The report of one ``benchmarks/gender_gpu.py --quick`` run."""
    _skip_without_fashion_mnist()
    folder = tmp_path_factory.mktemp("gender")
    # Tiny shakespeare cannot be downloaded here and a fresh clone lacks it: a stand-in.
    text = synthetic_text(folder / "tinyshakespeare")
    report = _run_quick("gender_gpu.py", folder / "gender.md", "--text-path", str(text))
    assert f"tiny shakespeare from `{text.resolve()}`" in report
    return report


def test_gender_quick_report_is_complete(gender_report: str) -> None:
    _check_gender_report(gender_report)
    # Only nanoGPT's own model may be called its configuration without qualification.
    assert "- baseline: nanoGPT's shakespeare_char configuration, scaled down" in gender_report


def test_gender_report_check_rejects_broken_reports(gender_report: str) -> None:
    lines = gender_report.splitlines()
    row = next(line for line in lines if line.startswith("| female-only |"))
    with pytest.raises(AssertionError):
        _check_gender_report(gender_report.replace(row + "\n", "", 1))
    cells = row.split("|")
    cells[6] = " nan "  # tokens/s
    with pytest.raises(AssertionError):
        _check_gender_report(gender_report.replace(row, "|".join(cells), 1))
    cnn = next(line for line in lines if line.startswith("| LearningCurvePruner | 0 |"))
    with pytest.raises(AssertionError):
        _check_gender_report(gender_report.replace(cnn + "\n", "", 1))


def test_gender_cpu_preset_sits_between_quick_and_full(capsys: pytest.CaptureFixture) -> None:
    quick, cpu, full = (gender_gpu.parse_args(a) for a in (["--quick"], ["--cpu"], []))
    assert (cpu.quick, cpu.cpu) == (False, True)
    for name in ("budget_s", "trial_steps", "block_size", "max_train"):
        assert getattr(quick, name) < getattr(cpu, name), name
    assert cpu.block_size < full.block_size and full.max_train is None
    assert cpu.baseline_params == gender_gpu.CPU_BASELINE_PARAMS
    task = gender_gpu._lm_task(cpu, cpu.trial_steps, cpu.eval_interval)
    assert type(task) is SmallCharLM and task.block_size == 64
    # The baseline is a point of the search space the other runs search.
    for key, value in cpu.baseline_params.items():
        assert task.SEARCH_SPACE[key]._contains(task.SEARCH_SPACE[key].to_internal_repr(value))
    assert gender_gpu.parse_args(["--cpu", "--budget-s", "7"]).budget_s == 7.0
    with pytest.raises(SystemExit):
        gender_gpu.parse_args(["--cpu", "--quick"])
    assert "exclude each other" in capsys.readouterr().err


def test_char_lm_runs_eagerly_when_compile_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import objectives_gpu
    from optuna_evo.objectives.data import make_text_splits

    real_train = objectives_gpu.train
    compile_flags: list[object] = []

    def train(model, data, config, *args, **kwargs):  # type: ignore[no-untyped-def]
        compile_flags.append(config.compile)
        if config.compile:
            raise RuntimeError("inductor: no working C++ compiler")  # as on a broken image
        return real_train(model, data, replace(config, device="cpu"), *args, **kwargs)

    monkeypatch.setattr(objectives_gpu, "train", train)
    text = "".join(chr(97 + (i * i + 3 * i) % 26) for i in range(20000))
    args = objectives_gpu.parse_args(["--quick", "--lm-max-steps", "10"])
    # The section compiles on CUDA only; the stand-in train above runs it on the CPU.
    summary, history = objectives_gpu.run_char_lm(
        make_text_splits(text, "cpu"), args, torch.device("cuda")
    )
    assert compile_flags == [True, False]
    assert summary["compile"].startswith("no (compile mode 'default' failed: RuntimeError")
    assert summary["steps"] == 10 and history
