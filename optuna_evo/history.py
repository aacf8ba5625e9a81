"""The evolution log: one row per trial with its lineage, like the MAGE paper's CSV."""

from __future__ import annotations

import csv
import os
from typing import Any

import optuna

from optuna_evo.architecture import ACTIVATION_PARAM
from optuna_evo.architecture import ARCHITECTURE_KEY
from optuna_evo.samplers._population import LINEAGE_KEY

COLUMNS = (
    "generation",
    "agent",
    "trial",
    "role",
    "parents",
    "state",
    "val_loss",
    "n_params",
    "architecture",
    "activation",
    "lr",
    "batch",
)
"""Fixed leading columns of :func:`execution_details`; every other param follows as a column
(prefixed ``param_`` when its name is one of these, so a param never overwrites the lineage)."""


def execution_details(study: optuna.Study) -> list[dict[str, Any]]:
    """Return the study's evolution log, one row per trial, ordered by generation and agent.

    Columns: :data:`COLUMNS` — ``agent`` is the trial's index within its generation,
    ``val_loss`` the objective value, ``architecture`` the layer widths joined by ``-`` (e.g.
    ``784-128-10``) when the trial had one (planned by MAGE, or trained by a ready task such as
    :class:`~optuna_evo.objectives.MLPTask` with any sampler) — followed by every other
    parameter (as ``param_<name>`` when the name is already a column, e.g. a param ``state``).
    Trials that no optuna-evo sampler handled get an empty generation.

    Args:
        study: The study to read.

    Returns:
        A list of dictionaries with the same keys.
    """
    trials = study.get_trials(deepcopy=False)
    param_names = sorted(
        {n for t in trials for n in t.params if not n.startswith("arch_")}
        - {"lr", "batch_size", "batch"}
    )
    rows = []
    for t in trials:
        lineage = t.system_attrs.get(LINEAGE_KEY) or {}
        # The planned architecture (MAGE), else the one a ready task trained (any sampler).
        arch = t.system_attrs.get(ARCHITECTURE_KEY) or t.user_attrs.get("architecture")
        activation = t.params.get(ACTIVATION_PARAM)
        if isinstance(arch, dict) and "widths" in arch:
            architecture = "-".join(str(w) for w in arch["widths"])
            activation = activation or (arch.get("activations") or [None])[0]
        else:
            architecture = ""
        row: dict[str, Any] = {
            "generation": lineage.get("generation", ""),
            "agent": 0,
            "trial": t.number,
            "role": lineage.get("role", ""),
            "parents": " ".join(str(n) for n in lineage.get("parent_numbers", [])),
            "state": t.state.name,
            "val_loss": t.value if t.values is not None and len(t.values) == 1 else "",
            "n_params": t.user_attrs.get("n_params", ""),
            "architecture": architecture,
            "activation": activation or "",
            "lr": t.params.get("lr", ""),
            "batch": t.params.get("batch_size", t.params.get("batch", "")),
        }
        row.update({_column(name): t.params.get(name, "") for name in param_names})
        rows.append(row)
    rows.sort(key=lambda r: (r["generation"] == "", r["generation"] or 0, r["trial"]))
    counts: dict[Any, int] = {}
    for row in rows:
        row["agent"] = counts.get(row["generation"], 0)
        counts[row["generation"]] = row["agent"] + 1
    return rows


def _column(param: str) -> str:
    return f"param_{param}" if param in COLUMNS else param


def export_csv(study: optuna.Study, path: str | os.PathLike[str]) -> int:
    """Write :func:`execution_details` to ``path`` as CSV; return the number of rows."""
    rows = execution_details(study)
    fields = list(COLUMNS) + [k for k in (rows[0] if rows else {}) if k not in COLUMNS]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
