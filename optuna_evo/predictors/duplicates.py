"""The duplicate cache: configuration hashes kept in the study's storage.

Every trial of a sampler with ``deduplicate`` on carries the trial system attr
:data:`CONFIG_HASH_KEY`, a hash of its parameter values. A configuration is *taken* while some
RUNNING, WAITING, COMPLETE or PRUNED trial carries its hash (FAIL trials may be retried, so they
do not count). The helpers here read those hashes, claim one for a trial, and find the nearest
configuration nobody has taken in a small finite space.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
import hashlib
import itertools
import json
import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

CONFIG_HASH_KEY = "optuna_evo:config_hash"
"""Trial system attr: :func:`config_hash` of the trial's configuration."""

TAKEN_STATES = (TrialState.RUNNING, TrialState.WAITING, TrialState.COMPLETE, TrialState.PRUNED)
"""States whose configurations count as evaluated or being evaluated."""


def config_hash(params: Mapping[str, Any]) -> str:
    """Return a short, stable hash of a parameter dict (names and exact values).

    Values are compared exactly and by JSON type (``1``, ``1.0`` and ``True`` differ), which
    matches how a sampler returns native values of one distribution type per parameter. NumPy
    scalars count as their Python values, and ``-0.0`` as ``0.0``.
    """
    items = sorted((name, _canonical(value)) for name, value in params.items())
    text = json.dumps(items, separators=(",", ":"), allow_nan=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _canonical(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        value += 0.0  # -0.0 == 0.0 but would print differently
    return value


def taken_hashes(trials: Iterable[FrozenTrial], exclude_trial_id: int | None = None) -> set[str]:
    """Hashes of the trials in :data:`TAKEN_STATES`, except ``exclude_trial_id``'s.

    A trial's stored hash, else (a finished trial that no assisted sampler handled: added with
    ``study.add_trial``, or run before ``assist`` was turned on) the hash of its params.
    """
    taken = set()
    for t in trials:
        if t.state not in TAKEN_STATES or t._trial_id == exclude_trial_id:
            continue
        stored = t.system_attrs.get(CONFIG_HASH_KEY)
        if stored is not None:
            taken.add(str(stored))
        elif t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            taken.add(config_hash(t.params))
    return taken


def claim(storage: BaseStorage, study_id: int, trial_id: int, value: str) -> tuple[bool, set[str]]:
    """Write ``value`` as the trial's hash, then check that no other trial holds it.

    Write first, read second: of two trials claiming one hash, at least the later reader sees
    the other's claim, so two trials can never both keep it (both may back off when their
    writes precede both reads).

    Returns:
        Whether the claim holds, and the hashes the other trials hold now.
    """
    storage.set_trial_system_attr(trial_id, CONFIG_HASH_KEY, value)
    taken = taken_hashes(
        storage.get_all_trials(study_id, deepcopy=False, states=TAKEN_STATES), trial_id
    )
    return value not in taken, taken


def finite_values(distribution: BaseDistribution, limit: int) -> list[Any] | None:
    """All values of a finite distribution (``None`` if infinite or more than ``limit``)."""
    if isinstance(distribution, CategoricalDistribution):
        values = list(distribution.choices)
    elif isinstance(distribution, IntDistribution):
        step = 1 if distribution.log else distribution.step
        n = (distribution.high - distribution.low) // step + 1
        if n > limit:
            return None
        values = list(range(distribution.low, distribution.high + 1, step))
    elif isinstance(distribution, FloatDistribution) and distribution.step is not None:
        n = math.floor((distribution.high - distribution.low) / distribution.step + 1e-9) + 1
        if n > limit:
            return None
        values = [
            float(min(distribution.low + k * distribution.step, distribution.high))
            for k in range(n)
        ]
    else:
        return None
    return values if len(values) <= limit else None


def nearest_untaken(
    params: Mapping[str, Any],
    distributions: Mapping[str, BaseDistribution],
    taken: set[str],
    rng: np.random.RandomState,
    frozen: Iterable[str] = (),
    limit: int = 20000,
) -> dict[str, Any] | None:
    """The untaken configuration that differs from ``params`` in the fewest parameters.

    Searches configurations at Hamming distance 1, 2, ... from ``params`` (changing only the
    parameters not in ``frozen``), stopping at the first distance that has untaken ones and
    returning one of those uniformly at random. Only finite distributions can change; at most
    ``limit`` configurations are examined.

    Returns:
        A new parameter dict, or ``None`` if none was found within the budget.
    """
    frozen = set(frozen)
    choices: dict[str, list[Any]] = {}
    for name, dist in distributions.items():
        if name in frozen or name not in params:
            continue
        values = finite_values(dist, limit)
        if values is not None and len(values) > 1:
            choices[name] = [v for v in values if not _same(v, params[name])]
    names = sorted(choices)
    budget = limit
    for distance in range(1, len(names) + 1):
        found: list[dict[str, Any]] = []
        for subset in itertools.combinations(names, distance):
            for combo in itertools.product(*(choices[n] for n in subset)):
                budget -= 1
                if budget < 0:
                    return _pick(found, rng)
                config = {**params, **dict(zip(subset, combo))}
                if config_hash(config) not in taken:
                    found.append(config)
        if found:
            return _pick(found, rng)
    return None


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _pick(found: list[dict[str, Any]], rng: np.random.RandomState) -> dict[str, Any] | None:
    return found[int(rng.randint(len(found)))] if found else None
