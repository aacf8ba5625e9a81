from __future__ import annotations

from collections.abc import Callable
import functools
import math
from pathlib import Path
from typing import Any

from evo_testing import synthetic_text
import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import TrialState
import pytest
import torch

from optuna_evo.architecture import Architecture
from optuna_evo.objectives import tasks as tasks_module
from optuna_evo.objectives.data import default_device
from optuna_evo.objectives.data import make_synthetic
from optuna_evo.objectives.models import MLP
from optuna_evo.objectives.models import CharTransformer
from optuna_evo.objectives.tasks import CharLM
from optuna_evo.objectives.tasks import FashionMNISTCNN
from optuna_evo.objectives.tasks import MLPTask
from optuna_evo.objectives.tasks import char_lm_heads
from optuna_evo.objectives.train import TrainConfig
from optuna_evo.objectives.train import TrainingFailed
from optuna_evo.objectives.train import TrainResult

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")

optuna.logging.set_verbosity(optuna.logging.ERROR)

SYNTHETIC = {"n": 600, "n_features": 8, "n_classes": 3}

ONE_LAYER = {"n_layers": 1, "width_0": 64, "activation": "relu", "dropout": 0.0}
"""MLPTask's architecture parameters for one hidden layer of 64 ReLU units, no dropout."""

ONE_LAYER_ADAM = ONE_LAYER | {
    "optimizer": "adam",
    "lr": 0.01,
    "batch_size": 64,
    "weight_decay": 1e-6,
}
"""A whole MLPTask configuration that trains well on the synthetic data: ONE_LAYER with Adam."""


def synthetic_task(**kwargs: Any) -> MLPTask:
    kwargs.setdefault("epochs", 2)
    return MLPTask("synthetic", device="cpu", synthetic_kwargs=SYNTHETIC, **kwargs)


def tiny_cnn(**kwargs: Any) -> FashionMNISTCNN:
    """The seed CNN, narrowed, on 256 / 128 real FashionMNIST images for 2 epochs."""
    sizes = {"max_train": 256, "max_val": 128, "c1": 8, "c2": 16, "hidden": 32}
    return FashionMNISTCNN(DEBIAN_FASHION, device="cpu", epochs=2, **sizes, **kwargs)


def test_fashion_mnist_cnn_space_is_the_seed_papers() -> None:
    task = FashionMNISTCNN(device="cpu")
    assert task.direction == "minimize"
    assert task.search_space == {
        "lr": FloatDistribution(1e-4, 1.0, log=True),
        "momentum": FloatDistribution(0.0, 0.9),
        "weight_decay": FloatDistribution(0.0, 0.1),
    }
    assert task.BATCH_SIZE == 64 and task.STEP_GAMMA == 0.7
    with pytest.raises(ValueError, match="epochs"):
        FashionMNISTCNN(epochs=0)


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="FashionMNIST files not installed")
def test_fashion_mnist_cnn_trial_on_a_tiny_subset() -> None:
    task = tiny_cnn()
    study = optuna.create_study(direction=task.direction)
    study.enqueue_trial({"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4})
    study.optimize(task, n_trials=2)
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        assert set(trial.params) == set(task.search_space)
        assert sorted(trial.intermediate_values) == [1, 2]
        assert trial.value == min(trial.intermediate_values.values())
        assert trial.user_attrs["steps"] == 2 * (256 // 64)
        assert 0.0 <= trial.user_attrs["val_accuracy"] <= 1.0
    assert study.trials[0].params["lr"] == 0.05


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="FashionMNIST files not installed")
def test_image_tasks_report_several_times_an_epoch_when_asked() -> None:
    # Two epochs, 2 reports an epoch: half-epochs 1-4 (epoch e ends at step 2e).
    task = tiny_cnn(reports_per_epoch=2)
    study = optuna.create_study(direction=task.direction)
    study.optimize(task, n_trials=1)
    assert sorted(study.trials[0].intermediate_values) == [1, 2, 3, 4]


def test_mlp_task_reports_the_same_steps_whatever_the_batch_size() -> None:
    # The reported step counts thirds of an epoch, not optimizer steps: trials searching the
    # batch size stay comparable for a pruner (as steps, 11 and 5 an epoch, they shared none).
    study = optuna.create_study()
    for batch_size in (32, 64):
        study.enqueue_trial({"batch_size": batch_size})
    study.optimize(synthetic_task(reports_per_epoch=3), n_trials=2)
    steps = [sorted(t.intermediate_values) for t in study.trials]
    assert steps[0] == steps[1] == list(range(1, 3 * 2 + 1))


def test_same_trial_number_same_result() -> None:
    values = []
    for _ in range(2):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(synthetic_task(), n_trials=2)
        values.append([t.value for t in study.trials])
    assert values[0] == values[1]
    assert values[0][0] != values[0][1]


def test_each_trial_trains_with_seed_plus_its_number() -> None:
    # Identical parameters in every trial: only the per-trial seed can tell them apart.
    synthetic = SYNTHETIC | {"seed": 0}  # the same data whatever the task's base seed

    def values(seed: int, n_trials: int) -> list[float | None]:
        study = optuna.create_study()
        for _ in range(n_trials):
            study.enqueue_trial(ONE_LAYER_ADAM)
        task = MLPTask("synthetic", device="cpu", epochs=1, seed=seed, synthetic_kwargs=synthetic)
        study.optimize(task, n_trials=n_trials)
        return [t.value for t in study.trials]

    base_0 = values(0, 3)
    assert len(set(base_0)) == 3
    # Trial 2 of base seed 0 trains exactly like trial 0 of base seed 2.
    assert values(2, 1) == base_0[2:]


def _capture_train_configs(monkeypatch: pytest.MonkeyPatch) -> list[TrainConfig]:
    """Replace the tasks' ``train`` by a stub that records its config and trains nothing."""
    configs: list[TrainConfig] = []

    def fake_train(
        model: torch.nn.Module,
        data: object,
        config: TrainConfig,
        trial: object = None,
        task: str | None = None,
    ) -> TrainResult:
        configs.append(config)
        return TrainResult(
            val_loss=1.0,
            best_val_loss=1.0,
            val_accuracy=None,
            train_loss=1.0,
            steps=1,
            epochs=1.0,
            train_seconds=0.0,
            train_only_seconds=0.0,
            samples_per_s=0.0,
            tokens_per_s=None,
            n_params=0,
            stopped_by="max_steps",
        )

    monkeypatch.setattr(tasks_module, "train", fake_train)
    return configs


def test_tasks_train_with_their_documented_schedules_and_seeds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configs = _capture_train_configs(monkeypatch)
    # Base seed 3, trial number 4: every task trains with seed 7.
    cnn = FashionMNISTCNN(device="cpu", epochs=3, seed=3, c1=4, c2=4, hidden=8)
    # No training happens, so stand-in data spare the test the FashionMNIST files.
    cnn._data = make_synthetic(n=100, n_features=784, n_classes=10, device="cpu")
    cnn(optuna.trial.FixedTrial({"lr": 0.01, "momentum": 0.5, "weight_decay": 0.0}, number=4))
    (config,) = configs
    # The seed paper: SGD, batch 64, StepLR with gamma 0.7 every epoch (step_size None).
    assert (config.optimizer, config.batch_size, config.epochs) == ("sgd", 64, 3)
    assert (config.scheduler, config.step_gamma, config.step_size) == ("step", 0.7, None)
    assert config.seed == 7

    mlp = synthetic_task(epochs=3, seed=3)
    mlp(optuna.trial.FixedTrial(ONE_LAYER_ADAM, number=4))
    config = configs[-1]
    # Cosine over the whole run: the epochs are its horizon, no warmup.
    assert (config.scheduler, config.epochs, config.max_steps) == ("cosine", 3, None)
    assert config.warmup_steps == 0 and config.seed == 7

    lm = CharLM(synthetic_text(tmp_path), device="cpu", max_steps=300, block_size=32, seed=3)
    params = {"n_layer": 2, "n_head": 2, "n_embd": 64, "lr": 1e-3, "batch_size": 16}
    lm(optuna.trial.FixedTrial(params | {"dropout": 0.0}, number=4))
    config = configs[-1]
    # nanoGPT's shakespeare_char: AdamW, clipping at 1, warmup then cosine down to lr / 10.
    assert (config.optimizer, config.betas, config.weight_decay) == ("adamw", (0.9, 0.99), 0.1)
    assert (config.scheduler, config.max_steps, config.min_lr_ratio) == ("cosine", 300, 0.1)
    assert config.warmup_steps == lm.warmup_steps == 30
    assert config.grad_clip == 1.0 and config.seed == 7
    assert len(configs) == 3


def test_mlp_task_default_space_and_attrs() -> None:
    task = synthetic_task()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.enqueue_trial({"optimizer": "sgd", "n_layers": 2})
    study.enqueue_trial({"optimizer": "adam", "n_layers": 1})
    study.optimize(task, n_trials=4)
    space = task.search_space
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("fail_reason")
        assert set(trial.params) <= set(space)
        for name, value in trial.params.items():
            assert space[name]._contains(space[name].to_internal_repr(value))
        arch = Architecture.from_dict(trial.user_attrs["architecture"])
        assert arch.n_hidden == trial.params["n_layers"]
        assert arch.widths[0] == 8 and arch.widths[-1] == 3
        assert ("momentum" in trial.params) == (trial.params["optimizer"] == "sgd")
        assert trial.user_attrs["n_params"] == MLP(arch).n_params
    assert "width_1" in study.trials[0].params and "width_1" not in study.trials[1].params


def test_mlp_task_custom_architecture_fn() -> None:
    def arch_fn(trial: optuna.trial.BaseTrial) -> Architecture:
        width = trial.suggest_int("width", 4, 16)
        return Architecture([8, width, width, 3], "silu", skips=[(0, 2)])

    study = optuna.create_study()
    # A fixed, trainable configuration: the checks below read what training did.
    config = {"width": 16, "optimizer": "adam", "lr": 0.03, "batch_size": 32}
    study.enqueue_trial(config | {"weight_decay": 1e-6})
    study.optimize(synthetic_task(architecture_fn=arch_fn), n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("fail_reason")
    arch = Architecture([8, 16, 16, 3], "silu", skips=[(0, 2)])
    assert Architecture.from_dict(trial.user_attrs["architecture"]) == arch
    assert trial.user_attrs["architecture"]["skips"] == [[0, 2]]
    # The trained model is the one the function returned, not some other network.
    assert trial.user_attrs["n_params"] == MLP(arch).n_params
    # And it learned: the validation loss fell and accuracy is far above chance (1/3).
    losses = [trial.intermediate_values[step] for step in sorted(trial.intermediate_values)]
    assert len(losses) == 2 and losses[-1] < losses[0]
    assert trial.user_attrs["val_accuracy"] > 0.7

    bad = synthetic_task(architecture_fn=lambda trial: Architecture([784, 10, 3], "relu"))
    with pytest.raises(ValueError, match="must start with 8"):
        optuna.create_study().optimize(bad, n_trials=1)


def test_mlp_task_validates_arguments() -> None:
    with pytest.raises(ValueError, match="dataset"):
        MLPTask("cifar10")
    with pytest.raises(ValueError, match="architecture_fn"):
        MLPTask("synthetic", architecture_fn=3)  # type: ignore[arg-type]


def test_out_of_memory_fails_only_that_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    original = MLP.forward
    state = {"trial_to_fail": 0, "current": -1}

    def forward(self: MLP, x: torch.Tensor) -> torch.Tensor:
        if state["current"] == state["trial_to_fail"]:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")
        return original(self, x)

    monkeypatch.setattr(MLP, "forward", forward)
    task = synthetic_task()
    wrapped = task.__call__

    def objective(trial: optuna.Trial) -> float:
        state["current"] = trial.number
        return wrapped(trial)

    study = optuna.create_study()
    study.optimize(objective, n_trials=2)  # No catch= needed.
    failed, ok = study.trials
    assert failed.state == TrialState.FAIL
    assert "Out of memory" in failed.user_attrs["fail_reason"]
    assert "8.00 GiB" in failed.user_attrs["fail_reason"]
    assert ok.state == TrialState.COMPLETE and math.isfinite(ok.value)


def test_divergence_fails_only_that_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    original = MLP.forward
    state = {"current": -1}

    def forward(self: MLP, x: torch.Tensor) -> torch.Tensor:
        out = original(self, x)
        return out * float("nan") if state["current"] == 0 else out

    monkeypatch.setattr(MLP, "forward", forward)
    task = synthetic_task()

    def objective(trial: optuna.Trial) -> float:
        state["current"] = trial.number
        return task(trial)

    study = optuna.create_study()
    study.optimize(objective, n_trials=2)
    diverged, ok = study.trials
    assert diverged.state == TrialState.FAIL
    assert "diverged" in diverged.user_attrs["fail_reason"]
    assert diverged.intermediate_values == {}  # Stopped before the first report.
    assert ok.state == TrialState.COMPLETE


def test_catch_failures_false_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    def forward(self: MLP, x: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory.")

    monkeypatch.setattr(MLP, "forward", forward)
    task = synthetic_task(catch_failures=False)
    with pytest.raises(TrainingFailed):
        optuna.create_study().optimize(task, n_trials=1)
    study = optuna.create_study()
    study.optimize(task, n_trials=2, catch=(TrainingFailed,))
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]


def test_char_lm_heads_repair() -> None:
    assert char_lm_heads(6, 384) == 6 and char_lm_heads(6, 192) == 6
    assert char_lm_heads(6, 128) == 4 and char_lm_heads(6, 64) == 4
    assert char_lm_heads(4, 384) == 4 and char_lm_heads(2, 64) == 2


def test_char_lm_space() -> None:
    task = CharLM(device="cpu")
    assert task.search_space == {
        "n_layer": IntDistribution(2, 6),
        "n_head": CategoricalDistribution((2, 4, 6)),
        "n_embd": CategoricalDistribution((64, 128, 192, 384)),
        "lr": FloatDistribution(1e-4, 3e-3, log=True),
        "batch_size": CategoricalDistribution((16, 32, 64)),
        "dropout": FloatDistribution(0.0, 0.3),
    }
    assert task.warmup_steps == 100
    with pytest.raises(ValueError, match="max_steps"):
        CharLM(max_steps=0)


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: FashionMNISTCNN(device="cpu", max_train=0), "max_train"),
        (lambda: FashionMNISTCNN(device="cpu", max_val=2.5), "max_val"),
        (lambda: FashionMNISTCNN(device="cpu", time_budget_s=-1), "time_budget_s"),
        (lambda: MLPTask("synthetic", device="cpu", max_train=True), "max_train"),
        (lambda: MLPTask("synthetic", device="cpu", time_budget_s=0), "time_budget_s"),
        (lambda: CharLM(device="cpu", time_budget_s="10"), "time_budget_s"),
        (lambda: CharLM(device="cpu", warmup_steps=-5), "warmup_steps"),
        (lambda: FashionMNISTCNN(device="cpu", reports_per_epoch=0), "reports_per_epoch"),
        (lambda: MLPTask("synthetic", device="cpu", reports_per_epoch=1.5), "reports_per_epoch"),
    ],
)
def test_bad_budgets_are_refused_before_any_trial(
    make: Callable[[], object], argument: str
) -> None:
    with pytest.raises(ValueError, match=argument):
        make()


def test_char_lm_trial_reports_every_interval(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built: list[CharTransformer] = []
    original_init = CharTransformer.__init__

    def spy_init(self: CharTransformer, config: object) -> None:
        original_init(self, config)  # type: ignore[arg-type]
        built.append(self)

    monkeypatch.setattr(CharTransformer, "__init__", spy_init)
    text = synthetic_text(tmp_path)  # tiny shakespeare's 65 characters, on a fresh clone too
    task = CharLM(text, device="cpu", max_steps=20, eval_interval=10, eval_iters=2, block_size=32)
    study = optuna.create_study()
    study.enqueue_trial(
        {"n_layer": 2, "n_head": 6, "n_embd": 64, "lr": 2e-3, "batch_size": 16, "dropout": 0.1}
    )
    study.optimize(task, n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [10, 20]
    assert trial.value == min(trial.intermediate_values.values())
    assert trial.user_attrs["n_head_used"] == 4
    assert trial.user_attrs["tokens_per_s"] > 0
    config = built[0].config
    assert (config.n_layer, config.n_head, config.n_embd, config.block_size) == (2, 4, 64, 32)
    assert config.vocab_size == 65 and config.dropout == 0.1


@pytest.mark.parametrize("cuda, expected", [(True, "cuda"), (False, "cpu")])
def test_tasks_default_device(monkeypatch: pytest.MonkeyPatch, cuda: bool, expected: str) -> None:
    # Both answers on any machine: only the availability check is faked, no CUDA is touched.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert default_device() == torch.device(expected)
    assert MLPTask("synthetic").device.type == expected
    assert CharLM().device.type == expected


def test_artifact_store_children_continue_from_parent_weights(tmp_path: Path) -> None:
    import functools
    import statistics
    import warnings

    from optuna.artifacts import FileSystemArtifactStore

    import optuna_evo
    from optuna_evo import checkpoint

    space = {"layers": [[8, 32, 3]], "activations": ["relu"]}
    arch_fn = functools.partial(optuna_evo.suggest_architecture, search_space=space)

    def first_losses(store: FileSystemArtifactStore | None) -> tuple[list[float], list[float]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna_evo.MAGESampler(
                "single", space, population_size=4, n_elites=1, mutation_prob=0.3, seed=3
            )
        study = optuna.create_study(sampler=sampler, pruner=optuna.pruners.NopPruner())
        task = synthetic_task(architecture_fn=arch_fn, artifact_store=store)
        study.optimize(task, n_trials=12)
        first = [t.intermediate_values[min(t.intermediate_values)] for t in study.trials]
        if store is not None:
            assert all(checkpoint.CHECKPOINT_KEY in t.system_attrs for t in study.trials)
        return first[:4], first[8:]  # generation 0, generation 2

    gen0, gen2 = first_losses(FileSystemArtifactStore(str(tmp_path)))
    fresh0, fresh2 = first_losses(None)
    # Two generations of inherited training: the third starts far below a fresh start.
    assert statistics.median(gen2) < 0.8 * statistics.median(gen0), (gen0, gen2)
    assert statistics.median(gen2) < statistics.median(fresh2), (fresh2, gen2)
    assert len(list(tmp_path.iterdir())) == 12


def test_artifact_store_must_be_a_store() -> None:
    with pytest.raises(ValueError, match="artifact_store"):
        synthetic_task(artifact_store="/tmp/somewhere")
    with pytest.raises(ValueError, match="artifact_store"):
        FashionMNISTCNN(artifact_store=object())


def test_a_missing_artifact_folder_is_refused_before_any_training(tmp_path: Path) -> None:
    from optuna.artifacts import FileSystemArtifactStore

    with pytest.raises(ValueError, match="folder .*nowhere does not exist"):
        synthetic_task(artifact_store=FileSystemArtifactStore(tmp_path / "nowhere"))


def _checkpoint_loss(study: optuna.Study, trial: optuna.trial.FrozenTrial, store: Any) -> float:
    """Validation loss of the weights ``trial`` saved, evaluated again."""
    from optuna_evo import checkpoint
    from optuna_evo.objectives.data import make_synthetic
    from optuna_evo.objectives.train import TrainConfig
    from optuna_evo.objectives.train import _Run

    model = MLP(Architecture.from_dict(trial.user_attrs["architecture"]))
    checkpoint.load(trial, model, store, study)
    data = make_synthetic(**{"seed": 0, **SYNTHETIC, "device": "cpu"})
    config = TrainConfig(epochs=1, device="cpu")
    return _Run(model, data, config, None, "classification", torch.device("cpu")).evaluate()[0]


def test_saved_weights_are_those_the_trial_value_measures(tmp_path: Path) -> None:
    # SGD at lr 0.1 with momentum 0.99 overshoots after its best epoch: the last weights are
    # worse than the best ones. The checkpoint must hold the best (the trial's value).
    from optuna.artifacts import FileSystemArtifactStore

    store = FileSystemArtifactStore(tmp_path)
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    study.enqueue_trial(
        ONE_LAYER
        | {"optimizer": "sgd", "lr": 0.1, "momentum": 0.99, "batch_size": 32}
        | {"weight_decay": 1e-6}
    )
    task = MLPTask(
        "synthetic", device="cpu", epochs=6, synthetic_kwargs=SYNTHETIC, artifact_store=store
    )
    study.optimize(task, n_trials=1)
    trial = study.trials[0]
    values = trial.intermediate_values
    assert values[max(values)] > trial.value  # the run moved past its best evaluation
    assert _checkpoint_loss(study, trial, store) == pytest.approx(trial.value, rel=1e-5)


def test_a_pruned_trial_saves_its_weights_for_its_children(tmp_path: Path) -> None:
    from optuna.artifacts import FileSystemArtifactStore

    from optuna_evo import checkpoint

    class PruneAtTwo(optuna.pruners.BasePruner):
        def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
            return len(trial.intermediate_values) >= 2

    store = FileSystemArtifactStore(tmp_path)
    study = optuna.create_study(pruner=PruneAtTwo())
    task = synthetic_task(artifact_store=store, epochs=4)
    study.optimize(task, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert checkpoint.CHECKPOINT_KEY in trial.system_attrs
    assert _checkpoint_loss(study, trial, store) == pytest.approx(
        min(trial.intermediate_values.values()), rel=1e-5
    )


def test_a_lost_parent_checkpoint_costs_the_child_its_head_start_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import warnings

    from optuna.artifacts import FileSystemArtifactStore

    import optuna_evo

    store = FileSystemArtifactStore(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna_evo.MAGESampler(
            "single", {"layers": [[8, 16, 3]]}, population_size=2, n_elites=1, seed=0
        )
    arch_fn = functools.partial(
        optuna_evo.suggest_architecture, search_space={"layers": [[8, 16, 3]]}
    )
    study = optuna.create_study(sampler=sampler, pruner=optuna.pruners.NopPruner())
    task = synthetic_task(architecture_fn=arch_fn, artifact_store=store, epochs=1)
    study.optimize(task, n_trials=2)
    for file in tmp_path.iterdir():
        file.unlink()  # e.g. a store that was not shared, or was cleaned up
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.enable_propagation()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with caplog.at_level(logging.WARNING):
            study.optimize(task, n_trials=2)  # generation 1: both inherit, neither can load
    finally:
        optuna.logging.set_verbosity(verbosity)
        optuna.logging.disable_propagation()
    for trial in study.trials[2:]:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert "is not in the artifact store" in trial.user_attrs["checkpoint_error"]
    assert "trains from fresh weights" in caplog.text


def test_task_arguments_are_stored_as_python_numbers() -> None:
    cnn = FashionMNISTCNN(device="cpu", epochs=np.int64(2), max_train=100.0, time_budget_s=5)
    assert (cnn.epochs, cnn.max_train, cnn.time_budget_s) == (2, 100, 5.0)
    assert type(cnn.epochs) is int and type(cnn.max_train) is int
    assert type(cnn.time_budget_s) is float
    lm = CharLM(device="cpu", max_steps=500.0, seed=np.int64(3))
    assert (lm.max_steps, lm.warmup_steps, lm.seed) == (500, 50, 3)
    assert type(lm.max_steps) is int and type(lm.warmup_steps) is int and type(lm.seed) is int


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: MLPTask("cifar", device="cpu"), r"`dataset` must be one of \("),
        (
            lambda: MLPTask("synthetic", device="cpu", seed=1.5),
            r"`seed` must be an integer in \[-9",
        ),
        (lambda: FashionMNISTCNN(device="cpu", time_budget_s=math.inf), r"`time_budget_s`"),
        (lambda: CharLM(device="cpu", eval_iters=True), r"`eval_iters` must be an integer >= 1"),
    ],
)
def test_task_arguments_are_refused_with_one_wording(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make()
