from __future__ import annotations

import dataclasses
import importlib
import math
from pathlib import Path
import shutil

from evo_testing import synthetic_text
import numpy as np
import optuna
import pytest
import torch
from torch import nn

from optuna_evo.architecture import Architecture
from optuna_evo.objectives.data import ClassificationSplits
from optuna_evo.objectives.data import load_fashion_mnist
from optuna_evo.objectives.data import load_tiny_shakespeare
from optuna_evo.objectives.data import make_synthetic
from optuna_evo.objectives.data import make_text_splits
from optuna_evo.objectives.models import MLP
from optuna_evo.objectives.models import CharTransformer
from optuna_evo.objectives.models import CharTransformerConfig
from optuna_evo.objectives.train import TrainConfig
from optuna_evo.objectives.train import TrainingDiverged
from optuna_evo.objectives.train import TrainingFailed
from optuna_evo.objectives.train import TrialOutOfMemory
from optuna_evo.objectives.train import make_optimizer
from optuna_evo.objectives.train import make_scheduler
from optuna_evo.objectives.train import resolve_amp
from optuna_evo.objectives.train import train

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")

optuna.logging.set_verbosity(optuna.logging.ERROR)


@pytest.fixture(scope="module")
def blobs() -> ClassificationSplits:
    return make_synthetic(n=1200, n_features=10, n_classes=3, seed=0, device="cpu")


def small_mlp(data: ClassificationSplits, seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(Architecture([data.n_features, 32, data.n_classes], "relu"))


def cpu_config(**kwargs: object) -> TrainConfig:
    defaults: dict[str, object] = {"device": "cpu", "optimizer": "adam", "lr": 1e-2}
    defaults.update(kwargs)
    return TrainConfig(**defaults)  # type: ignore[arg-type]


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="FashionMNIST files not installed")
def test_mlp_one_epoch_on_5k_fashion_mnist_beats_70_percent() -> None:
    data = load_fashion_mnist(DEBIAN_FASHION, device="cpu", max_train=5000, max_val=2000)
    torch.manual_seed(1)
    model = MLP(Architecture([784, 256, 10], "relu"))
    result = train(model, data, cpu_config(lr=1e-3, batch_size=32, epochs=1, seed=1))
    assert result.steps == 5000 // 32
    assert result.val_accuracy is not None and result.val_accuracy > 0.70


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_every_optimizer_learns(blobs: ClassificationSplits, optimizer: str) -> None:
    lr = 0.1 if optimizer == "sgd" else 1e-2
    momentum = 0.9 if optimizer == "sgd" else 0.0
    config = cpu_config(optimizer=optimizer, lr=lr, momentum=momentum, epochs=3)
    result = train(small_mlp(blobs), blobs, config)
    assert result.history[-1].val_loss < result.history[0].val_loss < math.log(3)
    assert result.val_accuracy is not None and result.val_accuracy > 0.8


def test_result_history_and_reporting(blobs: ClassificationSplits) -> None:
    study = optuna.create_study()
    trial = study.ask()
    config = cpu_config(batch_size=50, epochs=3, evaluate_test=True)
    result = train(small_mlp(blobs), blobs, config, trial=trial)
    steps_per_epoch = len(blobs.train_y) // 50
    assert result.steps == 3 * steps_per_epoch and result.epochs == 3
    assert [r.report_step for r in result.history] == [1, 2, 3]
    assert [r.step for r in result.history] == [steps_per_epoch * k for k in (1, 2, 3)]
    assert result.best_val_loss == min(r.val_loss for r in result.history)
    assert result.stopped_by == "epochs"
    assert result.test_accuracy is not None and result.test_accuracy > 0.8
    frozen = study.trials[0]
    assert frozen.intermediate_values == {r.report_step: r.val_loss for r in result.history}
    attrs = frozen.user_attrs
    assert attrs["n_params"] == result.n_params == 10 * 32 + 32 + 32 * 3 + 3
    assert attrs["val_accuracy"] == result.val_accuracy
    assert attrs["test_accuracy"] == result.test_accuracy
    assert attrs["steps"] == result.steps
    assert attrs["train_seconds"] == pytest.approx(result.train_seconds)
    assert 0 < result.train_only_seconds <= result.train_seconds


def test_same_seed_same_run_different_seed_different_run(blobs: ClassificationSplits) -> None:
    runs = [
        train(small_mlp(blobs, seed=s), blobs, cpu_config(epochs=1, seed=s)).val_loss
        for s in (3, 3, 4)
    ]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_eval_interval_and_max_steps(blobs: ClassificationSplits) -> None:
    result = train(small_mlp(blobs), blobs, cpu_config(max_steps=25, eval_interval=10))
    assert [r.step for r in result.history] == [10, 20, 25]
    assert [r.report_step for r in result.history] == [10, 20, 25]
    assert result.stopped_by == "max_steps"


def test_evals_per_epoch_report_epoch_slices_that_end_on_epoch_ends(
    blobs: ClassificationSplits,
) -> None:
    study = optuna.create_study()
    config = cpu_config(batch_size=32, epochs=2, evals_per_epoch=3)
    result = train(small_mlp(blobs), blobs, config, trial=study.ask())
    spe = len(blobs.train_y) // 32  # Not a multiple of 3: slices end between steps.
    assert spe % 3
    assert [r.step for r in result.history] == [math.ceil(k * spe / 3) for k in range(1, 7)]
    assert {spe, 2 * spe} <= {r.step for r in result.history}
    assert [r.report_step for r in result.history] == [1, 2, 3, 4, 5, 6]
    assert study.trials[0].intermediate_values == {
        r.report_step: r.val_loss for r in result.history
    }
    # More slices than steps: every step evaluates, skipping the slice numbers in between.
    big = train(small_mlp(blobs), blobs, cpu_config(batch_size=300, epochs=1, evals_per_epoch=5))
    assert len(blobs.train_y) // 300 == 2
    assert [r.report_step for r in big.history] == [2, 5]


def test_a_run_cut_mid_slice_keeps_its_last_evaluation_unreported(
    blobs: ClassificationSplits,
) -> None:
    # Another trial's value at slice 2 covers a whole half-epoch; this one's would not.
    study = optuna.create_study()
    spe = len(blobs.train_y) // 32
    config = cpu_config(batch_size=32, epochs=2, evals_per_epoch=2, max_steps=spe // 2 + 2)
    result = train(small_mlp(blobs), blobs, config, trial=study.ask())
    assert [r.report_step for r in result.history] == [1, None]
    assert result.history[-1].step == spe // 2 + 2 and result.stopped_by == "max_steps"
    assert list(study.trials[0].intermediate_values) == [1]
    assert result.best_val_loss == min(r.val_loss for r in result.history)


def test_restore_best_leaves_the_best_evaluations_weights_and_metrics(
    blobs: ClassificationSplits,
) -> None:
    # SGD at lr 1 with momentum 0.99 overshoots: the last evaluation is not the best.
    config = cpu_config(optimizer="sgd", lr=1.0, momentum=0.99, epochs=6, restore_best=True)
    study = optuna.create_study()
    model = small_mlp(blobs)
    result = train(model, blobs, config, trial=study.ask())
    best = min(result.history, key=lambda r: r.val_loss)
    assert best is not result.history[-1]
    assert (result.val_loss, result.val_accuracy) == (best.val_loss, best.val_accuracy)
    assert study.trials[0].user_attrs["val_accuracy"] == best.val_accuracy
    again = train(model, blobs, cpu_config(max_steps=1, lr=1e-12, optimizer="sgd"))
    assert again.history[0].val_loss == pytest.approx(best.val_loss, rel=1e-3)

    class PruneAtTheLast(optuna.pruners.BasePruner):
        def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
            return len(trial.intermediate_values) == 6

    # Pruned at its last evaluation: the attrs still describe the weights it keeps.
    study = optuna.create_study(pruner=PruneAtTheLast())
    with pytest.raises(optuna.TrialPruned):
        train(small_mlp(blobs), blobs, config, trial=study.ask())
    assert study.trials[0].user_attrs["val_accuracy"] == best.val_accuracy


def test_time_budget_and_target_stop_early(blobs: ClassificationSplits) -> None:
    timed = train(small_mlp(blobs), blobs, cpu_config(time_budget_s=1e-4, eval_interval=1000))
    assert timed.stopped_by == "time" and timed.steps >= 1 and len(timed.history) == 1
    target = train(small_mlp(blobs), blobs, cpu_config(epochs=50, stop_at_val_loss=10.0))
    assert target.stopped_by == "target" and len(target.history) == 1


def _forward_dtypes(model: nn.Module) -> list[torch.dtype]:
    """Record the output dtype of every forward call of ``model``."""
    dtypes: list[torch.dtype] = []
    model.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
    return dtypes


def test_bf16_autocast_path_trains_with_float32_weights_and_results(
    blobs: ClassificationSplits,
) -> None:
    # The CUDA default (amp on) run on the CPU: the same code path bar the device.
    eager = train(small_mlp(blobs), blobs, cpu_config(epochs=3, evaluate_test=True))
    model = small_mlp(blobs)
    dtypes = _forward_dtypes(model)
    amp = train(model, blobs, cpu_config(epochs=3, evaluate_test=True, amp=True))
    # Training steps ran under autocast; evaluations (3 validation, 1 test) in fp32.
    assert dtypes.count(torch.bfloat16) == amp.steps
    assert dtypes.count(torch.float32) == 4 and len(dtypes) == amp.steps + 4
    assert all(p.dtype == torch.float32 for p in model.parameters())
    for value in (amp.val_loss, amp.train_loss, amp.test_loss, amp.val_accuracy):
        assert type(value) is float and math.isfinite(value)
    assert amp.val_accuracy is not None and eager.val_accuracy is not None
    assert amp.val_accuracy > 0.8 and abs(amp.val_accuracy - eager.val_accuracy) < 0.05
    assert amp.val_loss == pytest.approx(eager.val_loss, abs=0.05)

    text = "".join(chr(97 + (i * i + 3 * i) % 26) for i in range(4000))
    torch.manual_seed(0)
    lm = CharTransformer(
        CharTransformerConfig(vocab_size=26, block_size=16, n_layer=1, n_head=2, n_embd=16)
    )
    lm_dtypes = _forward_dtypes(lm)
    config = cpu_config(amp=True, batch_size=8, max_steps=30, eval_interval=15, eval_iters=2)
    result = train(lm, make_text_splits(text, "cpu"), config)
    assert set(lm_dtypes) == {torch.bfloat16}  # nanoGPT evaluates under autocast too
    assert [r.step for r in result.history] == [15, 30]
    assert result.history[-1].val_loss < result.history[0].val_loss < math.log(26) + 0.5


def test_amp_defaults_to_bf16_on_cuda_only_and_respects_an_explicit_choice() -> None:
    # Pure decision, no CUDA touched: the CUDA default is checked on any machine.
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert resolve_amp(None, cuda) is True and resolve_amp(None, cpu) is False
    for device in (cuda, cpu):
        assert resolve_amp(True, device) is True and resolve_amp(False, device) is False


def test_train_takes_its_autocast_decision_from_resolve_amp(
    blobs: ClassificationSplits, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A default CPU run computes in fp32 throughout.
    model = small_mlp(blobs)
    dtypes = _forward_dtypes(model)
    result = train(model, blobs, cpu_config(max_steps=3, eval_interval=3))
    assert dtypes == [torch.float32] * (result.steps + 1)
    # And train asks resolve_amp (whose CUDA default is tested above) with the config's value
    # and the run's device, then obeys it: here forced on, training steps run in bf16.
    # By import: the package's attribute `train` is the function, not the module.
    module = importlib.import_module("optuna_evo.objectives.train")
    asked: list[tuple[bool | None, torch.device]] = []

    def spy(amp: bool | None, device: torch.device) -> bool:
        asked.append((amp, device))
        return True

    monkeypatch.setattr(module, "resolve_amp", spy)
    model = small_mlp(blobs)
    dtypes = _forward_dtypes(model)
    result = train(model, blobs, cpu_config(max_steps=3, eval_interval=3))
    assert asked == [(None, torch.device("cpu"))]
    assert dtypes == [torch.bfloat16] * result.steps + [torch.float32]


@pytest.mark.skipif(
    not any(shutil.which(cc) for cc in ("cc", "gcc", "g++", "clang")),
    reason="torch.compile on CPU needs a C/C++ compiler",
)
def test_compiled_model_trains_like_the_eager_one(blobs: ClassificationSplits) -> None:
    # The GPU benchmarks compile by default; the loop must drive a compiled model the same way
    # (step marking for CUDA graphs, per-batch shapes, evaluation) and reach the same result.
    config = cpu_config(epochs=2, batch_size=100, evaluate_test=True)
    eager = train(small_mlp(blobs), blobs, config)
    model = small_mlp(blobs)
    compiled = train(model, blobs, dataclasses.replace(config, compile=True))
    assert compiled.steps == eager.steps and compiled.stopped_by == "epochs"
    assert compiled.val_loss == pytest.approx(eager.val_loss, rel=1e-3)
    assert compiled.test_accuracy == pytest.approx(eager.test_accuracy, abs=0.01)
    # The compiled wrapper shares its parameters: the trained weights are in ``model``.
    assert compiled.n_params == sum(p.numel() for p in model.parameters())
    assert not torch.equal(model.linears[0].weight, small_mlp(blobs).linears[0].weight)


def test_schedulers() -> None:
    param = nn.Parameter(torch.zeros(1))
    model = nn.Module()
    model.p = param
    config = cpu_config(optimizer="sgd", lr=1.0, epochs=1, scheduler="step")
    opt = make_optimizer(model, config)
    sched = make_scheduler(opt, config, steps_per_epoch=10, total_steps=30)
    lrs = []
    for _ in range(25):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[8] == 1.0 and lrs[9] == pytest.approx(0.7) and lrs[19] == pytest.approx(0.49)

    config = cpu_config(lr=1.0, max_steps=20, scheduler="cosine", warmup_steps=4, min_lr_ratio=0.1)
    opt = make_optimizer(model, config)
    sched = make_scheduler(opt, config, steps_per_epoch=10, total_steps=20)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(20):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(0.25) and lrs[3] == pytest.approx(1.0)
    assert lrs[20] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:]))

    # The documented curve over the 16 decay steps (4 to 20): a quarter in, cosine is at
    # 0.868 where a linear decay would be at 0.775; halfway they meet, at 0.55.
    def cosine(progress: float) -> float:
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    for step, progress in [(8, 0.25), (12, 0.5), (16, 0.75)]:
        assert lrs[step] == pytest.approx(cosine(progress)), step


def test_adamw_decays_only_matrices() -> None:
    model = MLP(Architecture([3, 4, 2], "relu"))
    opt = make_optimizer(model, cpu_config(optimizer="adamw", weight_decay=0.1, epochs=1))
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(model.linears[0].weight), id(model.linears[1].weight)}


def test_char_lm_loss_falls_over_50_steps(tmp_path: Path) -> None:
    # A stand-in for tiny shakespeare (same 65 characters): the test runs on a fresh clone too.
    data = load_tiny_shakespeare(synthetic_text(tmp_path), device="cpu")
    assert data.vocab_size == 65
    torch.manual_seed(0)
    model = CharTransformer(
        CharTransformerConfig(
            vocab_size=data.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=48, dropout=0.0
        )
    )
    config = cpu_config(
        optimizer="adamw", lr=3e-3, batch_size=16, max_steps=50, eval_interval=10, eval_iters=4
    )
    study = optuna.create_study()
    trial = study.ask()
    result = train(model, data, config, trial=trial)
    losses = [r.val_loss for r in result.history]
    assert [r.step for r in result.history] == [10, 20, 30, 40, 50]
    assert losses[-1] < losses[0] - 0.3
    assert losses[-1] < math.log(data.vocab_size) - 1.0
    assert result.val_accuracy is None
    assert result.tokens_per_s is not None and result.tokens_per_s > 0
    assert study.trials[0].user_attrs["tokens_per_s"] == pytest.approx(result.tokens_per_s)


def test_lm_validation_text_does_not_depend_on_training_batch_size() -> None:
    text = "".join(chr(97 + (i * i + 3 * i) % 26) for i in range(5000))
    data = make_text_splits(text, "cpu")

    def val_loss(batch_size: int, eval_batch_size: int | None) -> float:
        torch.manual_seed(0)
        config = CharTransformerConfig(vocab_size=26, block_size=16, n_layer=1, n_head=1, n_embd=8)
        model = CharTransformer(config)
        # A vanishing learning rate keeps the weights: only the evaluation windows can differ.
        train_config = cpu_config(
            lr=1e-12,
            batch_size=batch_size,
            max_steps=1,
            eval_iters=3,
            eval_batch_size=eval_batch_size,
        )
        return train(model, data, train_config).val_loss

    assert val_loss(4, 8) == pytest.approx(val_loss(16, 8), abs=1e-6)
    assert val_loss(4, None) != pytest.approx(val_loss(16, None), abs=1e-6)


def test_lm_rejects_too_short_text() -> None:
    data = make_text_splits("abcdefghij" * 3, "cpu")
    config = CharTransformerConfig(vocab_size=10, block_size=8, n_layer=1, n_head=1, n_embd=8)
    model = CharTransformer(config)
    with pytest.raises(ValueError, match="block_size"):
        train(model, data, cpu_config(max_steps=2))


def test_progress_bar_counts_the_steps_and_shows_the_last_evaluation(
    blobs: ClassificationSplits,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = train(small_mlp(blobs), blobs, cpu_config(max_steps=30, eval_interval=10))
    assert capsys.readouterr().err == ""  # off by default: a study has its own bar
    result = train(
        small_mlp(blobs), blobs, cpu_config(max_steps=30, eval_interval=10, progress=True)
    )
    err = capsys.readouterr().err
    assert "MLP" in err and "30/30" in err
    assert f"val_loss={result.history[-1].val_loss:.4f}" in err
    assert f"val_acc={result.history[-1].val_accuracy:.4f}" in err
    # Every run closes its bar, also one that stops with an error.
    import tqdm.auto

    closed: list[tuple[int, int | None]] = []

    class Spy(tqdm.auto.tqdm):
        def close(self) -> None:
            closed.append((self.n, self.total))
            super().close()

        def __del__(self) -> None:  # count only the closes train() makes
            pass

    monkeypatch.setattr(tqdm.auto, "tqdm", Spy)
    train(small_mlp(blobs), blobs, cpu_config(max_steps=20, eval_interval=10, progress=True))
    with pytest.raises(TrainingDiverged):
        poisoned = _PoisonAfter(small_mlp(blobs), after=3)
        train(poisoned, blobs, cpu_config(max_steps=50, eval_interval=10, progress=True))
    # A run stopped early as planned ends complete (a notebook bar would turn red below its
    # total); one stopped by an error keeps its total.
    target = cpu_config(max_steps=50, eval_interval=10, stop_at_val_loss=10.0, progress=True)
    assert train(small_mlp(blobs), blobs, target).stopped_by == "target"
    assert closed == [(20, 20), (10, 50), (10, 10)]
    with pytest.raises(ValueError, match="progress"):
        TrainConfig(epochs=1, progress="yes")  # type: ignore[arg-type]


def test_median_pruner_prunes_through_the_loop(blobs: ClassificationSplits) -> None:
    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-7, 1.0, log=True)
        config = cpu_config(optimizer="sgd", lr=lr, momentum=0.9, epochs=4)
        return train(small_mlp(blobs), blobs, config, trial=trial).best_val_loss

    study = optuna.create_study(
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    )
    study.enqueue_trial({"lr": 0.1})
    study.enqueue_trial({"lr": 1e-7})  # Barely moves: worse than the median at step 1.
    study.optimize(objective, n_trials=2)
    good, bad = study.trials
    assert good.state == optuna.trial.TrialState.COMPLETE
    assert sorted(good.intermediate_values) == [1, 2, 3, 4]
    assert bad.state == optuna.trial.TrialState.PRUNED
    assert sorted(bad.intermediate_values) == [1]
    assert "train_seconds" in bad.user_attrs and "n_params" in bad.user_attrs


class _PoisonAfter(nn.Module):
    """Wraps a model; after ``after`` forward calls in training mode its logits become NaN."""

    def __init__(self, inner: nn.Module, after: int) -> None:
        super().__init__()
        self.inner, self.after, self.calls = inner, after, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        if self.training:
            self.calls += 1
            if self.calls > self.after:
                out = out * float("nan")
        return out


def test_nan_injection_stops_early_between_evaluations(blobs: ClassificationSplits) -> None:
    model = _PoisonAfter(small_mlp(blobs), after=7)
    config = cpu_config(epochs=20, batch_size=16, nan_check_interval=5)
    total = 20 * (len(blobs.train_y) // 16)
    with pytest.raises(TrainingDiverged, match="diverged") as info:
        train(model, blobs, config)
    assert info.value.step == 10  # First probe after the poisoned step 8.
    assert info.value.step < total
    assert isinstance(info.value, TrainingFailed) and "lr=0.01" in str(info.value)


def test_nan_detected_at_evaluation_without_probe(blobs: ClassificationSplits) -> None:
    model = _PoisonAfter(small_mlp(blobs), after=3)
    config = cpu_config(max_steps=100, eval_interval=20, nan_check_interval=0)
    with pytest.raises(TrainingDiverged) as info:
        train(model, blobs, config)
    assert info.value.step == 20 and math.isnan(info.value.loss)


def test_real_divergence_with_huge_weight_decay(blobs: ClassificationSplits) -> None:
    # SGD with lr * weight_decay = 10 multiplies the weights by -9 per step: overflow to inf.
    config = cpu_config(optimizer="sgd", lr=1.0, weight_decay=10.0, epochs=10, batch_size=16)
    with pytest.raises(TrainingDiverged):
        train(small_mlp(blobs), blobs, config)


def _first_update_norm(data: ClassificationSplits, grad_clip: float | None) -> float:
    """Norm of all parameter changes made by one plain SGD step (lr 1, no momentum/decay)."""
    model = small_mlp(data)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    train(model, data, cpu_config(optimizer="sgd", lr=1.0, max_steps=1, grad_clip=grad_clip))
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    return float((after - before).norm())


def test_grad_clip_bounds_the_global_gradient_norm(blobs: ClassificationSplits) -> None:
    # With lr 1 an SGD step moves the parameters by exactly the (clipped) gradient.
    unclipped = _first_update_norm(blobs, None)
    assert unclipped > 0.1
    assert _first_update_norm(blobs, 1e-3) == pytest.approx(1e-3, rel=1e-3)
    assert _first_update_norm(blobs, 0.05) == pytest.approx(0.05, rel=1e-3)
    # A bound above the gradient norm leaves the step alone.
    assert _first_update_norm(blobs, 100.0) == pytest.approx(unclipped, rel=1e-6)


def test_out_of_memory_is_converted_and_releases_grads(
    blobs: ClassificationSplits, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = small_mlp(blobs)
    calls = {"n": 0}
    original = MLP.forward

    def forward(self: MLP, x: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return original(self, x)

    monkeypatch.setattr(MLP, "forward", forward)
    with pytest.raises(TrialOutOfMemory, match="Tried to allocate 20.00 GiB") as info:
        train(model, blobs, cpu_config(epochs=1))
    assert isinstance(info.value, TrainingFailed)
    assert info.value.__context__ is None  # The OOM traceback (and its tensors) is dropped.
    assert all(p.grad is None for p in model.parameters())


def test_config_validation_names_arguments() -> None:
    with pytest.raises(
        ValueError, match=r"`optimizer` must be one of \('sgd', 'adam', 'adamw'\), got 'rmsprop'"
    ):
        TrainConfig(optimizer="rmsprop", epochs=1)
    with pytest.raises(ValueError, match=r"`lr` must be a finite number > 0, got 0\.0"):
        TrainConfig(lr=0.0, epochs=1)
    with pytest.raises(
        ValueError, match=r"`momentum` must be a finite number in \[0, 1\), got 1\.0"
    ):
        TrainConfig(momentum=1.0, epochs=1)
    with pytest.raises(ValueError, match="`epochs`, `max_steps` or `time_budget_s`"):
        TrainConfig()
    with pytest.raises(
        ValueError, match=r"`scheduler='cosine'` needs `epochs` or `max_steps` as its horizon"
    ):
        TrainConfig(scheduler="cosine", time_budget_s=5.0)
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1, got 0"):
        TrainConfig(batch_size=0, epochs=1)


def test_train_names_a_wrong_data_argument(blobs: ClassificationSplits) -> None:
    model = small_mlp(blobs)
    with pytest.raises(ValueError, match="`data` must be ClassificationSplits or TextSplits"):
        train(model, (blobs.train_x, blobs.train_y), cpu_config(epochs=1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`task` must be one of"):
        train(model, blobs, cpu_config(epochs=1), task="regression")
    with pytest.raises(ValueError, match="`arch` must be an Architecture, got list"):
        MLP([blobs.n_features, 4, blobs.n_classes])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs, attr, expected",
    [
        ({"epochs": np.int64(2)}, "epochs", 2),
        ({"epochs": 3.0}, "epochs", 3),
        ({"epochs": 1, "batch_size": np.int32(16)}, "batch_size", 16),
        ({"epochs": 1, "lr": np.float32(0.5)}, "lr", 0.5),
        ({"max_steps": 10, "time_budget_s": 5}, "time_budget_s", 5.0),
        ({"epochs": 1, "grad_clip": np.float64(1.0)}, "grad_clip", 1.0),
        ({"epochs": 1, "betas": [np.float64(0.5), 0.75]}, "betas", (0.5, 0.75)),
        ({"epochs": 1, "seed": 3.0}, "seed", 3),
        ({"epochs": 1, "seed": -3}, "seed", -3),  # torch, numpy (mod 2**32) and random take it
        ({"epochs": 1, "stop_at_val_loss": np.float32(0.5)}, "stop_at_val_loss", 0.5),
    ],
)
def test_config_stores_checked_values_as_python_numbers(
    kwargs: dict[str, object], attr: str, expected: object
) -> None:
    value = getattr(TrainConfig(**kwargs), attr)  # type: ignore[arg-type]
    assert value == expected and type(value) is type(expected)
    if isinstance(value, tuple):
        assert all(type(v) is float for v in value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": math.nan}, r"`lr` must be a finite number > 0, got nan\."),
        ({"lr": "0.1"}, r"`lr` must be a finite number > 0, got '0\.1'\."),
        ({"weight_decay": math.inf}, r"`weight_decay` must be a finite number >= 0, got inf\."),
        ({"time_budget_s": math.inf}, r"`time_budget_s` must be None or a finite number > 0"),
        ({"batch_size": True}, r"`batch_size` must be an integer >= 1, got True\."),
        ({"max_steps": 2.5}, r"`max_steps` must be None or an integer >= 1, got 2\.5\."),
        ({"optimizer": "rmsprop"}, r"`optimizer` must be one of \('sgd', 'adam', 'adamw'\)"),
        ({"betas": (0.9, math.nan)}, r"`betas\[1\]` must be a finite number in \[0, 1\)"),
        ({"betas": 0.9}, r"`betas` must be a pair of numbers"),
        ({"evals_per_epoch": 0}, r"`evals_per_epoch` must be an integer >= 1, got 0\."),
        ({"seed": 2**64}, r"`seed` must be an integer in \[-9223372036854775808, 1844"),
        ({"seed": 2.5}, r"`seed` must be an integer in"),
        ({"stop_at_val_loss": "0.5"}, r"`stop_at_val_loss` must be None or a finite number"),
        ({"stop_at_val_loss": math.nan}, r"`stop_at_val_loss` must be None or a finite number"),
    ],
)
def test_config_refuses_non_finite_and_mistyped_values(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{"epochs": 1, **kwargs})  # type: ignore[arg-type]
