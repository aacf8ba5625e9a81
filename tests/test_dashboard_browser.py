"""optuna-dashboard, rendered by headless Chromium, shows a study that ``optuna-evo run`` made.

The test starts optuna-dashboard on loopback against the CLI's SQLite file and dumps the DOM
of the single-page app after its JavaScript ran, so what is asserted is what a person sees:
the study, a trial's parents (user attrs) and the genealogy figure saved by the CLI.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
import re
import shutil
import socket
import subprocess
import sys
import time
from typing import Any
import urllib.error
import urllib.request

import optuna
import pytest

import optuna_evo
from optuna_evo import checkpoint
from optuna_evo.cli import CONFIG_KEY

pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (.ci/install installs it with OPTUNA_EVO_INSTALL_BROWSER=1)",
)

STUDY = "browser-demo"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dashboard_command() -> list[str]:
    script = Path(sys.executable).with_name("optuna-dashboard")
    if script.exists():
        return [str(script)]
    found = shutil.which("optuna-dashboard")
    if found is None:
        pytest.skip("the optuna-dashboard console script is not on PATH")
    return [found]


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _wait_for_server(server: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"optuna-dashboard exited with {server.returncode}: {log.read_text()}")
        try:
            _get_json(f"{base}/api/meta")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    pytest.fail(f"optuna-dashboard did not answer within 30 s: {log.read_text()}")


def _render(url: str, profile: Path) -> str:
    assert CHROMIUM is not None
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _text(dom: str) -> str:
    """The page's visible text on one line (tags dropped, entities decoded)."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())


def _plot_with_title(dom: str, title: str) -> str:
    """The markup of the plotly graph whose title is ``title``."""
    # Each graph's markup runs from its "js-plotly-plot" container to the next one's.
    for chunk in re.split(r"\bjs-plotly-plot\b", dom)[1:]:
        if f'data-unformatted="{title}"' in chunk:
            return chunk
    raise AssertionError(f"no rendered plotly graph titled {title!r} on the page")


def test_dashboard_shows_the_cli_study(tmp_path: Path) -> None:
    db = tmp_path / "evo.db"
    storage = f"sqlite:///{db}"
    # MAGE keeps every agent's weights, by default in ./optuna-evo-artifacts: the checkout.
    artifacts = tmp_path / "artifacts"
    # A study made by the CLI: MAGE on the MLP task, 2 generations of 3 agents, tiny budget.
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "optuna_evo.cli",
            "run",
            "--task",
            "mlp",
            "--sampler",
            "mage",
            "--population-size",
            "3",
            "--n-trials",
            "6",
            "--device",
            "cpu",
            "--max-train",
            "256",
            "--max-val",
            "128",
            "--no-progress",
            "--storage",
            storage,
            "--study-name",
            STUDY,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1", checkpoint.ARTIFACT_DIR_ENV: str(artifacts)},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    study = optuna.load_study(study_name=STUDY, storage=storage)
    assert study.user_attrs[CONFIG_KEY]["artifact_dir"] == str(artifacts.resolve())
    assert len(list(artifacts.iterdir())) == len(study.trials)  # one checkpoint per agent
    child = next(t for t in study.get_trials() if optuna_evo.lineage(t, study).generation == 1)
    parents = child.user_attrs["optuna_evo:parents"]
    assert parents

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "dashboard.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [*_dashboard_command(), storage, "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_server(server, base, log)
        studies = _get_json(f"{base}/api/studies")["study_summaries"]
        study_id = next(s["study_id"] for s in studies if s["study_name"] == STUDY)

        page = _render(f"{base}/dashboard/studies/{study_id}", tmp_path / "profile-study")
        assert STUDY in _text(page)
        genealogy = _plot_with_title(page, "Genealogy Plot")
        # plotly drew one marker per trial (SVG scatter points): the figure carries the data.
        assert genealogy.count('class="point"') == len(study.trials)
        assert 'data-unformatted="Parent → child"' in genealogy  # the edges' legend entry
        _plot_with_title(page, "Generations Plot")

        url = f"{base}/dashboard/studies/{study_id}/trials?numbers={child.number}"
        text = _text(_render(url, tmp_path / "profile-trial"))
        shown = r",\s*".join(str(n) for n in parents)
        assert re.search(rf"optuna_evo:parents\s*\[\s*{shown}\s*\]", text), text[-3000:]
        assert re.search(r"optuna_evo:role\s*(elite|mutant)", text)
        assert re.search(r"optuna_evo:generation\s*1", text)
        assert "optuna_evo:architecture" in text
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
