"""Tests of the evolution plots and of saving them for optuna-dashboard."""

from __future__ import annotations

from collections.abc import Callable
import importlib.util
import math
from typing import Any

import optuna
from optuna.trial import TrialState
import pytest

import optuna_evo
from optuna_evo.predictors.population import stored_female_generations
from optuna_evo.visualization import plot_genealogy
from optuna_evo.visualization import plot_generations
from optuna_evo.visualization import plot_predictor_accuracy
from optuna_evo.visualization import save_to_dashboard
from optuna_evo.visualization._dashboard import GENEALOGY_ID
from optuna_evo.visualization._dashboard import GENERATIONS_ID

SAMPLERS: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
    "genetic": lambda: optuna_evo.GeneticSampler(population_size=4, seed=1),
    "mage": lambda: optuna_evo.MAGESampler(population_size=4, n_elites=1, seed=1),
    "gender": lambda: optuna_evo.GenderSampler(
        population_size=4, n_top_males=2, n_top_females=2, seed=1
    ),
}


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -3.0, 3.0)
    k = trial.suggest_int("k", 0, 4)
    for step in range(3):
        trial.report(x**2 + k + 1.0 / (step + 1), step)
    if k == 4:  # some trials end PRUNED: they have a generation but no value
        raise optuna.TrialPruned()
    return x**2 + k


def _study(sampler: optuna.samplers.BaseSampler, n_trials: int = 16) -> optuna.Study:
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective, n_trials=n_trials)
    return study


def _positions(study: optuna.Study) -> dict[int, tuple[int, int]]:
    # Expected layout, computed independently: by generation, then trial number.
    by_generation: dict[int, list[int]] = {}
    for t in study.trials:
        info = optuna_evo.lineage(t, study)
        assert info is not None
        by_generation.setdefault(info.generation, []).append(t.number)
    return {
        n: (g, i) for g, numbers in by_generation.items() for i, n in enumerate(sorted(numbers))
    }


def _segments(trace: Any) -> set[tuple[Any, ...]]:
    xs, ys = list(trace.x), list(trace.y)
    assert len(xs) % 3 == 0 and xs[2::3] == [None] * (len(xs) // 3)
    return {(xs[i], ys[i], xs[i + 1], ys[i + 1]) for i in range(0, len(xs), 3)}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_genealogy_nodes_and_edges_follow_the_lineage(name: str) -> None:
    study = _study(SAMPLERS[name]())
    figure = plot_genealogy(study)
    positions = _positions(study)

    edges, *markers = figure.data
    assert edges.mode == "lines"
    expected = set()
    n_links = 0
    for t in study.trials:
        info = optuna_evo.lineage(t, study)
        assert info is not None
        for parent in info.parent_numbers:
            n_links += 1
            expected.add((*positions[parent], *positions[t.number]))
    assert n_links > 0, "a 16-trial study of population 4 has children"
    assert _segments(edges) == expected
    assert len(edges.x) == 3 * n_links  # one segment per parent link, duplicates included

    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    others = [t for t in study.trials if t.state != TrialState.COMPLETE]
    valued = markers[0]
    assert len(valued.x) == len(complete)
    assert list(valued.marker.color) == pytest.approx([t.value for t in complete])
    assert {(x, y) for x, y in zip(valued.x, valued.y)} == {positions[t.number] for t in complete}
    if others:
        assert len(markers) == 2 and len(markers[1].x) == len(others)
        assert all("PRUNED" in text for text in markers[1].text)
    else:
        assert len(markers) == 1
    child = next(t for t in complete if optuna_evo.lineage(t, study).parent_numbers)
    text = valued.text[complete.index(child)]
    info = optuna_evo.lineage(child, study)
    assert f"Trial {child.number} " in text and f"Role {info.role}" in text
    assert "Parents " + ", ".join(map(str, info.parent_numbers)) in text
    assert "x " in text and "k " in text


def test_genealogy_draws_prior_parents_in_generation_0() -> None:
    earlier = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    earlier.optimize(lambda t: t.suggest_float("x", -3.0, 3.0) ** 2, n_trials=6)
    study = optuna.create_study(sampler=SAMPLERS["genetic"]())
    study.add_trials(earlier.trials)  # 6 prior trials: the sampler starts at generation 1
    study.optimize(lambda t: t.suggest_float("x", -3.0, 3.0) ** 2, n_trials=4)
    links = {t.number: optuna_evo.lineage(t, study).parent_numbers for t in study.trials[6:]}
    used = sorted({n for numbers in links.values() for n in numbers})
    assert used and max(used) < 6
    edges, valued = plot_genealogy(study).data
    # The prior parents stack at generation 0 in number order, the children at generation 1.
    position = {n: (0, i) for i, n in enumerate(used)}
    position.update({t.number: (1, i) for i, t in enumerate(study.trials[6:])})
    expected = {(*position[n], *position[c]) for c, numbers in links.items() for n in numbers}
    assert _segments(edges) == expected
    assert len(valued.x) == len(used) + 4
    texts = dict(zip(valued.text, zip(valued.x, valued.y)))
    prior = [text for text in texts if "Role prior" in text]
    assert sorted(texts[text] for text in prior) == [(0, i) for i in range(len(used))]


def test_a_study_continued_by_another_sampler_class_is_drawn_in_order() -> None:
    # Each class numbers its generations from 0 and counts the trials it found as its
    # generation 0: the later class's generations are drawn after the earlier one's last.
    study = optuna.create_study(sampler=optuna_evo.GeneticSampler(population_size=4, seed=0))
    study.optimize(_objective, n_trials=12)
    ga_last = max(optuna_evo.lineage(t, study).generation for t in study.trials)
    study.sampler = optuna_evo.MAGESampler(population_size=4, seed=0)
    study.optimize(_objective, n_trials=8)
    drawn = {
        t.number: optuna_evo.lineage(t, study).generation + (ga_last if t.number >= 12 else 0)
        for t in study.trials
    }
    assert {g for n, g in drawn.items() if n >= 12} == {ga_last + 1, ga_last + 2}
    edges, *markers = plot_genealogy(study).data
    segments = _segments(edges)
    assert segments and all(x0 < x1 for x0, _, x1, _ in segments)
    assert {x1 for _, _, x1, _ in segments} == set(drawn.values()) - {0}
    texts = [text for trace in markers for text in trace.text]
    shifted = [text for text in texts if "of its sampler)" in text]
    assert len(shifted) == sum(1 for n in drawn if n >= 12)
    boxes = [b for b in plot_generations(study).data if b.type == "box"]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert sorted(set(drawn.values())) == [b.x[0] for b in boxes]
    assert sum(len(b.y) for b in boxes) == len(complete)


def test_samplers_running_side_by_side_keep_their_own_generations() -> None:
    # Two classes interleaved on one storage: no order of eras exists, so no class is
    # shifted (shifting one would draw the other's children left of their parents).
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(storage=storage, study_name="s")
    samplers = [
        optuna_evo.GeneticSampler(population_size=4, n_elites=1, seed=0),
        optuna_evo.MAGESampler(population_size=4, n_elites=1, seed=0),
    ]
    studies = [optuna.load_study(study_name="s", storage=storage, sampler=s) for s in samplers]
    for _ in range(8):
        for study in studies:
            study.optimize(_objective, n_trials=1)
    study = studies[0]
    edges, *markers = plot_genealogy(study).data
    drawn = {t.number: optuna_evo.lineage(t, study).generation for t in study.trials}
    positions = {(x, y) for trace in markers for x, y in zip(trace.x, trace.y)}
    assert {x for x, _ in positions} == set(drawn.values())
    assert all(x0 <= x1 for x0, _, x1, _ in _segments(edges))


def test_optuna_genetic_samplers_count_no_prior_trials() -> None:
    # NSGA-II does not count the trials it found as its generation 0: neither does the plot.
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(_objective, n_trials=3)
    study.sampler = optuna.samplers.NSGAIISampler(population_size=4, seed=0)
    study.optimize(_objective, n_trials=5)
    own = [
        t.number
        for t in study.trials
        if t.state == TrialState.COMPLETE and t.system_attrs.get("NSGAIISampler:generation") == 0
    ]
    box_0 = plot_generations(study).data[0]
    assert own and sorted(int(text.split()[1]) for text in box_0.text) == own


def test_generations_put_every_prior_trial_in_generation_0() -> None:
    earlier = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    earlier.optimize(_objective, n_trials=6)
    study = optuna.create_study(sampler=SAMPLERS["genetic"]())
    study.add_trials(earlier.trials)
    study.optimize(_objective, n_trials=4)
    box_0, box_1, _ = plot_generations(study).data
    prior = [t.value for t in earlier.trials if t.state == TrialState.COMPLETE]
    assert set(box_0.x) == {0} and sorted(box_0.y) == pytest.approx(sorted(prior))
    assert set(box_1.x) == {1}


def test_genealogy_has_pruned_trials_in_grey() -> None:
    study = _study(SAMPLERS["genetic"](), n_trials=24)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, "k == 4 is sampled within 24 trials for this seed"
    grey = plot_genealogy(study).data[2]
    assert grey.marker.color == "#cccccc" and len(grey.x) == len(pruned)


def test_genealogy_mage_elites_link_to_an_earlier_agent() -> None:
    study = _study(SAMPLERS["mage"]())
    positions = _positions(study)
    segments = _segments(plot_genealogy(study).data[0])
    elites = [t for t in study.trials if optuna_evo.lineage(t, study).role == "elite"]
    assert elites
    for t in elites:
        (parent,) = optuna_evo.lineage(t, study).parent_numbers
        assert (*positions[parent], *positions[t.number]) in segments
        assert positions[parent][0] < positions[t.number][0]


def test_genealogy_target_and_target_name() -> None:
    study = _study(SAMPLERS["genetic"]())
    figure = plot_genealogy(study, target=lambda t: t.params["x"], target_name="x value")
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert list(figure.data[1].marker.color) == pytest.approx([t.params["x"] for t in complete])
    assert figure.data[1].marker.colorbar.title.text == "x value"
    assert "x value " in figure.data[1].text[0]


@pytest.mark.parametrize("plot", [plot_genealogy, plot_generations])
def test_multi_objective_needs_a_target(plot: Callable[..., Any]) -> None:
    study = optuna.create_study(
        directions=["minimize", "minimize"],
        sampler=optuna.samplers.NSGAIISampler(population_size=4, seed=0),
    )
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), 12)
    with pytest.raises(ValueError, match="target"):
        plot(study)
    # With a target, NSGA-II's stored generations are plotted (it records no parents).
    figure = plot(study, target=lambda t: t.values[0])
    assert figure.data
    if plot is plot_genealogy:
        assert list(figure.data[0].x) == [] and len(figure.data[1].x) == 12
        assert sorted(set(figure.data[1].x)) == [0, 1, 2]
    else:  # no "best" line: a target has no direction in a multi-objective study
        assert [tr.type for tr in figure.data] == ["box"] * 3


@pytest.mark.parametrize("plot", [plot_genealogy, plot_generations])
def test_empty_and_non_evolutionary_studies_give_an_empty_figure(
    plot: Callable[..., Any],
) -> None:
    empty = plot(optuna.create_study())
    assert empty.data == ()
    assert empty.layout.annotations[0].text == "There are no trials to plot."
    tpe = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    tpe.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    figure = plot(tpe)
    assert figure.data == () and "optuna-evo sampler" in figure.layout.annotations[0].text


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_generations_one_box_per_generation_and_best_line(direction: str) -> None:
    study = optuna.create_study(
        direction=direction, sampler=optuna_evo.GeneticSampler(population_size=4, seed=3)
    )
    study.optimize(_objective, n_trials=20)
    values: dict[int, list[float]] = {}
    for t in study.trials:
        if t.state == TrialState.COMPLETE:
            values.setdefault(optuna_evo.lineage(t, study).generation, []).append(t.value)
    figure = plot_generations(study)
    *boxes, best = figure.data
    assert [b.type for b in boxes] == ["box"] * len(values)
    assert [b.name for b in boxes] == [f"Generation {g}" for g in sorted(values)]
    for box, g in zip(boxes, sorted(values)):
        assert set(box.x) == {g}
        assert sorted(box.y) == pytest.approx(sorted(values[g]))
        assert box.boxpoints == "all"
    pick = min if direction == "minimize" else max
    assert best.name == "Best in generation"
    assert list(best.x) == sorted(values)
    assert list(best.y) == pytest.approx([pick(values[g]) for g in sorted(values)])


def test_generations_best_line_joins_feasible_values_only() -> None:
    study = optuna.create_study(sampler=optuna_evo.GeneticSampler(population_size=4, seed=0))

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        # Generation 0 is wholly infeasible; later, values below 0.3 are.
        bound = 2.0 if trial.number < 4 else 0.3
        trial.set_constraint("c", bound - x)
        return x

    study.optimize(objective, n_trials=16)
    figure = plot_generations(study)
    best = figure.data[-1]
    feasible: dict[int, list[float]] = {}
    for t in study.trials:
        g = optuna_evo.lineage(t, study).generation
        feasible.setdefault(g, [])
        if t.number >= 4 and t.value >= 0.3:
            feasible[g].append(t.value)
    expected = [min(feasible[g]) if feasible[g] else None for g in sorted(feasible)]
    assert expected[0] is None and any(v is not None for v in expected)
    assert best.name == "Best in generation"
    assert list(best.y) == expected
    texts = [text for box in figure.data[:-1] for text in box.text]
    assert sum(text.endswith("(infeasible)") for text in texts) == sum(
        t.params["x"] < (2.0 if t.number < 4 else 0.3) for t in study.trials
    )


def test_generations_skips_failed_and_nan_trials() -> None:
    study = optuna.create_study(sampler=optuna_evo.GeneticSampler(population_size=2, seed=0))

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        return math.nan if trial.number == 1 else x

    study.optimize(objective, n_trials=4)
    figure = plot_generations(study)
    assert sum(len(b.y) for b in figure.data if b.type == "box") == 3


@pytest.mark.skipif(
    importlib.util.find_spec("optuna_dashboard") is None, reason="optuna-dashboard missing"
)
def test_save_to_dashboard_replaces_its_figures() -> None:
    from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

    study = _study(SAMPLERS["genetic"](), n_trials=8)
    assert save_to_dashboard(study) == [GENEALOGY_ID, GENERATIONS_ID]
    study.optimize(_objective, n_trials=4)
    save_to_dashboard(study)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    graphs = get_plotly_graph_objects(attrs)
    assert sorted(graphs) == sorted([GENEALOGY_ID, GENERATIONS_ID])  # replaced, not added
    assert "Genealogy Plot" in graphs[GENEALOGY_ID]
    assert '"Trial 11 (' in graphs[GENEALOGY_ID]  # the second save holds the new trials

    tpe = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    tpe.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert save_to_dashboard(tpe) == []


def test_save_to_dashboard_without_optuna_dashboard(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "optuna_dashboard" else real(name, *a),
    )
    study = _study(SAMPLERS["genetic"](), n_trials=4)
    assert save_to_dashboard(study) == []
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert not any(key.startswith("dashboard:") for key in attrs)


def test_predictor_accuracy_still_exported() -> None:
    empty = plot_predictor_accuracy(optuna.create_study())
    assert empty.data == ()
    assert empty.layout.annotations[0].text == "There are no trials to plot."


def _annotation(figure: Any) -> str:
    assert figure.data == () and len(figure.layout.annotations) == 1
    return str(figure.layout.annotations[0].text)


def test_generations_of_failed_or_running_trials_say_so() -> None:
    study = optuna.create_study(sampler=optuna_evo.GeneticSampler(population_size=2, seed=0))
    for _ in range(2):
        study.ask().suggest_float("x", 0, 1)
    running = _annotation(plot_generations(study))
    assert "No COMPLETE trial" in running and "2 RUNNING" in running
    assert "optuna-evo sampler" not in running
    study.tell(0, state=TrialState.FAIL)
    assert "1 FAIL, 1 RUNNING" in _annotation(plot_generations(study))
    # The genealogy shows trials of every state: it is not empty.
    genealogy = plot_genealogy(study)
    assert len(genealogy.data[-1].x) == 2 and not genealogy.layout.annotations


def test_non_evolutionary_study_is_named_as_such() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.ask()  # a RUNNING trial without a generation
    for plot in (plot_genealogy, plot_generations):
        assert "not an optuna-evo study" in _annotation(plot(study))


def test_predictor_accuracy_explains_every_empty_figure() -> None:
    tpe = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    tpe.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert "No generation has a stored female population" in _annotation(
        plot_predictor_accuracy(tpe)
    )

    def report_once(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -3.0, 3.0)
        trial.report(x**2, 0)
        return x**2

    study = optuna.create_study(sampler=SAMPLERS["gender"](), pruner=optuna.pruners.NopPruner())
    study.optimize(report_once, n_trials=12)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    stored = stored_female_generations(study)
    assert stored
    # Every trial is COMPLETE but reported once: the reason is the reports, not the state.
    message = _annotation(plot_predictor_accuracy(study))
    assert "enough intermediate values" in message and "early_steps=3" in message
    assert "COMPLETE yet" not in message
    missing = _annotation(plot_predictor_accuracy(study, generations=[99]))
    assert "[99]" in missing and "stored female population" in missing


def test_generations_with_a_target_draws_no_best_line() -> None:
    study = optuna.create_study(
        direction="minimize", sampler=optuna_evo.GeneticSampler(population_size=4, seed=0)
    )

    def objective(trial: optuna.Trial) -> float:
        loss = trial.suggest_float("x", 0, 1)
        trial.set_user_attr("accuracy", 1 - loss)  # higher is better: the study cannot know
        return loss

    study.optimize(objective, n_trials=12)
    figure = plot_generations(
        study, target=lambda t: t.user_attrs["accuracy"], target_name="Accuracy"
    )
    assert [tr.type for tr in figure.data] == ["box"] * 3
    assert all(b.name.startswith("Generation ") for b in figure.data)
    # Without a target the study's direction picks the best.
    assert plot_generations(study).data[-1].name == "Best in generation"


def test_genealogy_shows_non_finite_values_apart() -> None:
    outcomes = iter([-math.inf, 1.0, None, math.inf, 2.0, 3.0])

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        value = next(outcomes)
        if value is None:
            raise optuna.TrialPruned()
        return value

    study = optuna.create_study(sampler=optuna_evo.GeneticSampler(population_size=3, seed=0))
    study.optimize(objective, n_trials=6)
    _, valued, unvalued, non_finite = plot_genealogy(study).data
    assert valued.name == "Trial" and list(valued.marker.color) == [1.0, 2.0, 3.0]
    assert unvalued.name == "No value (pruned, failed or running)"
    assert [text.split("<br>")[0] for text in unvalued.text] == ["Trial 2 (PRUNED)"]
    assert non_finite.name == "Non-finite value"
    assert [text.split("<br>")[0] for text in non_finite.text] == [
        "Trial 0 (COMPLETE)",
        "Trial 3 (COMPLETE)",
    ]
    assert "Objective Value -inf" in non_finite.text[0]
    assert "Objective Value inf" in non_finite.text[1]
    assert (non_finite.x[1], non_finite.y[1]) == (1, 0)  # generation 1's first trial


def _study_with_generations(generations: list[int]) -> optuna.Study:
    # Trials as NSGA-II stores them (its generation key, no parents): no sampling needed.
    study = optuna.create_study()
    for g in generations:
        study.add_trial(
            optuna.trial.create_trial(value=float(g), system_attrs={"NSGAIISampler:generation": g})
        )
    return study


@pytest.mark.parametrize(
    "generations, dtick",
    [
        (list(range(31)), 1),  # 0..30: a label per generation
        (list(range(100, 106)), 1),  # few, whatever their numbers
        (list(range(32)), None),  # more: plotly spaces them
        (list(range(400)), None),
    ],
)
def test_generation_axis_ticks_every_generation_only_when_few(
    generations: list[int], dtick: int | None
) -> None:
    study = _study_with_generations(generations)
    assert plot_genealogy(study).layout.xaxis.dtick == dtick
    assert plot_generations(study).layout.xaxis.dtick == dtick


@pytest.mark.parametrize("population, dtick", [(31, 1), (32, None), (300, None)])
def test_position_axis_ticks_every_slot_only_when_few(population: int, dtick: int | None) -> None:
    figure = plot_genealogy(_study_with_generations([0] * population))
    assert figure.layout.yaxis.dtick == dtick
    assert max(figure.data[1].y) == population - 1
    assert figure.layout.xaxis.dtick == 1
