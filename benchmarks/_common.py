"""Helpers shared by the benchmark scripts (torch is imported only by the GPU ones)."""

from __future__ import annotations

from collections.abc import Sequence
import datetime
import math
import os
from pathlib import Path
import platform
import re
import sys
import tempfile
from typing import TYPE_CHECKING
from typing import Any
import warnings

import optuna

import optuna_evo

if TYPE_CHECKING:
    import torch

GA_VARIANT_KWARGS: dict[str, Any] = {
    "crossover": "blend",
    "mutation": "gaussian",
    "mutation_sigma": 0.05,
}
"""Keyword arguments of the tuned GeneticSampler variant (chosen on the CPU suite's separate
tuning seeds), reported as ``GeneticSampler [variant]`` beside the defaults."""

NOT_REACHED = "not reached"
"""How the report writes a time to target that was never reached."""


class GPUBudget:
    """GPU seconds a run may spend in its trials; stops the study once they are used up.

    Args:
        total_s: The budget in seconds, > 0.
    """

    def __init__(self, total_s: float) -> None:
        if not total_s > 0:
            raise ValueError(f"total_s must be > 0, got {total_s!r}.")
        self.total_s = float(total_s)
        self.spent_s = 0.0

    def remaining(self) -> float:
        """Seconds left (may be negative once a trial overran)."""
        return self.total_s - self.spent_s

    def spend(self, seconds: float) -> None:
        """Book ``seconds`` of trial time."""
        self.spent_s += seconds

    def callback(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Optuna callback: stop the study when the budget is used up."""
        if self.remaining() <= 0.0:
            study.stop()


def budget_kwargs(budget: GPUBudget | None) -> dict[str, Any]:
    """``study.optimize`` keyword arguments that stop the study when ``budget`` is used up.

    With a budget its callback stops the study; the timeout only guards against a bug.
    """
    if budget is None:
        return {"callbacks": [], "timeout": None}
    return {"callbacks": [budget.callback], "timeout": 5 * budget.total_s + 60}


def silence() -> None:
    """Quiet Optuna's logs and experimental warnings: the scripts print their own progress."""
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def format_seconds(seconds: float, digits: int, unit: str = "") -> str:
    """``seconds`` with ``digits`` decimals (and ``unit``), or :data:`NOT_REACHED` if inf."""
    return NOT_REACHED if math.isinf(seconds) else f"{seconds:.{digits}f}{unit}"


def device_name(device: torch.device) -> str:
    """Human-readable device name."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def device_slug(device: torch.device) -> str:
    """The device's name as a file-name part: ``NVIDIA-H200``, ``CPU``."""
    return re.sub(r"[^A-Za-z0-9]+", "-", device_name(device).split(" (")[0]).strip("-")


def default_out(name: str, device: torch.device, quick: bool) -> Path:
    """``benchmarks/results/<name>_<device>_<date>.md`` (a temp file for ``--quick``)."""
    if quick:
        return Path(tempfile.gettempdir()) / f"{name}_quick.md"
    stamp = datetime.date.today().isoformat()
    return Path(__file__).resolve().parent / "results" / f"{name}_{device_slug(device)}_{stamp}.md"


def save_report(out: str | os.PathLike[str], text: str, seconds: float | None = None) -> Path:
    """Write a report atomically (a step killed at its time limit leaves the old file or the
    whole new one, never half) and print where it went, with the run's ``seconds`` if given."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # open() keeps the umask's mode
    try:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, out)
    finally:
        temp.unlink(missing_ok=True)
    print(f"wrote {out}" + ("" if seconds is None else f" in {seconds:.0f} s"), flush=True)
    return out


def report_header(
    title: str,
    script: str,
    device: torch.device,
    started: datetime.datetime,
    quick_mode: str | None,
    argv: Sequence[str] | None,
) -> list[str]:
    """The report lines every GPU benchmark starts with: device, date, mode, command, versions.

    ``quick_mode`` describes the ``--quick`` mode, ``None`` for a full run.
    """
    import torch

    cuda = torch.version.cuda or "none"
    command = " ".join(sys.argv[1:] if argv is None else argv)
    return [
        f"# {title}",
        "",
        f"- Device: **{device_name(device)}**",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC",
        f"- Mode: {quick_mode or 'full'}",
        f"- Command: `python benchmarks/{script} {command}`",
        f"- Versions: Python {platform.python_version()}, torch {torch.__version__} (CUDA "
        f"{cuda}), optuna {optuna.__version__}, optuna-evo {optuna_evo.__version__}",
    ]


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (else what :mod:`platform` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
