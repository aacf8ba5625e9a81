"""PopulationSampler as an extension point: a minimal subclass and the lineage it writes.

The subclass implements only the three documented hooks (``select_parent``, ``make_child``,
``vary_param``), each deterministic, so every trial's generation, role, parents and params
can be predicted from the study alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evo_testing import assert_consistent_lineage
import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import FloatDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

import optuna_evo
from optuna_evo.samplers import PredictorAssist
from optuna_evo.samplers._population import Plan
from optuna_evo.samplers._population import PopulationSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)

POPULATION = 4
N_GENERATIONS = 5


def _ranked(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    # Minimising; ties by trial number so the order is a pure function of the trials.
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    return sorted(done, key=lambda t: (t.value, t.number))


class PairSampler(PopulationSampler):
    """The best two of (μ+λ) breed. Slot 0 copies the best (``elite``), odd slots mutate it
    (``mutant``), the other slots average the pair (``child``)."""

    def select_parent(self, study: Study, generation: int) -> list[FrozenTrial]:
        return _ranked(self.selection_candidates(study, generation))[:2]

    def make_child(
        self,
        study: Study,
        generation: int,
        slot: int,
        parent_population: list[FrozenTrial],
        rng: np.random.RandomState,
    ) -> tuple[str, list[FrozenTrial]]:
        ranked = _ranked(parent_population)
        if slot == 0:
            return "elite", ranked[:1]
        if slot % 2 == 1 or len(ranked) < 2:
            return "mutant", ranked[:1]
        return "child", ranked[:2]

    def vary_param(self, plan: Plan, distribution: BaseDistribution, values: Sequence[Any]) -> Any:
        assert isinstance(distribution, FloatDistribution)
        role = plan.lineage.role
        if role == "elite":
            return values[0]
        if role == "child":
            return (values[0] + values[1]) / 2.0
        return (values[0] + distribution.low) / 2.0  # mutant: halfway to the low bound


def _role(study: optuna.Study, trial: FrozenTrial) -> str:
    info = optuna_evo.lineage(trial, study)
    assert info is not None
    return info.role


def _parent_numbers(study: optuna.Study, trial: FrozenTrial) -> tuple[int, ...]:
    info = optuna_evo.lineage(trial, study)
    assert info is not None
    return info.parent_numbers


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 10.0)
    return (x - 3.0) ** 2


def _expected_x(role: str, parents: list[FrozenTrial]) -> float:
    xs = [p.params["x"] for p in parents]
    return {"elite": xs[0], "child": sum(xs) / 2.0, "mutant": xs[0] / 2.0}[role]


@pytest.mark.parametrize(
    "assist",
    [None, PredictorAssist(n_candidates=1, surrogate=None, deduplicate=False)],
    ids=["plain", "assisted"],
)
def test_subclass_hooks_decide_roles_parents_and_values(assist: PredictorAssist | None) -> None:
    # With ``assist`` the base class draws the whole configuration in before_trial, through
    # the same hooks.
    sampler = PairSampler(population_size=POPULATION, seed=0, assist=assist)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective, n_trials=POPULATION * N_GENERATIONS)
    assert_consistent_lineage(study, min_generations=N_GENERATIONS)
    trials = study.get_trials(deepcopy=False)
    by_id = {t._trial_id: t for t in trials}
    attrs = study._storage.get_study_system_attrs(study._study_id)
    roles = []
    for t in trials:
        # One worker, trials told in order: generation g is trials 4g..4g+3, in slot order.
        generation, slot = divmod(t.number, POPULATION)
        info = optuna_evo.lineage(t, study)
        assert info is not None and info.generation == generation
        assert t.system_attrs["PairSampler:generation"] == generation  # the subclass's own key
        assert t.user_attrs["optuna_evo:role"] == info.role
        assert t.user_attrs["optuna_evo:parents"] == list(info.parent_numbers)
        parents = optuna_evo.parents(t, study)
        assert [p._trial_id for p in parents] == list(info.parent_ids)
        roles.append(info.role)
        if generation == 0:
            assert info.role == "random" and not parents
            continue
        # The stored parent population is select_parent's: the best two of the previous
        # generation and its own parents, less the agents an elite among them continued.
        stored = [by_id[i] for i in attrs[f"PairSampler:parent:{generation}"]]
        previous = [u for u in trials if u.number // POPULATION == generation - 1]
        if generation >= 2:
            previous += [by_id[i] for i in attrs[f"PairSampler:parent:{generation - 1}"]]
        continued = {
            n for u in previous if _role(study, u) == "elite" for n in _parent_numbers(study, u)
        }
        kept = {u._trial_id: u for u in previous if u.number not in continued}
        best = _ranked(list(kept.values()))[:2]
        assert len({p.params["x"] for p in best}) == len(best)  # two agents, not one twice
        assert stored == best
        # make_child's role and parents for the slot, and vary_param's value.
        expected_role = "elite" if slot == 0 else "mutant" if slot % 2 else "child"
        assert info.role == expected_role
        assert parents == (best if expected_role == "child" else best[:1])
        assert t.params["x"] == pytest.approx(_expected_x(info.role, parents), abs=1e-12)
    assert roles.count("elite") == roles.count("child") == N_GENERATIONS - 1
    assert roles.count("mutant") == 2 * (N_GENERATIONS - 1)


def test_a_subclass_must_implement_every_hook() -> None:
    class NoVary(PopulationSampler):
        select_parent = PairSampler.select_parent
        make_child = PairSampler.make_child

    with pytest.raises(TypeError, match="vary_param"):
        NoVary(population_size=2)  # type: ignore[abstract]
