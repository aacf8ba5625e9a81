"""Helpers shared by the GPU benchmark scripts."""

from __future__ import annotations

import optuna

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
