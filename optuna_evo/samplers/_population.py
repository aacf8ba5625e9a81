"""Generation and lineage bookkeeping shared by every optuna-evo sampler.

Everything a sampler needs lives in the study's storage, so any number of workers with their
own sampler objects cooperate; in-memory state is only a cache of it. For each trial the worker
that runs it writes, once, in ``before_trial``:

========================================  =======================================================
key                                       value
========================================  =======================================================
trial system attr ``{Class}:generation``  generation number (BaseGASampler's per-class key)
trial system attr ``optuna_evo:lineage``  ``{"generation": g, "role": r, "parents": [trial ids],
                                          "parent_numbers": [trial numbers]}``
trial user attrs ``optuna_evo:generation``,  mirror of the lineage for optuna-dashboard (which
``optuna_evo:role``, ``optuna_evo:parents``  shows user attrs only); ``parents`` holds numbers
study system attr ``{Class}:parent:{g}``  trial ids of generation ``g``'s parent population,
                                          written by the first worker that needs it
trial system attr ``optuna_evo:weight_noise``  std of the noise a child adds to the weights it
                                          inherits (MAGE; read by ``checkpoint.load_parent``)
trial system attrs ``optuna_evo:architecture``,  MAGE: the agent's architecture, its
``optuna_evo:mutation_prob``,             rank-scaled mutation probability and the
``optuna_evo:arch_mutation``              architecture mutation applied (see ``mage.py``)
trial system attrs ``optuna_evo:female``,  Gender: the learning-curve predictor genome the
``optuna_evo:female_parents``             trial carries and its female parents' trial numbers
study system attr ``optuna_evo:females:{g}``  Gender: generation ``g``'s ranked top females
========================================  =======================================================

Keys a subclass lists in ``MIRRORED_KEYS`` are also written as user attrs of the same name.

Roles: ``random`` (sampled uniformly; generation 0 or no parent available), ``enqueued``
(from :meth:`optuna.study.Study.enqueue_trial`; joins the generation being filled, which is
generation 0 when enqueued before the run), ``elite`` (copied unchanged from a parent),
``child`` (crossover of two parents, then mutation) and ``mutant`` (one parent, mutation only).

A trial's generation is the newest generation that has finished (COMPLETE or PRUNED) trials,
or the next one once that generation holds ``population_size`` finished trials. Running trials
do not count, so concurrent workers may overfill a generation; selection trims it. Its *slot*
(how many trials the generation already had) decides whether it is an elite.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import threading
from typing import Any
import weakref

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseGASampler
from optuna.samplers._lazy_random_state import LazyRandomState
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_evo.operators._space import contains
from optuna_evo.operators._space import sample_uniform

LINEAGE_KEY = "optuna_evo:lineage"
# Std of the noise a child adds to inherited weights (read by checkpoint.load_parent).
WEIGHT_NOISE_KEY = "optuna_evo:weight_noise"
USER_ATTR_PREFIX = "optuna_evo:"
ROLES = ("random", "enqueued", "elite", "child", "mutant")
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class Lineage:
    """Where a trial came from in the evolution.

    Attributes:
        generation: Generation number, 0 for the initial population.
        role: One of ``random``, ``enqueued``, ``elite``, ``child``, ``mutant``.
        parent_ids: Storage trial ids of the parents (empty for ``random`` / ``enqueued``).
        parent_numbers: The parents' trial numbers, in the same order.
    """

    generation: int
    role: str
    parent_ids: tuple[int, ...] = ()
    parent_numbers: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-serialisable form stored under :data:`LINEAGE_KEY`."""
        return {
            "generation": self.generation,
            "role": self.role,
            "parents": list(self.parent_ids),
            "parent_numbers": list(self.parent_numbers),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lineage:
        """Inverse of :meth:`to_dict`."""
        return cls(
            generation=int(data["generation"]),
            role=str(data["role"]),
            parent_ids=tuple(int(i) for i in data["parents"]),
            parent_numbers=tuple(int(n) for n in data["parent_numbers"]),
        )


def _storage_and_id(
    trial: optuna.Trial | FrozenTrial, study: Study | None
) -> tuple[optuna.storages.BaseStorage | None, int]:
    if isinstance(trial, optuna.Trial):
        return trial.study._storage, trial._trial_id
    if isinstance(trial, FrozenTrial):
        return (study._storage if study is not None else None), trial._trial_id
    raise TypeError(f"`trial` must be an optuna Trial or FrozenTrial, got {type(trial).__name__}.")


def lineage(trial: optuna.Trial | FrozenTrial, study: Study | None = None) -> Lineage | None:
    """Read a trial's lineage (generation, role, parents) from storage.

    Works inside an objective (pass the :class:`optuna.Trial`) on any worker, and on finished
    trials (a :class:`~optuna.trial.FrozenTrial`, optionally with its study to read the
    freshest copy). Reads storage directly because attributes written by the sampler in
    ``before_trial`` are not visible through ``trial.user_attrs`` of a running trial.

    Args:
        trial: The trial to look up.
        study: The study a FrozenTrial belongs to; optional.

    Returns:
        The :class:`Lineage`, or ``None`` if no optuna-evo sampler handled the trial.
    """
    storage, trial_id = _storage_and_id(trial, study)
    if storage is None:
        assert isinstance(trial, FrozenTrial)
        attrs = trial.system_attrs
    else:
        attrs = storage.get_trial_system_attrs(trial_id)
    data = attrs.get(LINEAGE_KEY)
    return None if data is None else Lineage.from_dict(data)


def parents(trial: optuna.Trial | FrozenTrial, study: Study | None = None) -> list[FrozenTrial]:
    """Return a trial's parent trials (finished trials of an earlier generation).

    Args:
        trial: A running :class:`optuna.Trial` (inside an objective) or a FrozenTrial.
        study: Required when ``trial`` is a FrozenTrial: the study it belongs to.

    Returns:
        The parents, in lineage order (the first is the primary parent); empty for trials of
        generation 0 and for trials no optuna-evo sampler handled.
    """
    storage, _ = _storage_and_id(trial, study)
    if storage is None:
        raise ValueError("`study` is required to read the parents of a FrozenTrial.")
    info = lineage(trial, study)
    if info is None:
        return []
    return [storage.get_trial(i) for i in info.parent_ids]


@dataclass
class Plan:
    """What one trial inherits, decided once in ``before_trial``.

    Attributes:
        lineage: Generation, role and parents (also in storage).
        parents: The parent trials, primary parent first.
        rng: The trial's own random stream.
        extras: Sampler-specific decisions (e.g. MAGE's architecture), stored as trial
            system attrs by :meth:`PopulationSampler.annotate`'s keys.
    """

    lineage: Lineage
    parents: list[FrozenTrial]
    rng: np.random.RandomState
    extras: dict[str, Any] = field(default_factory=dict)


class PopulationSampler(BaseGASampler, abc.ABC):
    """Base of every optuna-evo sampler: generations, lineage, roles and per-param inheritance.

    Subclasses choose the parent population (:meth:`select_parent`), the parents and role of a
    child (:meth:`make_child`) and how a parameter's parent values become the child's value
    (:meth:`vary_param`). Every parameter is sampled through ``sample_independent``, one at a
    time, so conditional (define-by-run) parameters are inherited when a parent had them and
    sampled fresh otherwise, and parameters that appear later in the study are handled.

    Each trial draws from its own random stream seeded by ``(seed, trial number)``: a run is
    reproducible for a given seed, and workers that share a seed still explore differently.

    Args:
        population_size: Finished trials per generation, >= 2.
        seed: Seed for the random streams.
        mirror_user_attrs: Also write generation, role and parents as user attrs so that
            optuna-dashboard shows them.
    """

    EXTRA_KEYS: tuple[str, ...] = ()
    """System-attr keys that :meth:`annotate` writes."""

    MIRRORED_KEYS: tuple[str, ...] = ()
    """Those of :attr:`EXTRA_KEYS` also written as user attrs (optuna-dashboard shows only
    user attrs) when ``mirror_user_attrs`` is on."""

    def __init__(
        self, population_size: int, seed: int | None = None, mirror_user_attrs: bool = True
    ) -> None:
        if int(population_size) != population_size or population_size < 2:
            raise ValueError(f"`population_size` must be an integer >= 2, got {population_size}.")
        super().__init__(population_size=int(population_size))
        self._rng = LazyRandomState(seed)
        self._base_seed: int | None = None
        self._mirror_user_attrs = mirror_user_attrs
        self._plans: dict[int, Plan] = {}
        # Weak keys: an entry dies with its storage, so a reused address never serves stale
        # trials of another study.
        self._parent_cache: weakref.WeakKeyDictionary[Any, dict[tuple[int, int], list]] = (
            weakref.WeakKeyDictionary()
        )
        # Keys annotate() may write; subclasses list theirs so plans can be rebuilt anywhere.
        self._extra_keys: set[str] = set(self.EXTRA_KEYS)
        self._lock = threading.RLock()

    # -- hooks for subclasses -------------------------------------------------------------

    @abc.abstractmethod
    def make_child(
        self,
        study: Study,
        generation: int,
        slot: int,
        parent_population: list[FrozenTrial],
        rng: np.random.RandomState,
    ) -> tuple[str, list[FrozenTrial]]:
        """Choose the role and parents of the ``slot``-th trial of ``generation`` (>= 1)."""

    @abc.abstractmethod
    def vary_param(self, plan: Plan, distribution: BaseDistribution, values: Sequence[Any]) -> Any:
        """Turn the parents' values of one parameter (at least one) into the child's value."""

    def annotate(
        self,
        study: Study,
        info: Lineage,
        parents: list[FrozenTrial],
        parent_population: list[FrozenTrial],
        rng: np.random.RandomState,
    ) -> dict[str, Any]:
        """Return extra per-trial decisions to store as trial system attrs (none by default).

        ``parents`` are the trial's own parents, ``parent_population`` its generation's
        (empty in generation 0).

        Keys should start with ``optuna_evo:``; values must be JSON-serialisable. They are read
        back into :attr:`Plan.extras` by any worker that handles the trial.
        """
        return {}

    # -- BaseSampler ----------------------------------------------------------------------

    def reseed_rng(self) -> None:
        """Reseed the sampler's random number generator."""
        with self._lock:
            self._rng.rng.seed()
            self._base_seed = None

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """Return an empty space: every parameter is inherited one at a time."""
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Return nothing (see :meth:`infer_relative_search_space`)."""
        self._check_single_objective(study)
        return {}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        """Sample one parameter: inherited from the trial's parents when they had it."""
        self._check_single_objective(study)
        plan = self._plan(study, trial)
        with self._lock:
            values = [
                p.params[param_name]
                for p in plan.parents
                if param_name in p.params and contains(param_distribution, p.params[param_name])
            ]
            if values:
                value = self.vary_param(plan, param_distribution, values)
            else:
                value = sample_uniform(param_distribution, plan.rng)
        assert contains(param_distribution, value), (param_name, value)
        return value

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """Assign the trial's generation, role and parents, and record them in storage."""
        self._plan(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        """Drop the trial's cached plan (its lineage stays in storage)."""
        with self._lock:
            self._plans.pop(trial._trial_id, None)

    # -- BaseGASampler --------------------------------------------------------------------

    def get_trial_generation(self, study: Study, trial: FrozenTrial) -> int:
        """Return the trial's generation, assigning it if no worker has yet."""
        return self._plan(study, trial).lineage.generation

    def get_population(self, study: Study, generation: int) -> list[FrozenTrial]:
        """Return the finished (COMPLETE or PRUNED) trials of ``generation``."""
        key = self._get_generation_key()
        return [
            t
            for t in study._get_trials(deepcopy=False, states=_FINISHED, use_cache=True)
            if t.system_attrs.get(key) == generation
        ]

    # -- internals ------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        del state["_parent_cache"]
        state["_plans"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()
        self._parent_cache = weakref.WeakKeyDictionary()

    def _check_single_objective(self, study: Study) -> None:
        if len(study.directions) > 1:
            raise ValueError(
                f"{type(self).__name__} supports single-objective studies only; "
                f"this study has {len(study.directions)} objectives."
            )

    def _trial_rng(self, number: int) -> np.random.RandomState:
        if self._base_seed is None:
            self._base_seed = int(self._rng.rng.randint(2**31 - 1))
        return np.random.RandomState([self._base_seed, number])

    def _generation_and_slot(self, study: Study) -> tuple[int, int]:
        # A trial is only ever assigned generation g once g - 1 is full or g has finished
        # trials, so the newest finished generation is the newest assigned one or the one
        # before it. Scanning newest-first, a long run of trials two or more generations back
        # therefore ends the search: this keeps the cost per trial flat in the study's size
        # (the window tolerates the interleaving that concurrent workers cause).
        key = self._get_generation_key()
        assert self._population_size is not None
        window = 2 * self._population_size
        finished: dict[int, int] = {}
        assigned: dict[int, int] = {}
        newest = -1
        old_run = 0
        for t in reversed(study._get_trials(deepcopy=False, use_cache=True)):
            g = t.system_attrs.get(key)
            if g is None:
                continue
            if g > newest:
                newest = g
            elif g <= newest - 2:
                old_run += 1
                if old_run >= window:
                    break
                continue
            old_run = 0
            assigned[g] = assigned.get(g, 0) + 1
            if t.state in _FINISHED:
                finished[g] = finished.get(g, 0) + 1
        latest = max(finished, default=0)
        generation = latest if finished.get(latest, 0) < self._population_size else latest + 1
        return generation, assigned.get(generation, 0)

    def get_parent_population(self, study: Study, generation: int) -> list[FrozenTrial]:
        """Return generation ``generation``'s parent population (empty for generation 0).

        The first worker that needs it selects it (:meth:`select_parent`) and stores the trial
        ids in the study's system attrs; everyone else reads them. Finished trials never
        change, so each worker also keeps the trials in memory per storage object.
        """
        if generation == 0:
            return []
        per_study = self._parent_cache.setdefault(study._storage, {})
        cache_key = (study._study_id, generation)
        cached = per_study.get(cache_key)
        if cached is None:
            attr = self._get_parent_cache_key_prefix() + str(generation)
            ids = study._storage.get_study_system_attrs(study._study_id).get(attr)
            if ids is None:
                cached = self.select_parent(study, generation)
                study._storage.set_study_system_attr(
                    study._study_id, attr, [t._trial_id for t in cached]
                )
            else:
                cached = [study._storage.get_trial(i) for i in ids]
            per_study[cache_key] = cached
        return cached

    def _plan(self, study: Study, trial: FrozenTrial) -> Plan:
        with self._lock:
            plan = self._plans.get(trial._trial_id)
            if plan is None:
                plan = self._plans[trial._trial_id] = self._make_plan(study, trial)
            return plan

    def _make_plan(self, study: Study, trial: FrozenTrial) -> Plan:
        self._check_single_objective(study)
        storage = study._storage
        attrs = storage.get_trial_system_attrs(trial._trial_id)
        rng = self._trial_rng(trial.number)
        stored = attrs.get(LINEAGE_KEY)
        if stored is not None:  # assigned earlier, possibly by another worker
            info = Lineage.from_dict(stored)
            extras = {k: v for k, v in attrs.items() if k in self._extra_keys}
            return Plan(info, [storage.get_trial(i) for i in info.parent_ids], rng, extras)

        generation, slot = self._generation_and_slot(study)
        chosen: list[FrozenTrial] = []
        parent_population: list[FrozenTrial] = []
        if "fixed_params" in attrs:
            role = "enqueued"
        elif generation == 0:
            role = "random"
        else:
            parent_population = self.get_parent_population(study, generation)
            if parent_population:
                role, chosen = self.make_child(study, generation, slot, parent_population, rng)
            else:
                role = "random"
        info = Lineage(
            generation=generation,
            role=role,
            parent_ids=tuple(p._trial_id for p in chosen),
            parent_numbers=tuple(p.number for p in chosen),
        )
        extras = self.annotate(study, info, chosen, parent_population, rng)
        self._extra_keys.update(extras)
        storage.set_trial_system_attr(trial._trial_id, self._get_generation_key(), generation)
        storage.set_trial_system_attr(trial._trial_id, LINEAGE_KEY, info.to_dict())
        for key, value in extras.items():
            storage.set_trial_system_attr(trial._trial_id, key, value)
        if self._mirror_user_attrs:
            for name, value in (
                ("generation", generation),
                ("role", role),
                ("parents", list(info.parent_numbers)),
            ):
                storage.set_trial_user_attr(trial._trial_id, USER_ATTR_PREFIX + name, value)
            for key in self.MIRRORED_KEYS:
                if key in extras:
                    storage.set_trial_user_attr(trial._trial_id, key, extras[key])
        return Plan(info, chosen, rng, extras)
