"""Smoke test of the CPU benchmark suite (``python -m benchmarks.cpu_suite --quick``)."""

from __future__ import annotations

import math
import os
from pathlib import Path
import random
import re
import subprocess
import sys

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # ``benchmarks`` is not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import cpu_suite  # noqa: E402
from benchmarks.problems import PROBLEMS  # noqa: E402
from benchmarks.problems import STYBLINSKI_TANG_MIN_PER_DIM  # noqa: E402
from benchmarks.problems import MixedProblem  # noqa: E402

_NUMBER = re.compile(r"^-?\d[\d,]*(\.\d+)?(e[+-]\d+)?$")


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p.name)
def test_problem_optimum_is_attained_and_is_a_lower_bound(problem: object) -> None:
    assert math.isclose(
        problem.evaluate(problem.optimum_params),  # type: ignore[attr-defined]
        problem.optimum,  # type: ignore[attr-defined]
        abs_tol=1e-9,
    )
    rng = random.Random(0)
    for _ in range(200):
        params = _random_params(problem, rng)
        assert problem.evaluate(params) >= problem.optimum - 1e-9  # type: ignore[attr-defined]


def _random_params(problem: object, rng: random.Random) -> dict[str, object]:
    if isinstance(problem, MixedProblem):
        return {
            **{f"k{i}": rng.randint(-10, 10) for i in range(4)},
            "batch_size": rng.randint(16, 1024),
            "lr": 10 ** rng.uniform(-5, -1),
            "optimizer": rng.choice(["sgd", "momentum", "adam", "rmsprop"]),
            "activation": rng.choice(["relu", "tanh", "sigmoid", "gelu"]),
        }
    low, high, dim = problem.low, problem.high, problem.dim  # type: ignore[attr-defined]
    return {f"x{i}": rng.uniform(low, high) for i in range(dim)}


def test_styblinski_tang_constant() -> None:
    assert STYBLINSKI_TANG_MIN_PER_DIM == pytest.approx(-39.16616570377, abs=1e-9)


def test_mixed_problem_categorical_choice_matters() -> None:
    problem = MixedProblem()
    best = dict(problem.optimum_params)
    for name, other in (("optimizer", "sgd"), ("activation", "sigmoid")):
        assert problem.evaluate({**best, name: other}) > problem.optimum + 0.5


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
    value = float(cell.strip("*").replace(",", ""))
    assert _NUMBER.match(cell.strip("*")), cell
    assert math.isfinite(value), cell
    return value


def _check_report(markdown: str) -> None:
    problems = [p.name for p in PROBLEMS]
    samplers = list(cpu_suite.SAMPLERS)
    assert samplers[:2] == [cpu_suite.GA_DEFAULT, cpu_suite.GA_VARIANT]
    assert {"NSGAIISampler", "TPESampler", "CmaEsSampler", "RandomSampler"} <= set(samplers)

    # Median tables: one per checkpoint, every sampler x problem cell a finite number >= 0.
    header = "| Sampler | " + " | ".join(problems) + " |"
    assert markdown.count(header) == 2
    rows = _table_rows(markdown, header)
    assert [r[0] for r in rows] == samplers * 2
    for row in rows:
        assert len(row) == 1 + len(problems)
        assert all(_finite(c) >= 0.0 for c in row[1:])
    # ... and each problem has a bold best.
    for j in range(1, 1 + len(problems)):
        assert any(r[j].startswith("**") for r in rows[: len(samplers)])

    # Spread tables: one per problem.
    for p in problems:
        assert f"**{p}**" in markdown
    spread = _table_rows(markdown, "| Sampler | after ")
    assert [r[0] for r in spread] == samplers * len(problems)
    for row in spread:
        for cell in row[1:]:
            numbers = re.findall(r"-?\d[\d.]*(?:e[+-]\d+)?", cell)
            assert len(numbers) == 5, cell
            assert all(math.isfinite(float(n)) for n in numbers), cell

    # Timing table: every timed sampler at every size, finite positive times.
    timing = _table_rows(markdown, "| Sampler | trials | history |")
    assert [(r[0], r[1]) for r in timing] == [
        (s, n) for s in cpu_suite.TIMED_SAMPLERS for n in ("60", "150")
    ]
    for row in timing:
        assert row[2] in ("real", "random")
        assert all(_finite(c) > 0.0 for c in row[3:7])

    assert "GeneticSampler (default) ≥ NSGA-II" in markdown
    assert markdown.count("Per-trial sampler overhead ≤ NSGA-II's") == 2
    for needle in ("- Date:", "- Command:", "- Machine:", "- Versions:", "optuna-evo "):
        assert needle in markdown


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The report of one ``python -m benchmarks.cpu_suite --quick`` run (a subprocess)."""
    out = tmp_path_factory.mktemp("cpu_suite") / "cpu_suite_quick.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.cpu_suite", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert out.exists()
    return out.read_text(encoding="utf-8")


def test_quick_suite_writes_complete_report(quick_report: str) -> None:
    assert "--quick" in quick_report
    _check_report(quick_report)


def test_report_check_rejects_a_broken_report(quick_report: str) -> None:
    """The checks above must be able to fail: a missing row, a NaN cell, a missing table."""
    lines = quick_report.splitlines()
    missing_row = "\n".join(line for line in lines if not line.startswith("| CmaEsSampler |"))
    with pytest.raises(AssertionError):
        _check_report(missing_row)

    row = next(line for line in lines if line.startswith("| TPESampler | "))
    cells = row.split("|")
    cells[2] = " nan "
    with pytest.raises((AssertionError, ValueError)):
        _check_report(quick_report.replace(row, "|".join(cells), 1))

    cut = quick_report.index("## Sampler time per trial")
    with pytest.raises(AssertionError):
        _check_report(quick_report[:cut])


def test_a_report_is_replaced_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import _common

    out = tmp_path / "results" / "r.md"
    assert _common.save_report(out, "old\n", 12.3) == out  # the folder is made
    assert capsys.readouterr().out == f"wrote {out} in 12 s\n"
    umask = os.umask(0o022)
    try:
        _common.save_report(out, "new\n")
    finally:
        os.umask(umask)
    assert out.read_text(encoding="utf-8") == "new\n" and out.stat().st_mode & 0o777 == 0o644

    def killed(*args: object) -> None:  # the step is killed while it writes
        raise KeyboardInterrupt

    monkeypatch.setattr(_common.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        _common.save_report(out, "half")
    assert out.read_text(encoding="utf-8") == "new\n"
    assert [p.name for p in out.parent.iterdir()] == ["r.md"]  # no temp file left


def test_workers_benchmark_quick_reports_every_sampler(tmp_path: Path) -> None:
    """``benchmarks/workers_pg.py --quick`` on PostgreSQL when CI has it, else SQLite."""
    from benchmarks import workers_pg

    url = os.environ.get("OPTUNA_EVO_TEST_POSTGRES") or f"sqlite:///{tmp_path / 'w.db'}"
    out = tmp_path / "workers.md"
    proc = subprocess.run(
        [sys.executable, "benchmarks/workers_pg.py", "--quick", "--storage", url, "--out", out],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = _table_rows(out.read_text(encoding="utf-8"), "| Sampler | Workers |")
    assert [(r[0], r[1]) for r in rows] == [
        (s, n) for s in workers_pg.SAMPLERS for n in ("1", "4")
    ]
    for row in rows:
        complete, total = (int(x) for x in row[2].split("/"))
        # Workers may each start one trial past the budget before they see it is used up.
        assert complete == total and 16 <= total <= 16 + 3
        assert all(_finite(c) > 0.0 for c in (row[3], row[4], row[5]))
        assert row[6].endswith("x") and _finite(row[6][:-1]) > 0.0
        assert math.isfinite(float(row[7])) and int(row[8]) >= 2


def test_seed_ga_benchmark_quick_reports_runs_and_samplers(tmp_path: Path) -> None:
    """``benchmarks/seed_ga_fashion_mnist.py --quick`` on the real FashionMNIST files."""
    from benchmarks import seed_ga_fashion_mnist as seed_ga
    from optuna_evo.objectives.data import DataNotFoundError
    from optuna_evo.objectives.data import load_image_dataset

    try:
        load_image_dataset("fashion-mnist", None, "cpu", max_train=8, max_val=8)
    except DataNotFoundError as exc:
        pytest.skip(f"FashionMNIST not installed: {exc}")
    out = tmp_path / "seed_ga.md"
    proc = subprocess.run(
        # Two worker processes: the pool path the GPU run takes by default.
        [
            sys.executable,
            "benchmarks/seed_ga_fashion_mnist.py",
            "--quick",
            "--jobs",
            "2",
            "--out",
            out,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = out.read_text(encoding="utf-8")
    runs = _table_rows(report, "| Run | Trials |")
    assert [r[0].split(" (")[0] for r in runs] == ["baseline"] + [
        r.name for r in seed_ga.PAPER_RUNS
    ]
    for row in runs:
        assert row[1] in ("1/1", "4/4")
        losses = [_finite(c) for c in row[2:4]]
        accuracies = [_finite(c) for c in row[4:6]]
        assert all(v > 0.0 for v in losses) and all(0.0 < a <= 1.0 for a in accuracies)
        assert "lr=" in row[7]
    compared = _table_rows(report, "| Sampler | Median best val accuracy |")
    assert [r[0] for r in compared] == list(seed_ga.COMPARED)
    for row in compared:
        assert 0.0 < _finite(row[1]) <= 1.0 and _finite(row[4]) > 0.0
    assert (tmp_path / "seed_ga.html").read_text(encoding="utf-8").count("GeneticSampler") >= 1
    assert "Goal: GeneticSampler's median best" in report


def test_seed_ga_report_of_part_2_only_and_some_samplers(tmp_path: Path) -> None:
    import argparse

    from benchmarks import seed_ga_fashion_mnist as seed_ga

    jobs = seed_ga.comparison_jobs(30, [0, 1], ["NSGAIISampler", "GeneticSampler"])
    assert [(j.sampler, j.seed) for j in jobs] == [
        ("GeneticSampler", 0),
        ("GeneticSampler", 1),
        ("NSGAIISampler", 0),
        ("NSGAIISampler", 1),
    ]
    # The tuned GA variant runs only when named.
    assert [j.sampler for j in seed_ga.comparison_jobs(3, [0])] == list(seed_ga.COMPARED)
    named = seed_ga.comparison_jobs(3, [0], ["GeneticSampler [variant]"])
    assert [j.sampler for j in named] == ["GeneticSampler [variant]"]
    # NSGA-II breeds within the budget: its population is GeneticSampler's, not Optuna's 50.
    assert seed_ga.COMPARED["NSGAIISampler"](0)._population_size == 10 == seed_ga.GA_POPULATION
    args = argparse.Namespace(
        out=tmp_path / "r.md", max_train=100, max_val=50, epochs=1, jobs=1, budget=3, seeds=[0]
    )

    def row(best: float) -> dict[str, object]:
        return {"best": best, "train_s": 1.0, "failed": 0, "curve": [best / 2, best, best]}

    text = seed_ga.write_report(args, "CPU", [], {"NSGAIISampler": [row(0.7)]}, 5.0)
    assert "Not run (`--skip-paper`)." in text and "| Run |" not in text
    assert "Goal:" not in text  # no GeneticSampler to compare
    rows = _table_rows(text, "| Sampler | Median best val accuracy |")
    assert [r[0] for r in rows] == ["NSGAIISampler"] and rows[0][1] == "0.7000"
    both = {"GeneticSampler": [row(0.75)], "TPESampler": [row(0.8)]}
    text = seed_ga.write_report(args, "CPU", [], both, 5.0)
    assert "at least as good as none of TPESampler." in text


def test_predictor_assisted_benchmark_quick_reports_both_arms(tmp_path: Path) -> None:
    """``benchmarks/predictor_assisted.py --quick`` on the real FashionMNIST files."""
    from benchmarks import predictor_assisted
    from optuna_evo.objectives.data import DataNotFoundError
    from optuna_evo.objectives.data import load_image_dataset

    try:
        load_image_dataset("fashion-mnist", None, "cpu", max_train=8, max_val=8)
    except DataNotFoundError as exc:
        pytest.skip(f"FashionMNIST not installed: {exc}")
    out = tmp_path / "pa.md"
    proc = subprocess.run(
        [sys.executable, "benchmarks/predictor_assisted.py", "--quick", "--out", out],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = _table_rows(out.read_text(encoding="utf-8"), "| arm | best val loss |")
    assert [r[0] for r in rows] == list(predictor_assisted.ARMS)
    for row in rows:
        assert _finite(row[1]) > 0.0
        assert all(0.0 < _finite(c) <= 1.0 for c in row[2:4])
        distinct, total = (int(x) for x in row[4].split(" / "))
        assert 1 <= distinct <= total
