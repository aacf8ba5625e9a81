"""The evolution log: one row per trial with its lineage, like the MAGE paper's CSV."""

from __future__ import annotations

import csv
import os
from typing import Any

import optuna

from optuna_evo.architecture import ACTIVATION_PARAM
from optuna_evo.architecture import ARCHITECTURE_KEY
from optuna_evo.architecture import N_HIDDEN_PARAM
from optuna_evo.architecture import WIDTH_PARAM
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
"""Fixed leading columns of :func:`execution_details`. Multi-objective studies add
``value_0``, ``value_1``, ... after them; every parameter not shown in a fixed column follows
(prefixed ``param_`` when its name is already a column, so a param never overwrites one)."""

_WIDTH_PREFIX = WIDTH_PARAM.format("")


def execution_details(study: optuna.Study) -> list[dict[str, Any]]:
    """Return the study's evolution log, one row per trial, ordered by generation and agent.

    Columns, in order:

    - :data:`COLUMNS`: ``agent`` is the trial's index within its generation; ``val_loss`` is
      the objective value of a single-objective study whatever its direction — the
      validation loss for minimised tasks, but e.g. the accuracy for a maximised one such as
      GENREG's (the name follows the MAGE paper's log) — and is empty for multi-objective
      studies and trials without a value; ``architecture`` is the layer widths joined by
      ``-`` (e.g. ``784-128-10``), a residual hidden layer marked ``r`` and skip edges
      appended (e.g. ``784-256r-128-10 skip 0>2``), and ``activation`` the (first hidden
      layer's) activation
      when the trial had an architecture (planned by MAGE, or trained by a ready task such as
      :class:`~optuna_evo.objectives.MLPTask` with any sampler); ``lr`` is the param ``lr``
      and ``batch`` the param ``batch_size``, or the param ``batch`` when no trial has a
      ``batch_size``.
    - For multi-objective studies, ``value_0``, ``value_1``, ...: one column per objective
      (empty for trials without values).
    - Every other parameter, sorted by name, as ``param_<name>`` when the name is already a
      column (e.g. a param ``state``, or ``batch`` next to ``batch_size``). The architecture
      params shown by ``architecture`` and ``activation`` (``arch_n_hidden``,
      ``arch_width_<k>``, ``arch_activation``) are left out of trials that had an
      architecture; any other ``arch_*`` param (per-layer activations, block types, skips,
      or a user's own ``arch_depth``) is a column like the rest.

    Trials that no optuna-evo sampler handled get an empty generation. Every row has the
    same keys; a trial without some param has ``""`` there, and one whose param is a
    categorical ``None`` has ``None`` (written ``None`` by :func:`export_csv`).

    Args:
        study: The study to read.

    Returns:
        A list of dictionaries with the same keys, in column order.
    """
    return _details(study)[1]


def export_csv(study: optuna.Study, path: str | os.PathLike[str]) -> int:
    """Write :func:`execution_details` to ``path`` as UTF-8 CSV; return the number of rows.

    A value of ``None`` (e.g. a categorical param's ``None`` choice) is written ``None``, so
    that it differs from the empty cell of a param the trial never suggested.

    Args:
        study: The study to read.
        path: The CSV file to write (replaced if it exists).

    Returns:
        The number of rows written, header excluded.
    """
    fields, rows = _details(study)
    # UTF-8 whatever the locale: param names and categorical choices may be any text, and
    # a locale's code page (e.g. on Windows) can neither hold them nor be read back elsewhere.
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        # csv writes None as "", the cell of a missing param: spell it out.
        writer.writerows({k: "None" if v is None else v for k, v in row.items()} for row in rows)
    return len(rows)


def _details(study: optuna.Study) -> tuple[list[str], list[dict[str, Any]]]:
    """The column names and the rows of :func:`execution_details`."""
    trials = study.get_trials(deepcopy=False)
    n_objectives = len(study.directions)
    value_columns = [f"value_{i}" for i in range(n_objectives)] if n_objectives > 1 else []
    reserved = {*COLUMNS, *value_columns}
    # One source for the ``batch`` column across the study, so that the other name (if a
    # study has both) keeps its own column instead of being lost.
    has_batch_size = any("batch_size" in t.params for t in trials)
    batch_param = "batch_size" if has_batch_size else "batch"
    archs = {t.number: _architecture_of(t) for t in trials}
    param_names = sorted(
        {
            name
            for t in trials
            for name in t.params
            if name not in ("lr", batch_param)
            and not (archs[t.number] is not None and _shown_by_architecture(name))
        }
    )
    columns = _param_columns(param_names, reserved)
    rows = []
    for t in trials:
        lineage = t.system_attrs.get(LINEAGE_KEY) or {}
        arch = archs[t.number]
        if arch is not None:
            architecture = _describe(arch)
            activation = t.params.get(ACTIVATION_PARAM) or (arch.get("activations") or [""])[0]
        else:
            architecture, activation = "", ""
        single = n_objectives == 1 and t.values is not None
        row: dict[str, Any] = {
            "generation": lineage.get("generation", ""),
            "agent": 0,
            "trial": t.number,
            "role": lineage.get("role", ""),
            "parents": " ".join(str(n) for n in lineage.get("parent_numbers", [])),
            "state": t.state.name,
            "val_loss": t.values[0] if single else "",
            "n_params": t.user_attrs.get("n_params", ""),
            "architecture": architecture,
            "activation": activation or "",
            "lr": t.params.get("lr", ""),
            "batch": t.params.get(batch_param, ""),
        }
        for i, column in enumerate(value_columns):
            row[column] = t.values[i] if t.values is not None else ""
        row.update({columns[name]: t.params.get(name, "") for name in param_names})
        rows.append(row)
    rows.sort(key=lambda r: (r["generation"] == "", r["generation"] or 0, r["trial"]))
    counts: dict[Any, int] = {}
    for row in rows:
        row["agent"] = counts.get(row["generation"], 0)
        counts[row["generation"]] = row["agent"] + 1
    fields = [*COLUMNS, *value_columns, *columns.values()]
    return fields, rows


def _describe(arch: dict[str, Any]) -> str:
    # Widths alone would show two agents that differ in blocks or skips as the same network.
    widths = [str(w) for w in arch["widths"]]
    for k, block in enumerate(arch.get("blocks") or []):
        if block == "residual":
            widths[k + 1] += "r"
    text = "-".join(widths)
    skips = arch.get("skips") or []
    if skips:
        text += " skip " + " ".join(f"{i}>{j}" for i, j in skips)
    return text


def _architecture_of(trial: optuna.trial.FrozenTrial) -> dict[str, Any] | None:
    # The planned architecture (MAGE), else the one a ready task trained (any sampler).
    arch = trial.system_attrs.get(ARCHITECTURE_KEY) or trial.user_attrs.get("architecture")
    return arch if isinstance(arch, dict) and "widths" in arch else None


def _shown_by_architecture(param: str) -> bool:
    # Only what the ``architecture``/``activation`` columns hold in full; other ``arch_*``
    # genes stay columns (per-layer activations are not shown at all; block and skip genes
    # keep the values the sampler drew, which the description only summarises).
    if param in (N_HIDDEN_PARAM, ACTIVATION_PARAM):
        return True
    return param.startswith(_WIDTH_PREFIX) and param[len(_WIDTH_PREFIX) :].isdigit()


def _param_columns(names: list[str], reserved: set[str]) -> dict[str, str]:
    """Map each param name to its column: itself, or ``param_<name>`` if that is taken."""
    taken = reserved | set(names)
    out = {}
    for name in names:
        column = name
        if name in reserved:
            column = f"param_{name}"
            # A param literally named e.g. ``param_state`` next to ``state``: keep both.
            while column in taken:
                column = f"param_{column}"
            taken.add(column)
        out[name] = column
    return out
