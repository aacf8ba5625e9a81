"""Tests of ``benchmarks/gpu_session.py``: the plan, and the step runner on stand-in scripts."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import re
import signal
import sys
import textwrap
import time

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # ``benchmarks`` is not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import gpu_session  # noqa: E402

MAX_FILES_BACK = 8  # what one device call returns from $OUT


def test_plan_steps_name_real_scripts_and_flags() -> None:
    names = [s.name for t in gpu_session.TRANCHES.values() for s in t.steps]
    assert len(names) == len(set(names))
    for tranche in gpu_session.TRANCHES.values():
        # One device command runs at most 10 minutes; the call also installs wheels.
        assert tranche.budget_s <= 570
        files = 1 + sum(1 + len(s.extra_files) for s in tranche.steps)  # + summary.md
        assert files <= MAX_FILES_BACK
        for step in tranche.steps:
            source = (REPO / "benchmarks" / step.script).read_text(encoding="utf-8")
            for flag in (a for a in step.args + step.sizes if a.startswith("--")):
                assert f'"{flag}"' in source, (step.name, flag)
            assert '"--out"' in source and '"--quick"' in source and '"--data-dir"' in source
            if step.text:
                assert '"--text-path"' in source
            assert 0 < step.limit_s <= tranche.budget_s


def test_parse_args_defaults_and_errors() -> None:
    args = gpu_session.parse_args([])
    assert args.tranche == ["1"] and args.selected == list(gpu_session.TRANCHES["1"].steps)
    args = gpu_session.parse_args(["--steps", "genreg,seed_ga"])
    assert [s.name for s in args.selected] == ["genreg", "seed_ga"]
    for bad in (["--steps", "nope"], ["--tranche", "9"], ["--budget-s", "0"]):
        with pytest.raises(SystemExit):
            gpu_session.parse_args(bad)


def test_step_command_quick_and_paths(tmp_path: Path) -> None:
    step = gpu_session.TRANCHES["4"].steps[1]  # predictor_assisted runs with --device cuda
    args = argparse.Namespace(quick=False, data_dir="/d", text_path="/t.txt")
    command = gpu_session.step_command(step, tmp_path / "r.md", args)
    assert command[2:] == [*step.sizes, "--data-dir", "/d", "--out", str(tmp_path / "r.md")]
    assert command[2:4] == ["--device", "cuda"]
    args.quick = True
    quick = gpu_session.step_command(step, tmp_path / "r.md", args)
    assert quick[2] == "--quick" and "--device" not in quick and "--generations" not in quick
    lm = gpu_session.TRANCHES["1"].steps[1]  # keeps --skip-cnn, drops nothing else
    quick_lm = gpu_session.step_command(lm, tmp_path / "r.md", args)
    assert quick_lm[2:4] == ["--skip-cnn", "--quick"] and "--text-path" in quick_lm


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(
        "import sys, time\nout = sys.argv[sys.argv.index('--out') + 1]\n" + textwrap.dedent(body),
        encoding="utf-8",
    )
    return str(path)  # absolute: REPO / "benchmarks" / path is path


def _gone(pid: int, wait_s: float = 10.0) -> bool:
    """Whether process ``pid`` has exited (a zombie counts), waiting up to ``wait_s``."""
    give_up = time.monotonic() + wait_s
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return True
        if time.monotonic() > give_up:
            return False
        time.sleep(0.05)


def _args(**kw: object) -> argparse.Namespace:
    base = dict(quick=False, quick_limit_s=300.0, data_dir=None, text_path=None)
    return argparse.Namespace(**{**base, **kw})


def test_run_steps_reports_ok_failure_timeout_and_skips(tmp_path: Path) -> None:
    ok = _script(tmp_path, "ok", "open(out, 'w').write('# report')\nprint('done')\n")
    bad = _script(tmp_path, "bad", "print('boom: something broke')\nsys.exit(3)\n")
    # The sleeper starts a worker of its own, as a benchmark's pool would: both must die.
    pids = tmp_path / "pids"
    slow = _script(
        tmp_path,
        "slow",
        f"""
        import os, subprocess
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{worker.pid}}\\n")
        print('started', flush=True)
        time.sleep(600)
        """,
    )
    steps = [
        gpu_session.Step("ok_step", 3, ok, (), 20),
        gpu_session.Step("bad_step", 4, bad, (), 20),
        gpu_session.Step("slow_step", 5, slow, (), 2.0),
    ]
    seen: list[list[str]] = []
    out = tmp_path / "out"
    out.mkdir()
    outcomes = gpu_session.run_steps(
        steps, _args(), out, time.monotonic() + 600, lambda o: seen.append([x.status for x in o])
    )
    assert [o.status for o in outcomes] == ["ok", "failed (exit 3)", "timed out after 2 s"]
    # Killed at its limit with its whole process group, not left sleeping for 10 minutes.
    sleeper, worker = (int(pid) for pid in pids.read_text().split())
    try:
        assert _gone(sleeper) and _gone(worker)
    finally:
        for pid in (sleeper, worker):
            if not _gone(pid, wait_s=0):
                os.kill(pid, signal.SIGKILL)
    assert re.fullmatch(r"`ok_step_[A-Za-z0-9-]+_\d{4}-\d\d-\d\d\.md`", outcomes[0].report)
    assert outcomes[1].report == "" and "boom: something broke" in outcomes[1].log_tail
    assert "started" in outcomes[2].log_tail
    assert ["running", "not run", "not run"] in seen  # progress was reported as it happened
    # Too little time left: nothing starts.
    skipped = gpu_session.run_steps(steps[:1], _args(), out, time.monotonic() + 5, lambda o: None)
    assert skipped[0].status.startswith("skipped")


def test_run_steps_side_by_side(tmp_path: Path) -> None:
    # A barrier: each step marks that it started, then finishes only once all three have.
    # Run one after another, the first would wait alone and fail; no timing is asserted.
    started = tmp_path / "started"
    started.mkdir()
    barrier = _script(
        tmp_path,
        "barrier",
        f"""
        from pathlib import Path
        started = Path({str(started)!r})
        (started / Path(out).name).touch()
        give_up = time.monotonic() + 60
        while len(list(started.iterdir())) < 3:
            if time.monotonic() > give_up:
                sys.exit("the other steps never started: not run side by side")
            time.sleep(0.05)
        open(out, 'w').write('x')
        """,
    )
    steps = [gpu_session.Step(f"wait{i}", 7, barrier, (), 120) for i in range(3)]
    outcomes = gpu_session.run_steps(
        steps, _args(), tmp_path, time.monotonic() + 600, lambda o: None, parallel=True
    )
    assert [o.status for o in outcomes] == ["ok"] * 3, [o.log_tail for o in outcomes]


def test_main_writes_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok = _script(tmp_path, "ok", "open(out, 'w').write('# report')\n")
    bad = _script(tmp_path, "bad", "print('broken', flush=True)\nsys.exit(1)\n")
    tranche = gpu_session.Tranche(
        (gpu_session.Step("a", 3, ok, (), 20), gpu_session.Step("b", 6, bad, (), 20)), 100
    )
    monkeypatch.setattr(gpu_session, "TRANCHES", {"1": tranche})
    out = tmp_path / "out"
    assert gpu_session.main(["--tranche", "1", "--out-dir", str(out)]) == 1
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "# GPU session: tranche(s) 1" in summary
    assert "- torch: " in summary and "- optuna_evo: " in summary
    assert re.search(r"\| a \| #3 \| ok \| \d+ \| 20 \| `a_.*\.md` \|", summary)
    assert "| b | #6 | failed (exit 1) |" in summary
    assert "## b: end of its log" in summary and "broken" in summary
    assert sorted(p.name for p in out.iterdir())[-1] == "summary.md"
    assert len(list(out.iterdir())) == 2
