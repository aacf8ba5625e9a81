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
study system attr ``{Class}:parent_numbers:{g}``  trial numbers of generation ``g``'s parent
                                          population, written by the first worker that needs
                                          it, then read back (see ``get_parent_population``);
                                          ``{Class}:parent:{g}`` (BaseGASampler's key) holds
                                          their trial ids
study system attr ``{Class}:considered_numbers:{g}``  trial numbers of every candidate that
                                          selection saw, so that a trial finishing late is
                                          still considered (``{Class}:considered:{g}``, with
                                          ids, in studies begun before numbers were stored)
trial system attr ``optuna_evo:elite_of``  ``[g, parent number, sampler class]``: an elite's
                                          claim on the parent it copies, so two workers never
                                          copy one elite
trial system attr ``optuna_evo:weight_noise``  std of the noise a child adds to the weights it
                                          inherits (MAGE; read by ``checkpoint.load_parent``)
trial system attrs ``optuna_evo:architecture``,  MAGE: the agent's architecture, its
``optuna_evo:mutation_prob``,             rank-scaled mutation probability and the
``optuna_evo:arch_mutation``              architecture mutation applied (see ``mage.py``)
trial system attrs ``optuna_evo:female``,  Gender: the learning-curve predictor genome the
``optuna_evo:female_parents``             trial carries and its female parents' trial numbers
study system attr ``optuna_evo:females:{g}``  Gender: generation ``g``'s ranked top females
trial system attr ``optuna_evo:arch_crossover``  cuts ``[a, b]`` of the architecture crossover
                                          that made the child (first parent's layers ``[:a]``
                                          + second parent's ``[b:]``)
trial system attr ``optuna_evo:candidate``  with ``assist``: the configuration drawn for the
                                          trial before it started (``sample_independent``
                                          returns these values)
trial system attr ``optuna_evo:config_hash``  with ``deduplicate``: hash of the configuration,
                                          claimed before the trial's params are handed out,
                                          rewritten from the actual params when it finishes
trial system + user attr ``optuna_evo:assist``  with ``assist``: ``{"candidates", "predicted",
                                          "std", "explored", "guard_checks", "rejected",
                                          "duplicates", "races", "fallback"}`` (see
                                          :class:`~optuna_evo.samplers.PredictorAssist`)
========================================  =======================================================

Keys a subclass lists in ``MIRRORED_KEYS`` are also written as user attrs of the same name.

Architectures: a sampler given an :class:`~optuna_evo.architecture.ArchitectureSpace` plans a
child's architecture from its parents' (one-point crossover for two parents, then one
architecture mutation with the given probability) and hands its genes out as the
``arch_*`` params; see :meth:`PopulationSampler.inherit_architecture`.

Roles: ``random`` (sampled uniformly; generation 0 or no parent available), ``enqueued``
(from :meth:`optuna.study.Study.enqueue_trial`; joins the generation being filled, which is
generation 0 when enqueued before the run unless prior trials fill it), ``elite`` (copied
unchanged from a parent), ``child`` (crossover of two parents, then mutation) and ``mutant``
(one parent, mutation only).

A trial's generation is the newest generation that has finished (COMPLETE or PRUNED) trials,
or the next one once that generation holds ``population_size`` finished trials. A study's
*prior* trials, finished trials that no sampler of this class handled (another sampler's, or
added with ``study.add_trial``), count as generation 0's: a sampler plugged into a study
with results starts from them (with ``population_size`` of them, its first trial is already
generation 1, whose parents are the best of them). They keep no lineage of their own; those
added after generation 1's parents were chosen are ranked by generation 2's selection (as
generation-0 trials that finished late), later ones by none. Running trials
do not count, so concurrent workers may overfill a generation; selection trims it. Its *slot*
(how many trials the generation already had, failed and enqueued ones aside) decides whether it
is an elite; an elite claims
its parent (write, then read the other trials' claims), and a trial that loses the claim to a
concurrent one takes the next slot, so each elite is copied once per generation.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import math
import threading
import time
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

from optuna_evo._logging import get_logger
from optuna_evo._validation import check_bool
from optuna_evo._validation import check_int
from optuna_evo.architecture import ARCHITECTURE_KEY
from optuna_evo.architecture import N_HIDDEN_PARAM
from optuna_evo.architecture import Architecture
from optuna_evo.architecture import ArchitectureSpace
from optuna_evo.operators._space import contains
from optuna_evo.operators._space import sample_uniform
from optuna_evo.operators.crossover import architecture_crossover
from optuna_evo.predictors.duplicates import CONFIG_HASH_KEY
from optuna_evo.predictors.duplicates import claim
from optuna_evo.predictors.duplicates import config_hash
from optuna_evo.predictors.duplicates import nearest_untaken
from optuna_evo.predictors.duplicates import taken_hashes
from optuna_evo.samplers._assist import ASSIST_KEY
from optuna_evo.samplers._assist import CANDIDATE_KEY
from optuna_evo.samplers._assist import Candidate
from optuna_evo.samplers._assist import PredictorAssist
from optuna_evo.samplers._assist import Scorer
from optuna_evo.samplers._assist import best_parent_value
from optuna_evo.samplers._assist import fit_scorer

LINEAGE_KEY = "optuna_evo:lineage"
# Std of the noise a child adds to inherited weights (read by checkpoint.load_parent).
WEIGHT_NOISE_KEY = "optuna_evo:weight_noise"
USER_ATTR_PREFIX = "optuna_evo:"
ARCH_MUTATION_KEY = "optuna_evo:arch_mutation"
ARCH_CROSSOVER_KEY = "optuna_evo:arch_crossover"
ROLES = ("random", "enqueued", "elite", "child", "mutant")
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
_ASSISTED_ROLES = ("random", "child", "mutant")
_ARCH_GENE = "<architecture>"  # remutate(): the architecture counts as one gene
_FALLBACK_CLAIMS = 50  # bound on lost races after the retries (each loss shrinks the space)
ELITE_KEY = "optuna_evo:elite_of"
_ELITE_ATTEMPTS = 2  # claims of one elite before moving on (a second try after both backed off)
# Pause between storing a shared decision and reading it back, so that a concurrent worker's
# write lands first and both go on with the same stored value (not needed in memory: one process).
_SETTLE_PAUSE_S = 0.05
_logger = get_logger(__name__)


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
) -> tuple[optuna.storages.BaseStorage | None, int, int | None]:
    """The storage to read, the trial's id there and its study's id (``None``: no storage)."""
    if isinstance(trial, optuna.Trial):
        return trial.study._storage, trial._trial_id, trial.study._study_id
    if not isinstance(trial, FrozenTrial):
        raise TypeError(
            f"`trial` must be an optuna Trial or FrozenTrial, got {type(trial).__name__}."
        )
    if study is None:
        return None, trial._trial_id, None
    if not _is_trial_of(study._storage, study._study_id, trial.number, trial._trial_id):
        raise ValueError(
            f"trial {trial.number} (id {trial._trial_id}) is not a trial of study "
            f"{study.study_name!r}; pass the study it belongs to."
        )
    return study._storage, trial._trial_id, study._study_id


def _is_trial_of(
    storage: optuna.storages.BaseStorage, study_id: int, number: int, trial_id: int
) -> bool:
    """Whether trial ``number`` of study ``study_id`` is the one stored under ``trial_id``.

    Trial ids are global to a storage: the same id in another study (or in the storage a
    study was copied from) is another trial.
    """
    try:
        return storage.get_trial_id_from_study_id_trial_number(study_id, number) == trial_id
    except KeyError:
        return False


def generation_key_of(trial: FrozenTrial) -> str | None:
    """The system attr key under which a genetic sampler stored the trial's generation.

    ``{SamplerClass}:generation`` (BaseGASampler's key: optuna-evo's samplers, NSGA-II, ...);
    ``None`` for a trial no such sampler handled. Generations are numbered per class, so
    this key says which numbering a trial's generation belongs to.
    """
    for key, value in trial.system_attrs.items():
        if key.endswith(":generation") and isinstance(value, int) and not isinstance(value, bool):
            return key
    return None


def _read_lineage(
    storage: optuna.storages.BaseStorage | None, trial_id: int, trial: optuna.Trial | FrozenTrial
) -> Lineage | None:
    """The lineage stored for ``trial_id`` (from the FrozenTrial itself without a storage)."""
    if storage is None:
        assert isinstance(trial, FrozenTrial)
        attrs = trial.system_attrs
    else:
        attrs = storage.get_trial_system_attrs(trial_id)
    data = attrs.get(LINEAGE_KEY)
    return None if data is None else Lineage.from_dict(data)


def _trial_by_number(storage: optuna.storages.BaseStorage, study_id: int, number: int) -> Any:
    return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id, number))


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

    Raises:
        TypeError: ``trial`` is neither an :class:`optuna.Trial` nor a FrozenTrial.
        ValueError: ``trial`` is not a trial of ``study``.
    """
    storage, trial_id, _ = _storage_and_id(trial, study)
    return _read_lineage(storage, trial_id, trial)


def parents(trial: optuna.Trial | FrozenTrial, study: Study | None = None) -> list[FrozenTrial]:
    """Return a trial's parent trials (finished trials of an earlier generation).

    Args:
        trial: A running :class:`optuna.Trial` (inside an objective) or a FrozenTrial.
        study: Required when ``trial`` is a FrozenTrial: the study it belongs to.

    Returns:
        The parents, in lineage order (the first is the primary parent); empty for trials of
        generation 0 and for trials no optuna-evo sampler handled.

    Raises:
        TypeError: ``trial`` is neither an :class:`optuna.Trial` nor a FrozenTrial.
        ValueError: ``study`` is missing for a FrozenTrial, or ``trial`` is not one of its
            trials.
    """
    storage, trial_id, study_id = _storage_and_id(trial, study)
    if storage is None or study_id is None:
        raise ValueError("`study` is required to read the parents of a FrozenTrial.")
    info = _read_lineage(storage, trial_id, trial)
    if info is None:
        return []
    # By number, not by the recorded storage ids: those belong to the storage the study was
    # created in (optuna.copy_study gives the trials new ids, and keeps their numbers).
    return [_trial_by_number(storage, study_id, n) for n in info.parent_numbers]


def settle_study_attr(study: Study, key: str, value: Any) -> Any:
    """Store a decision that every worker must share, and return the one the study holds.

    Optuna's storages have no compare-and-set, so workers that compute the decision at the
    same moment all write it. Each reads it back after a short pause, by which time a
    concurrent write has usually landed, and goes on with the stored value, not its own.
    """
    storage = study._storage
    storage.set_study_system_attr(study._study_id, key, value)
    if isinstance(storage, optuna.storages.InMemoryStorage):
        return value  # one process; the sampler's lock orders its threads
    time.sleep(_SETTLE_PAUSE_S)
    return storage.get_study_system_attrs(study._study_id).get(key, value)


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
    Optional hooks: :meth:`annotate` (extra per-trial decisions), :meth:`mutate_value` (how
    the duplicate cache mutates a gene again) and :meth:`draw_param`.

    With ``assist`` the whole configuration of a ``random``, ``child`` or ``mutant`` trial is
    drawn in ``before_trial`` instead (the same hooks, called for each of several candidate
    children), chosen by the surrogate, the duplicate cache and the stability guard, and
    stored as ``optuna_evo:candidate``; ``sample_independent`` then hands out its values.

    Each trial draws from its own random stream seeded by ``(seed, trial number)``: a run is
    reproducible for a given seed, and workers that share a seed still explore differently.

    Args:
        population_size: Finished trials per generation, >= 2.
        seed: Seed for the random streams.
        mirror_user_attrs: Also write generation, role and parents as user attrs so that
            optuna-dashboard shows them.
        assist: Predictor-assisted evolution (surrogate, duplicate cache, stability guard),
            see :class:`~optuna_evo.samplers.PredictorAssist`; ``None`` for none.
        architecture_space: The architecture genome whose ``arch_*`` params the sampler plans
            as a whole (see :meth:`inherit_architecture`); ``None`` for none.
        evolve_architecture: Whether re-mutation and the finite-space fallback may change the
            architecture (off for a fixed architecture).
    """

    EXTRA_KEYS: tuple[str, ...] = ()
    """System-attr keys that :meth:`annotate` writes."""

    MIRRORED_KEYS: tuple[str, ...] = ()
    """Those of :attr:`EXTRA_KEYS` also written as user attrs (optuna-dashboard shows only
    user attrs) when ``mirror_user_attrs`` is on."""

    def __init__(
        self,
        population_size: int,
        seed: int | None = None,
        mirror_user_attrs: bool = True,
        assist: PredictorAssist | None = None,
        architecture_space: ArchitectureSpace | None = None,
        evolve_architecture: bool = True,
    ) -> None:
        population_size = check_int("population_size", population_size, 2)
        seed = check_int("seed", seed, 0, 2**32 - 1, none_ok=True)  # numpy's seed range
        if assist is not None and not isinstance(assist, PredictorAssist):
            raise ValueError(
                f"`assist` must be a PredictorAssist or None, got {type(assist).__name__}."
            )
        super().__init__(population_size=population_size)
        self._assist = assist
        self._arch_space = architecture_space
        self._evolve_architecture = evolve_architecture
        self._rng = LazyRandomState(seed)
        self._base_seed: int | None = None
        self._mirror_user_attrs = check_bool("mirror_user_attrs", mirror_user_attrs)
        self._plans: dict[int, Plan] = {}
        # Candidate ids of a selection in progress, stored with its result (see
        # selection_candidates).
        self._considered: dict[tuple[int, int], list[int]] = {}
        # Weak keys: an entry dies with its storage, so a reused address never serves stale
        # trials of another study.
        self._parent_cache: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], list]] = (
            weakref.WeakKeyDictionary()
        )
        # Keys annotate() may write; subclasses list theirs so plans can be rebuilt anywhere.
        self._extra_keys: set[str] = set(self.EXTRA_KEYS)
        if architecture_space is not None:
            self._extra_keys.update((ARCHITECTURE_KEY, ARCH_MUTATION_KEY, ARCH_CROSSOVER_KEY))
        if assist is not None:
            self._extra_keys.update((CANDIDATE_KEY, ASSIST_KEY))
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

    def mutate_value(self, distribution: BaseDistribution, value: Any, rng: Any) -> Any:
        """Mutate one value (used to re-mutate duplicates); a fresh uniform draw by default."""
        return sample_uniform(distribution, rng)

    def draw_param(self, plan: Plan, name: str, distribution: BaseDistribution) -> Any:
        """The child's value of one parameter (before any pre-drawn configuration applies).

        Architecture genes come from the planned architecture; other parameters inherit from
        the parents that had them (:meth:`vary_param`) or are drawn uniformly.
        """
        space = self._arch_space
        if space is not None and space.is_param(name):
            arch = plan.extras.get(ARCHITECTURE_KEY)
            if arch is not None:
                value = space.param_value(Architecture.from_dict(arch), name)
                if value is not None and contains(distribution, value):
                    return value
        values = [
            p.params[name]
            for p in plan.parents
            if name in p.params and contains(distribution, p.params[name])
        ]
        if values:
            return self.vary_param(plan, distribution, values)
        return sample_uniform(distribution, plan.rng)

    def architecture_of(self, trial: FrozenTrial) -> Architecture | None:
        """A finished trial's architecture: the planned one, else rebuilt from its params."""
        stored = trial.system_attrs.get(ARCHITECTURE_KEY)
        if stored is not None:
            return Architecture.from_dict(stored)
        return None if self._arch_space is None else self._arch_space.from_params(trial.params)

    def inherit_architecture(
        self, info: Lineage, parents: list[FrozenTrial], rng: np.random.RandomState, prob: float
    ) -> dict[str, Any] | None:
        """Plan a child's architecture from its parents' (``None`` if the first has none).

        A ``child`` whose two parents have architectures gets their one-point crossover
        (:func:`~optuna_evo.operators.crossover.architecture_crossover`); then one
        architecture mutation happens with probability ``prob``. The result is projected into
        the space (:meth:`~optuna_evo.architecture.ArchitectureSpace.project`).

        Returns:
            Extras: ``optuna_evo:architecture`` and, when they happened,
            ``optuna_evo:arch_crossover`` (the cuts) and ``optuna_evo:arch_mutation``.
        """
        space = self._arch_space
        if space is None:
            return None
        # Projected first: a study resumed with another space (other input or output widths,
        # depth bounds) crosses parents that fit it.
        archs = [a if a is None else space.project(a) for a in map(self.architecture_of, parents)]
        if not archs or archs[0] is None:
            return None
        extras: dict[str, Any] = {}
        arch = archs[0]
        if info.role == "child" and len(archs) > 1 and archs[1] is not None:
            arch, cuts = architecture_crossover(archs[0], archs[1], rng)
            extras[ARCH_CROSSOVER_KEY] = list(cuts)
        if rng.rand() < prob:
            arch, op = space.mutate(arch, rng)
            extras[ARCH_MUTATION_KEY] = op
        extras[ARCHITECTURE_KEY] = space.project(arch).to_dict()
        return extras

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
        candidate = plan.extras.get(CANDIDATE_KEY) or {}
        if param_name in candidate:
            usable, value = _native(param_distribution, candidate[param_name])
            if usable:
                return value
        with self._lock:
            return self._drawn(param_name, param_distribution, plan)

    def _drawn(self, name: str, distribution: BaseDistribution, plan: Plan) -> Any:
        # Custom operators may return numpy scalars or stray outside: native, or a clear error.
        drawn = self.draw_param(plan, name, distribution)
        usable, value = _native(distribution, drawn)
        if not usable:
            raise ValueError(
                f"{type(self).__name__} drew {drawn!r} for parameter {name!r}, outside "
                f"{distribution}; a custom crossover or mutation must return a value inside "
                "the distribution it is given."
            )
        return value

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """Assign the trial's generation, role and parents, and record them in storage."""
        if len(study.directions) > 1:
            # Fail the trial just created, so that it is not left RUNNING.
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            self._check_single_objective(study)
        with self._lock:
            # A plan cached under this id may be another study's (ids repeat across storages).
            self._plans.pop(trial._trial_id, None)
        self._plan(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        """Drop the trial's cached plan (its lineage stays in storage).

        With the duplicate cache on, a finished trial's hash is rewritten from the params it
        actually used (they differ from the drawn configuration in conditional spaces). With an
        architecture space, so is an enqueued trial's architecture (its fixed params decide it).
        """
        with self._lock:
            self._plans.pop(trial._trial_id, None)
        info = trial.system_attrs.get(LINEAGE_KEY) or {}
        if self._arch_space is not None and info.get("role") == "enqueued" and state in _FINISHED:
            # The enqueued params, not the planned architecture, are what the trial ran; its
            # elites and children inherit this.
            ran = self._arch_space.from_params(trial.params)
            if ran is not None and trial.system_attrs.get(ARCHITECTURE_KEY) != ran.to_dict():
                study._storage.set_trial_system_attr(
                    trial._trial_id, ARCHITECTURE_KEY, ran.to_dict()
                )
        if self._assist is not None and self._assist.deduplicate and state in _FINISHED:
            actual = config_hash(trial.params)
            if trial.system_attrs.get(CONFIG_HASH_KEY) != actual:
                study._storage.set_trial_system_attr(trial._trial_id, CONFIG_HASH_KEY, actual)

    # -- BaseGASampler --------------------------------------------------------------------

    def get_trial_generation(self, study: Study, trial: FrozenTrial) -> int:
        """Return the trial's generation, assigning it if no worker has yet."""
        return self._plan(study, trial).lineage.generation

    def get_population(self, study: Study, generation: int) -> list[FrozenTrial]:
        """Return the finished (COMPLETE or PRUNED) trials of ``generation``.

        Generation 0 also holds the study's *prior* trials: finished trials that no sampler
        of this class handled (another sampler's, or added with ``study.add_trial``).
        """
        key = self._get_generation_key()
        return [
            t
            for t in study._get_trials(deepcopy=False, states=_FINISHED, use_cache=True)
            if t.system_attrs.get(key, 0 if generation == 0 else None) == generation
        ]

    # -- internals ------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        del state["_parent_cache"]
        state["_plans"] = {}
        state["_considered"] = {}
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
        prior = 0
        for t in reversed(study._get_trials(deepcopy=False, use_cache=True)):
            g = t.system_attrs.get(key)
            if g is None:
                prior += t.state in _FINISHED  # generation 0's (see get_population)
                continue
            if g > newest:
                newest = g
            elif g <= newest - 2:
                old_run += 1
                if old_run >= window:
                    break
                continue
            old_run = 0
            # A failed or enqueued trial takes no slot, so it never costs the generation an elite.
            if t.state != TrialState.FAIL and "fixed_params" not in t.system_attrs:
                assigned[g] = assigned.get(g, 0) + 1
            if t.state in _FINISHED:
                finished[g] = finished.get(g, 0) + 1
        if prior:
            finished[0] = finished.get(0, 0) + prior
        latest = max(finished, default=0)
        generation = latest if finished.get(latest, 0) < self._population_size else latest + 1
        return generation, assigned.get(generation, 0)

    def get_parent_population(self, study: Study, generation: int) -> list[FrozenTrial]:
        """Return generation ``generation``'s parent population (empty for generation 0).

        The first worker that needs it selects it (:meth:`select_parent`), stores the trial
        numbers in the study's system attrs and, after a short pause, reads them back: workers
        that selected at the same moment go on with the one stored value (the last write). The
        numbers are read from storage on every call, so a generation's parent population is
        the stored one everywhere; the trials themselves are cached per storage object.

        Numbers, not ids, identify the trials: ids are global to a storage and
        :func:`optuna.copy_study` gives the trials new ones. Optuna's ``{Class}:parent:{g}``
        key is kept up to date with the ids, for tools that read it.
        """
        if generation == 0:
            return []
        storage, study_id = study._storage, study._study_id
        attrs = storage.get_study_system_attrs(study_id)
        numbers = attrs.get(self._parent_numbers_key(generation))
        if numbers is None:
            numbers = self._numbers_of_stored_ids(study, generation, attrs)
        if numbers is None:
            selected = self.select_parent(study, generation)
            considered = self._considered.pop((study_id, generation), None)
            if considered is not None:
                storage.set_study_system_attr(
                    study_id, self._considered_key(generation), considered
                )
            numbers = settle_study_attr(
                study, self._parent_numbers_key(generation), [t.number for t in selected]
            )
        per_study = self._parent_cache.setdefault(storage, {})
        cache_key = (study_id, generation, tuple(numbers))
        cached = per_study.get(cache_key)
        if cached is None:
            cached = per_study[cache_key] = [
                _trial_by_number(storage, study_id, n) for n in numbers
            ]
            ids = [t._trial_id for t in cached]
            ids_key = self._get_parent_cache_key_prefix() + str(generation)
            if attrs.get(ids_key) != ids:
                storage.set_study_system_attr(study_id, ids_key, ids)
        return cached

    def _parent_numbers_key(self, generation: int) -> str:
        return f"{type(self).__name__}:parent_numbers:{generation}"

    def _numbers_of_stored_ids(
        self, study: Study, generation: int, attrs: dict[str, Any]
    ) -> list[int] | None:
        """A population stored by id only (a study begun before numbers were stored), as
        numbers, stored; ``None`` if there is none or its ids are not this study's trials
        (a copied study): then the population is selected again."""
        ids = attrs.get(self._get_parent_cache_key_prefix() + str(generation))
        if ids is None:
            return None
        storage, study_id = study._storage, study._study_id
        numbers = []
        for trial_id in ids:
            try:
                number = storage.get_trial_number_from_id(trial_id)
            except KeyError:  # no such id in this storage
                return None
            if not _is_trial_of(storage, study_id, number, trial_id):
                return None
            numbers.append(number)
        return settle_study_attr(study, self._parent_numbers_key(generation), numbers)

    def selection_candidates(self, study: Study, generation: int) -> list[FrozenTrial]:
        """The trials generation ``generation``'s selection ranks ((μ+λ)).

        These are the finished trials of the previous generation, that generation's parent
        population, and the stragglers: trials of the generation before it that finished only
        after that selection was made (concurrent workers leave some at every generation's
        boundary). Their numbers are recorded as ``{Class}:considered_numbers:{generation}``
        (numbers, not ids: :func:`optuna.copy_study` changes the ids). A trial that an
        elite among them continued is left out: the elite is that agent now (trained further,
        or evaluated again), and both would let one agent fill two places.
        """
        candidates = {t._trial_id: t for t in self.get_population(study, generation - 1)}
        for t in self.get_parent_population(study, generation - 1):
            candidates.setdefault(t._trial_id, t)
        if generation >= 2:
            attrs = study._storage.get_study_system_attrs(study._study_id)
            numbers = attrs.get(self._considered_key(generation - 1))
            # Studies begun before numbers were stored hold the ids.
            ids = attrs.get(f"{type(self).__name__}:considered:{generation - 1}")
            if numbers is not None or ids is not None:
                seen_numbers, seen_ids = set(numbers or ()), set(ids or ())
                for t in self.get_population(study, generation - 2):
                    seen = (
                        t.number in seen_numbers
                        if numbers is not None
                        else t._trial_id in seen_ids
                    )
                    if not seen:
                        candidates.setdefault(t._trial_id, t)
        self._considered[(study._study_id, generation)] = [t.number for t in candidates.values()]
        # Only a COMPLETE continuation stands for its agent: a pruned one ranks below every
        # COMPLETE trial and would lose the agent (the best one, for an elite).
        continued = {
            number
            for t in candidates.values()
            if t.state == TrialState.COMPLETE
            and t.value is not None
            and not math.isnan(t.value)
            and (info := t.system_attrs.get(LINEAGE_KEY))
            and info.get("role") == "elite"
            for number in info.get("parent_numbers", ())
        }
        return [t for t in candidates.values() if t.number not in continued]

    def _considered_key(self, generation: int) -> str:
        return f"{type(self).__name__}:considered_numbers:{generation}"

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
            found = [_trial_by_number(storage, study._study_id, n) for n in info.parent_numbers]
            return Plan(info, found, rng, extras)

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
                while role == "elite" and not self._claim_elite(study, trial, generation, chosen):
                    slot += 1  # a concurrent trial copies this elite: take the next slot
                    role, chosen = self.make_child(study, generation, slot, parent_population, rng)
            else:
                role = "random"
        info = Lineage(
            generation=generation,
            role=role,
            parent_ids=tuple(p._trial_id for p in chosen),
            parent_numbers=tuple(p.number for p in chosen),
        )
        if self._assist is not None and role in _ASSISTED_ROLES:
            extras = self._assisted_extras(study, trial, info, chosen, parent_population, rng)
        else:
            extras = self.annotate(study, info, chosen, parent_population, rng)
            if self._assist is not None and self._assist.deduplicate and role == "enqueued":
                # Visible as taken while it runs; rewritten from its params when it finishes.
                fixed = attrs["fixed_params"]
                storage.set_trial_system_attr(trial._trial_id, CONFIG_HASH_KEY, config_hash(fixed))
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
            mirrored = self.MIRRORED_KEYS + ((ASSIST_KEY,) if self._assist is not None else ())
            for key in mirrored:
                if key in extras:
                    storage.set_trial_user_attr(trial._trial_id, key, extras[key])
        return Plan(info, chosen, rng, extras)

    def _claim_elite(
        self, study: Study, trial: FrozenTrial, generation: int, chosen: list[FrozenTrial]
    ) -> bool:
        # Write, then read the other trials' claims (as duplicates.claim does for hashes): of
        # two trials claiming one elite, the later reader sees the other, so both never keep
        # it. Both may back off; they release, wait a random moment and try once more.
        storage = study._storage
        # The parent by number (optuna.copy_study changes ids, keeps numbers), and the class:
        # generations are numbered per class, so another sampler's elite of "generation 1"
        # (in a study this one continues) is no rival.
        value: list[Any] = [generation, chosen[0].number, type(self).__name__]
        legacy = [generation, chosen[0]._trial_id]
        generation_key = self._get_generation_key()

        def rival_claim(t: FrozenTrial) -> bool:
            claim = t.system_attrs.get(ELITE_KEY)
            if claim == value:
                return True
            # A claim stored as [g, parent id] by an earlier release: this class's if its
            # trial is.
            return claim == legacy and t.system_attrs.get(generation_key) == generation

        rng = np.random.RandomState([trial.number, generation])
        for _ in range(_ELITE_ATTEMPTS):
            storage.set_trial_system_attr(trial._trial_id, ELITE_KEY, value)
            rivals = [
                t
                for t in storage.get_all_trials(study._study_id, deepcopy=False)
                if t._trial_id != trial._trial_id and t.state != TrialState.FAIL and rival_claim(t)
            ]
            if not rivals:
                return True
            storage.set_trial_system_attr(trial._trial_id, ELITE_KEY, None)
            if any(LINEAGE_KEY in t.system_attrs for t in rivals):
                return False  # a rival is past planning: the elite is its
            time.sleep(float(rng.uniform(0.0, 0.02)))
        return False

    # -- predictor-assisted children (see PredictorAssist) ---------------------------------

    def _assisted_extras(
        self,
        study: Study,
        trial: FrozenTrial,
        info: Lineage,
        parents: list[FrozenTrial],
        parent_population: list[FrozenTrial],
        rng: np.random.RandomState,
    ) -> dict[str, Any]:
        assist = self._assist
        assert assist is not None
        storage = study._storage
        # Fresh, not the per-ask cache: other workers' claims must be visible.
        trials = storage.get_all_trials(study._study_id, deepcopy=False)
        base = _parameter_space(parents or [t for t in trials if t.params])
        if not base:  # nothing to draw from yet: the params are sampled as they are suggested
            return self.annotate(study, info, parents, parent_population, rng)

        def propose() -> Candidate:
            extras = self.annotate(study, info, parents, parent_population, rng)
            return self._complete(Candidate(extras, {}, dict(base)), rng, draw=(info, parents))

        encoder_space = dict(base)
        if self._arch_space is not None:
            encoder_space.update(self._arch_space.param_distributions(self._arch_space.max_layers))
        scorer = fit_scorer(assist, trials, encoder_space, study.direction, rng)
        reference = best_parent_value(parents, study.direction)
        guard = assist.stability_threshold is not None and scorer is not None
        guard = guard and reference is not None
        dedup = assist.deduplicate
        taken = taken_hashes(trials, trial._trial_id) if dedup else set()
        stats: dict[str, Any] = {
            "candidates": assist.n_candidates,
            "predicted": None,
            "std": None,
            "explored": False,
            "guard_checks": 0,
            "rejected": 0,
            "duplicates": 0,
            "races": 0,
            "fallback": None,
        }

        def claimed(candidate: Candidate) -> bool:
            # Write, then read the other trials' hashes (see ``claim``); ``taken`` is refreshed.
            nonlocal taken
            held, taken = claim(storage, study._study_id, trial._trial_id, candidate.hash)
            if not held:
                stats["races"] += 1
                # Both claimants may have backed off: wait a random moment before retrying.
                time.sleep(float(rng.uniform(0.0, 0.02)))
            return held

        pool = [propose() for _ in range(assist.n_candidates)]
        chosen: Candidate | None = None
        for _ in range(assist.max_retries + 1):
            if dedup:
                for i, c in enumerate(pool):
                    if c.hash in taken:
                        pool[i] = self._remutate(c, rng)
                        stats["duplicates"] += 1
            fresh = [c for c in pool if c.hash not in taken]
            if not fresh:
                continue
            candidate, explored = _choose(fresh, scorer, assist.exploration_rate, rng)
            if guard:
                threshold = assist.stability_threshold
                assert scorer is not None and reference is not None and threshold is not None
                stats["guard_checks"] += 1
                if scorer.worse_by(candidate, reference) > threshold:
                    stats["rejected"] += 1
                    pool[pool.index(candidate)] = propose()
                    continue
            if dedup and not claimed(candidate):
                continue
            chosen, stats["explored"] = candidate, explored
            break
        # Retries are spent. The fallback's pick is claimed like any other: two workers that
        # reach it together in a nearly exhausted space would otherwise pick one configuration.
        # Each lost race adds the winner's hash to ``taken``, so this ends with a held claim or
        # with an exhausted space, where a duplicate is accepted (and written, unchecked).
        for _ in range(_FALLBACK_CLAIMS):
            if chosen is not None:
                break
            candidate = self._fallback(pool, taken, scorer, stats, rng, trial.number)
            if dedup and stats["fallback"] == "accepted_duplicate":
                storage.set_trial_system_attr(trial._trial_id, CONFIG_HASH_KEY, candidate.hash)
            elif dedup and not claimed(candidate):
                continue
            chosen = candidate
        if chosen is None:  # every claim lost: keep the last one, whose hash is written
            _logger.warning(
                f"Trial {trial.number}: lost {stats['races']} races for an untaken "
                "configuration; evaluating the last one claimed, which may be a duplicate."
            )
            chosen = candidate
        if scorer is not None:
            mean, std = scorer.predict([chosen])
            stats["predicted"], stats["std"] = float(mean[0]), float(std[0])
        if stats["rejected"]:
            self._log_guard(trials, trial.number, stats, assist.stability_threshold)
        return {**chosen.extras, CANDIDATE_KEY: chosen.params, ASSIST_KEY: stats}

    def _complete(
        self,
        candidate: Candidate,
        rng: np.random.RandomState,
        draw: tuple[Lineage, list[FrozenTrial]] | None = None,
    ) -> Candidate:
        # With ``draw`` (lineage, parents): draw the whole configuration as the plan would.
        # Where the configuration holds architecture genes, make them the genes of exactly one
        # architecture (the planned one when drawing, else the one its depth gene says) and
        # record that architecture. Then hash.
        extras, params, dists = candidate.extras, dict(candidate.params), candidate.distributions
        space = self._arch_space
        arch_dict = extras.get(ARCHITECTURE_KEY)
        sampled_depth = None
        if space is not None and any(space.is_param(k) for k in dists):
            n = params.get(N_HIDDEN_PARAM)
            if draw is not None and arch_dict is not None:
                n = Architecture.from_dict(arch_dict).n_hidden
            elif not isinstance(n, int):
                n = sampled_depth = sample_uniform(
                    space.param_distributions(0)[N_HIDDEN_PARAM], rng
                )
            dists = {k: d for k, d in dists.items() if not space.is_param(k)}
            dists.update(space.param_distributions(n))
        if draw is not None:
            plan = Plan(draw[0], draw[1], rng, extras)
            params = {name: self._drawn(name, d, plan) for name, d in dists.items()}
            if sampled_depth is not None:  # the depth whose genes were just drawn, not another
                params[N_HIDDEN_PARAM] = sampled_depth
        if space is not None and N_HIDDEN_PARAM in params:
            arch = space.from_params({k: v for k, v in params.items() if space.is_param(k)})
            if arch is not None:
                if arch_dict is not None:  # keep what the params cannot express
                    arch = arch.replace(dropout=Architecture.from_dict(arch_dict).dropout)
                extras = {**extras, ARCHITECTURE_KEY: arch.to_dict()}
        return Candidate(extras, params, dists, config_hash(params))

    def _remutate(self, candidate: Candidate, rng: np.random.RandomState) -> Candidate:
        # Mutate one more gene; the architecture (when it may evolve) counts as one gene.
        space = self._arch_space
        genes = [
            n
            for n, d in candidate.distributions.items()
            if not d.single() and not (space is not None and space.is_param(n))
        ]
        arch_dict = candidate.extras.get(ARCHITECTURE_KEY)
        if space is not None and arch_dict is not None and self._evolve_architecture:
            genes.append(_ARCH_GENE)
        if not genes:
            return candidate
        gene = genes[int(rng.randint(len(genes)))]
        params, extras = dict(candidate.params), dict(candidate.extras)
        if gene == _ARCH_GENE:
            assert space is not None and arch_dict is not None
            arch, op = space.mutate(Architecture.from_dict(arch_dict), rng)
            arch = space.project(arch)
            params = {k: v for k, v in params.items() if not space.is_param(k)}
            params.update(space.to_params(arch))
            previous = extras.get(ARCH_MUTATION_KEY)
            extras[ARCH_MUTATION_KEY] = f"{previous}+{op}" if previous else op
            extras[ARCHITECTURE_KEY] = arch.to_dict()
        else:
            dist = candidate.distributions[gene]
            for _ in range(8):  # a mutation may land on the same value; try a few times
                value = self.mutate_value(dist, params[gene], rng)
                if value != params[gene]:
                    break
            params[gene] = value
        return self._complete(Candidate(extras, params, candidate.distributions), rng)

    def _fallback(
        self,
        pool: list[Candidate],
        taken: set[str],
        scorer: Scorer | None,
        stats: dict[str, Any],
        rng: np.random.RandomState,
        number: int,
    ) -> Candidate:
        # Retries are spent: an untaken candidate is accepted despite the guard; else the
        # nearest untaken configuration of a finite space; else a duplicate.
        fresh = [c for c in pool if c.hash not in taken]
        if fresh:
            if scorer is not None:
                fresh = [fresh[scorer.best(fresh, optimistic=False)]]
            stats["fallback"] = "accepted_after_guard"
            _logger.warning(
                f"Trial {number}: every child was rejected by the stability guard "
                f"{stats['rejected']} times; accepting the best predicted one."
            )
            return fresh[0]
        base = pool[0]
        space = self._arch_space
        frozen: set[str] = set()
        if space is not None:
            frozen = {k for k in base.params if space.is_param(k)}
            if self._evolve_architecture:
                frozen = {N_HIDDEN_PARAM}
        params = nearest_untaken(base.params, base.distributions, taken, rng, frozen)
        if params is not None:
            stats["fallback"] = "nearest_untaken"
            return self._complete(Candidate(dict(base.extras), params, base.distributions), rng)
        stats["fallback"] = "accepted_duplicate"
        _logger.warning(
            f"Trial {number}: no untaken configuration found after {stats['duplicates']} "
            "re-mutations (the space may be exhausted); evaluating a duplicate."
        )
        return base

    def _log_guard(
        self, trials: list[FrozenTrial], number: int, stats: dict[str, Any], threshold: Any
    ) -> None:
        records = [t.system_attrs.get(ASSIST_KEY) for t in trials if t.number != number]
        records = [r for r in records if isinstance(r, dict)] + [stats]
        checks = sum(int(r.get("guard_checks", 0)) for r in records)
        rejected = sum(int(r.get("rejected", 0)) for r in records)
        _logger.info(
            f"Trial {number}: the stability guard rejected {stats['rejected']} of "
            f"{stats['guard_checks']} children predicted worse than their parent by more than "
            f"{threshold}; {rejected} of {checks} ({100.0 * rejected / checks:.1f}%) in this "
            "study so far."
        )


def _parameter_space(trials: Sequence[FrozenTrial]) -> dict[str, BaseDistribution]:
    # The parameters these trials used; the first trial's distribution wins a conflict.
    space: dict[str, BaseDistribution] = {}
    for t in reversed(trials):
        space.update(t.distributions)
    return space


def _choose(
    pool: list[Candidate], scorer: Scorer | None, exploration_rate: float, rng: Any
) -> tuple[Candidate, bool]:
    if scorer is None or len(pool) == 1:
        return pool[0], False
    if rng.rand() < exploration_rate:
        return pool[int(rng.randint(len(pool)))], True
    return pool[scorer.best(pool)], False


def _native(distribution: BaseDistribution, value: Any) -> tuple[bool, Any]:
    # A pre-drawn value (read back from JSON) or an operator's result as the native type of
    # ``distribution``; False when the distribution does not hold it. (None can be a choice.)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(distribution, optuna.distributions.FloatDistribution):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False, None
        value = float(value)
    elif isinstance(distribution, optuna.distributions.IntDistribution):
        if isinstance(value, bool) or not isinstance(value, int):
            return False, None
    return contains(distribution, value), value
