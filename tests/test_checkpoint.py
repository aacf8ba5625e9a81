"""Tests of optuna_evo.checkpoint: children continue from their parent's weights."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
import struct
from typing import Any
import warnings

import numpy as np
import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.exceptions import ExperimentalWarning
import pytest
import torch
from torch import nn

import optuna_evo
from optuna_evo import GeneticSampler
from optuna_evo import checkpoint
from optuna_evo.checkpoint import CheckpointError
from optuna_evo.samplers._population import LINEAGE_KEY
from optuna_evo.samplers._population import Lineage

optuna.logging.set_verbosity(optuna.logging.WARNING)

STEPS = 15


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    x = torch.randn(64, 4, generator=g)
    y = torch.sin(x @ torch.tensor([[1.5], [-2.0], [0.5], [1.0]])) + 0.5
    return x, y


def _mlp(seed: int, hidden: int = 16) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Linear(hidden, 1))


def _loss(model: nn.Module) -> float:
    x, y = _data()
    with torch.no_grad():
        return float(nn.functional.mse_loss(model(x), y))


def _train(model: nn.Module, lr: float) -> float:
    x, y = _data()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(STEPS):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return _loss(model)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _adopt(study: optuna.Study, parent: optuna.Trial) -> optuna.Trial:
    """Ask a new trial whose lineage (as an optuna-evo sampler writes it) names ``parent``."""
    child = study.ask()
    info = Lineage(1, "mutant", (parent._trial_id,), (parent.number,))
    child.storage.set_trial_system_attr(child._trial_id, LINEAGE_KEY, info.to_dict())
    return child


def _saved(study: optuna.Study, model: nn.Module, store: Any, **kwargs: Any) -> optuna.Trial:
    """Run a parent trial that saves ``model``; return a child trial of it."""
    parent = study.ask()
    checkpoint.save(parent, model, store, **kwargs)
    study.tell(parent, 1.0)
    return _adopt(study, parent)


class MemoryStore:
    """An artifact store that keeps everything in a dict."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def open_reader(self, artifact_id: str) -> io.BytesIO:
        if artifact_id not in self.blobs:
            raise ArtifactNotFound(artifact_id)
        return io.BytesIO(self.blobs[artifact_id])

    def write(self, artifact_id: str, content_body: Any) -> None:
        self.blobs[artifact_id] = content_body.read()

    def remove(self, artifact_id: str) -> None:
        self.blobs.pop(artifact_id)


class _Payload:
    """Unpickling it creates a folder: proof that a checkpoint was never unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return os.mkdir, (str(self.marker),)


# -- through a real GeneticSampler study --------------------------------------------------


@pytest.fixture(scope="module")
def ga_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    store = FileSystemArtifactStore(tmp_path_factory.mktemp("artifacts"))
    loaded: dict[int, dict[str, torch.Tensor]] = {}
    reports: dict[int, checkpoint.LoadReport | None] = {}
    losses: dict[int, tuple[float, float]] = {}  # (fresh init, right after load_parent)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 3e-3, 3e-2, log=True)
        model = _mlp(trial.number)
        fresh = _loss(model)
        report = checkpoint.load_parent(trial, model, store)
        reports[trial.number] = report
        loaded[trial.number] = _state(model)
        losses[trial.number] = (fresh, _loss(model))
        steps = (report.metadata["steps"] if report else 0) + STEPS
        trial.set_user_attr("steps", steps)
        loss = _train(model, lr)
        checkpoint.save(trial, model, store, metadata={"steps": steps})
        return loss

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        sampler = GeneticSampler(population_size=2, n_elites=1, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=10)
    return {"study": study, "store": store, "loaded": loaded, "reports": reports, "losses": losses}


def _children(study: optuna.Study) -> list[tuple[optuna.trial.FrozenTrial, Any]]:
    out = []
    for t in study.trials:
        info = optuna_evo.lineage(t, study)
        assert info is not None
        if info.generation >= 1:
            out.append((t, optuna_evo.parents(t, study)[0]))
    return out


def test_child_starts_from_its_parents_saved_weights(ga_run: dict[str, Any]) -> None:
    study, store = ga_run["study"], ga_run["store"]
    children = _children(study)
    assert len(children) >= 6
    assert {optuna_evo.lineage(t).role for t, _ in children} >= {"elite", "mutant"}
    for t in study.trials:
        if not optuna_evo.parents(t, study):
            assert ga_run["reports"][t.number] is None
    for child, parent in children:
        report = ga_run["reports"][child.number]
        assert report is not None and report.exact
        assert report.parent_number == parent.number
        assert report.copied == ("0.weight", "0.bias", "2.weight", "2.bias")
        expected = _mlp(10_000)
        checkpoint.load(parent, expected, store, study)
        _assert_same(ga_run["loaded"][child.number], _state(expected))
        # Training continues across generations: metadata carries the step count.
        assert child.user_attrs["steps"] == parent.user_attrs["steps"] + STEPS


def test_child_starts_at_a_lower_loss_than_a_fresh_model(ga_run: dict[str, Any]) -> None:
    children = _children(ga_run["study"])
    for child, parent in children:
        fresh, after_load = ga_run["losses"][child.number]
        assert after_load < 0.8 * fresh, (child.number, fresh, after_load)
        assert after_load == pytest.approx(parent.value, rel=1e-5)


def test_load_best_trial_after_the_study(ga_run: dict[str, Any]) -> None:
    study = ga_run["study"]
    model = _mlp(10_000)
    report = checkpoint.load(study.best_trial, model, ga_run["store"])
    assert report.exact and report.parent_number == study.best_trial.number
    assert _loss(model) == pytest.approx(study.best_value, rel=1e-5)


# -- shapes -------------------------------------------------------------------------------


def test_shape_change_copies_the_overlap_and_keeps_fresh_init(tmp_path: Path) -> None:
    store = FileSystemArtifactStore(tmp_path)
    torch.manual_seed(0)
    parent = nn.ModuleDict(
        {"inp": nn.Linear(4, 8), "hidden": nn.Linear(8, 8), "extra": nn.Linear(8, 8)}
    )
    child = _saved(optuna.create_study(), parent, store)
    torch.manual_seed(1)
    model = nn.ModuleDict({"inp": nn.Linear(4, 12), "hidden": nn.Linear(12, 6)})
    model["out"] = nn.Linear(6, 1)
    init = _state(model)

    report = checkpoint.load_parent(child, model, store)

    assert report is not None and not report.exact
    assert report.copied == ()
    assert set(report.partial) == {"inp.weight", "inp.bias", "hidden.weight", "hidden.bias"}
    assert set(report.unexpected) == {"extra.weight", "extra.bias"}
    assert set(report.missing) == {"out.weight", "out.bias"}
    w = model["inp"].weight.detach()
    assert torch.equal(w[:8], parent["inp"].weight.detach())
    assert torch.equal(w[8:], init["inp.weight"][8:])
    assert torch.equal(model["inp"].bias.detach()[:8], parent["inp"].bias.detach())
    assert torch.equal(model["inp"].bias.detach()[8:], init["inp.bias"][8:])
    h = model["hidden"].weight.detach()  # (6, 12) from (8, 8): overlap [:6, :8]
    assert torch.equal(h[:, :8], parent["hidden"].weight.detach()[:6])
    assert torch.equal(h[:, 8:], init["hidden.weight"][:, 8:])
    assert torch.equal(model["hidden"].bias.detach()[:6], parent["hidden"].bias.detach()[:6])
    assert torch.equal(model["out"].weight.detach(), init["out.weight"])


def test_different_number_of_dims_is_skipped(tmp_path: Path) -> None:
    store = FileSystemArtifactStore(tmp_path)
    child = _saved(optuna.create_study(), {"weight": torch.ones(3), "bias": torch.ones(2)}, store)
    model = nn.Linear(3, 2)
    init = _state(model)
    report = checkpoint.load_parent(child, model, store)
    assert report is not None
    assert report.skipped == ("weight",) and report.copied == ("bias",)
    assert torch.equal(model.weight.detach(), init["weight"])
    assert torch.equal(model.bias.detach(), torch.ones(2))


def test_strict_raises_on_mismatch_and_leaves_the_model_untouched(tmp_path: Path) -> None:
    store = FileSystemArtifactStore(tmp_path)
    child = _saved(optuna.create_study(), nn.Linear(4, 8), store)
    model = nn.Linear(4, 12)
    init = _state(model)
    with pytest.raises(CheckpointError, match=r"trial 0 does not fit.*weight"):
        checkpoint.load_parent(child, model, store, strict=True)
    _assert_same(_state(model), init)
    same = nn.Linear(4, 8)
    report = checkpoint.load_parent(child, same, store, strict=True)
    assert report is not None and report.exact


# -- noise --------------------------------------------------------------------------------


def _noisy_model(out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(200, out), nn.BatchNorm1d(out))


def test_noise_has_the_requested_std_on_loaded_params_only(tmp_path: Path) -> None:
    store = FileSystemArtifactStore(tmp_path)
    torch.manual_seed(0)
    parent = _noisy_model(100)
    parent[1].running_mean.fill_(3.0)
    saved = _state(parent)
    child = _saved(optuna.create_study(), parent, store)

    def load(seed: int) -> tuple[nn.Module, dict[str, torch.Tensor]]:
        torch.manual_seed(1)
        model = _noisy_model(120)  # 20 more units: their init must stay noise-free
        init = _state(model)
        gen = torch.Generator().manual_seed(seed)
        checkpoint.load_parent(child, model, store, noise_std=0.05, generator=gen)
        return model, init

    model, init = load(7)
    diff = model[0].weight.detach()[:100] - saved["0.weight"]
    assert diff.std().item() == pytest.approx(0.05, rel=0.05)
    assert abs(diff.mean().item()) < 0.005
    assert torch.equal(model[0].weight.detach()[100:], init["0.weight"][100:])
    assert torch.equal(model[0].bias.detach()[100:], init["0.bias"][100:])
    # Buffers are loaded without noise.
    assert torch.equal(model[1].running_mean[:100], torch.full((100,), 3.0))
    assert torch.equal(model[1].num_batches_tracked, saved["1.num_batches_tracked"])
    # Same generator seed, same noise; another seed, other noise.
    _assert_same(_state(load(7)[0]), _state(model))
    assert not torch.equal(load(8)[0][0].weight, model[0].weight)


def test_default_noise_differs_between_trials_that_reseed_torch(tmp_path: Path) -> None:
    # Objectives reseed torch's global stream per trial (TrainConfig.seed); the default noise
    # must still differ between two mutants of one parent, and repeat for the same trial.
    store = FileSystemArtifactStore(tmp_path)
    study = optuna.create_study(study_name="noise")
    parent = study.ask()
    checkpoint.save(parent, _noisy_model(50), store)
    study.tell(parent, 1.0)

    def mutant_weights(child: optuna.Trial) -> torch.Tensor:
        torch.manual_seed(0)  # what every trial's objective does first
        model = _noisy_model(50)
        checkpoint.load_parent(child, model, store, noise_std=0.1)
        return model[0].weight.detach().clone()

    first, second = _adopt(study, parent), _adopt(study, parent)
    assert not torch.equal(mutant_weights(first), mutant_weights(second))
    assert torch.equal(mutant_weights(first), mutant_weights(first))


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), True, "0.1"])
def test_bad_noise_std_raises_value_error(tmp_path: Path, bad: Any) -> None:
    store = FileSystemArtifactStore(tmp_path)
    child = _saved(optuna.create_study(), nn.Linear(2, 2), store)
    model = nn.Linear(2, 2)
    init = _state(model)
    with pytest.raises(ValueError, match="noise_std"):
        checkpoint.load_parent(child, model, store, noise_std=bad)
    _assert_same(_state(model), init)


@pytest.mark.parametrize("number", [1, np.int64(1), np.float32(1.0)])
def test_noise_std_accepts_any_real_number_as_a_float(tmp_path: Path, number: Any) -> None:
    store = FileSystemArtifactStore(tmp_path)
    child = _saved(optuna.create_study(), nn.Linear(8, 8), store)
    loaded = []
    for noise_std in (number, 1.0):
        model = nn.Linear(8, 8)
        gen = torch.Generator().manual_seed(0)
        assert checkpoint.load_parent(child, model, store, noise_std=noise_std, generator=gen)
        loaded.append(_state(model))
    _assert_same(loaded[0], loaded[1])


def test_bad_argument_types(tmp_path: Path) -> None:
    store = FileSystemArtifactStore(tmp_path)
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(TypeError, match="artifact_store"):
        checkpoint.save(trial, nn.Linear(2, 2), artifact_store=str(tmp_path))
    with pytest.raises(TypeError, match="model_or_state_dict"):
        checkpoint.save(trial, [torch.ones(2)], store)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'extra'"):
        checkpoint.save(trial, {"w": torch.ones(2), "extra": 3}, store)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="metadata"):
        checkpoint.save(trial, nn.Linear(2, 2), store, metadata={"f": object()})
    with pytest.raises(TypeError, match="model"):
        checkpoint.load_parent(trial, {"w": torch.ones(2)}, store)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="generator"):
        checkpoint.load_parent(trial, nn.Linear(2, 2), store, generator=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="trial"):
        checkpoint.save(optuna.trial.FixedTrial({}), nn.Linear(2, 2), store)  # type: ignore[arg-type]


# -- stores and files ---------------------------------------------------------------------


def test_any_artifact_store_works(tmp_path: Path) -> None:
    store = MemoryStore()
    torch.manual_seed(0)
    parent = _mlp(0)
    child = _saved(optuna.create_study(), parent, store, metadata={"epoch": 3})
    assert len(store.blobs) == 1
    model = _mlp(1)
    report = checkpoint.load_parent(child, model, store)
    assert report is not None and report.exact and report.metadata == {"epoch": 3}
    _assert_same(_state(model), _state(parent))
    # A worker with its own store cannot see the checkpoint: a clear error, not a silent skip.
    with pytest.raises(CheckpointError, match=r"trial 0 is not in the artifact store"):
        checkpoint.load_parent(child, _mlp(1), MemoryStore())


def test_checkpoint_file_is_safetensors(tmp_path: Path) -> None:
    store = FileSystemArtifactStore(tmp_path)
    study = optuna.create_study()
    trial = study.ask()
    artifact_id = checkpoint.save(trial, _mlp(0), store, metadata={"epoch": 1})
    raw = (tmp_path / artifact_id).read_bytes()
    assert not raw.startswith((b"\x80", b"PK"))  # neither a pickle nor torch.save's zip
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    assert header["0.weight"]["shape"] == [16, 4]
    info = json.loads(header["__metadata__"]["optuna_evo"])
    assert info["trial_number"] == 0 and info["metadata"] == {"epoch": 1}
    assert info["optuna_evo_version"] == optuna_evo.__version__
    (meta,) = optuna.artifacts.get_all_artifact_meta(trial)
    assert meta.artifact_id == artifact_id and meta.filename == "checkpoint.safetensors"


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x13\x37" * 500)


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _pickled(path: Path) -> None:
    torch.save({"0.weight": _Payload(path.parent / "unpickled")}, path)


@pytest.mark.parametrize("corrupt", [_garbage, _truncated, _pickled])
def test_corrupted_checkpoint_raises_checkpoint_error(tmp_path: Path, corrupt: Any) -> None:
    store = FileSystemArtifactStore(tmp_path)
    study = optuna.create_study()
    parent = study.ask()
    artifact_id = checkpoint.save(parent, _mlp(0), store)
    study.tell(parent, 1.0)
    corrupt(tmp_path / artifact_id)
    child = _adopt(study, parent)
    model = _mlp(1)
    init = _state(model)
    with pytest.raises(CheckpointError, match=r"checkpoint of trial 0 is unreadable"):
        checkpoint.load_parent(child, model, store)
    with pytest.raises(CheckpointError, match=r"trial 0 is unreadable"):
        checkpoint.load(study.trials[0], model, store)
    _assert_same(_state(model), init)
    assert not (tmp_path / "unpickled").exists()


def test_default_store_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared" / "artifacts"
    monkeypatch.setenv(checkpoint.ARTIFACT_DIR_ENV, str(shared))
    child = _saved(optuna.create_study(), _mlp(0), None)
    assert len(list(shared.iterdir())) == 1
    model = _mlp(1)
    assert checkpoint.load_parent(child, model) is not None
    _assert_same(_state(model), _state(_mlp(0)))

    monkeypatch.delenv(checkpoint.ARTIFACT_DIR_ENV)
    monkeypatch.chdir(tmp_path)
    _saved(optuna.create_study(), _mlp(0), None)
    assert len(list((tmp_path / "optuna-evo-artifacts").iterdir())) == 1


# -- no checkpoint to load ------------------------------------------------------------------


def test_no_parent_or_no_checkpoint_gives_none(tmp_path: Path) -> None:
    store = FileSystemArtifactStore(tmp_path)
    study = optuna.create_study()
    orphan = study.ask()  # no optuna-evo sampler: no lineage
    model = _mlp(1)
    init = _state(model)
    assert checkpoint.load_parent(orphan, model, store) is None
    study.tell(orphan, 1.0)  # finished without saving
    child = _adopt(study, orphan)
    assert checkpoint.load_parent(child, model, store) is None
    _assert_same(_state(model), init)
    with pytest.raises(CheckpointError, match="trial 0 saved no checkpoint"):
        checkpoint.load(study.trials[0], model, store)


def test_newest_checkpoint_wins(tmp_path: Path) -> None:
    store = FileSystemArtifactStore(tmp_path)
    study = optuna.create_study()
    trial = study.ask()
    for value in (1.0, 2.0, 3.0):
        checkpoint.save(trial, {"w": torch.full((2,), value)}, store, metadata={"v": value})
    model = nn.Module()
    model.w = nn.Parameter(torch.zeros(2))
    report = checkpoint.load(trial, model, store)
    assert report.metadata == {"v": 3.0}
    assert torch.equal(model.w.detach(), torch.full((2,), 3.0))


def test_tied_and_non_contiguous_tensors(tmp_path: Path) -> None:
    store = FileSystemArtifactStore(tmp_path)

    def tied(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Embedding(50, 40), nn.Linear(40, 50, bias=False))
        model[1].weight = model[0].weight
        return model

    parent = tied(0)
    child = _saved(optuna.create_study(), parent, store)
    model = tied(1)
    gen = torch.Generator().manual_seed(0)
    report = checkpoint.load_parent(child, model, store, noise_std=0.1, generator=gen)
    assert report is not None and report.exact
    assert model[1].weight is model[0].weight  # still tied
    diff = model[0].weight.detach() - parent[0].weight.detach()
    assert diff.std().item() == pytest.approx(0.1, rel=0.1)  # noise added once, not twice

    child = _saved(optuna.create_study(), {"w": torch.arange(6.0).reshape(2, 3).t()}, store)
    model = nn.Module()
    model.w = nn.Parameter(torch.zeros(3, 2))
    checkpoint.load_parent(child, model, store)
    assert torch.equal(model.w.detach(), torch.arange(6.0).reshape(2, 3).t())


# -- architectures that changed depth, stacked tensors, wrapped models ------------------------


def _relu_mlp(widths: list[int], seed: int, blocks: list[str] | None = None) -> nn.Module:
    from optuna_evo.objectives import MLP

    torch.manual_seed(seed)
    return MLP(optuna_evo.Architecture(widths, "relu", blocks=blocks or []))


def _outputs(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.randn(32, 6, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize(
    "child_widths, blocks, added, atol",
    [
        ([6, 8, 8, 4, 3], None, 1, 1e-6),  # a square linear layer added after the first
        ([6, 8, 4, 4, 3], None, 2, 1e-6),  # ... added after the second
        # A residual one adds 1e-3 x its fresh output: measured error 1.6e-4 on outputs ~0.4.
        ([6, 8, 8, 4, 3], ["linear", "residual", "linear"], 1, 1e-3),
    ],
)
def test_a_child_with_an_added_layer_starts_from_its_parents_function(
    tmp_path: Path, child_widths: list[int], blocks: list[str] | None, added: int, atol: float
) -> None:
    # Layer names hold positions: without alignment the parent's output layer landed in the
    # child's new hidden layer, and a random layer sat in the middle.
    study = optuna.create_study()
    store = FileSystemArtifactStore(str(tmp_path))
    parent = _relu_mlp([6, 8, 4, 3], seed=0)
    child = _relu_mlp(child_widths, seed=1, blocks=blocks)
    fresh = child.linears[added].weight.detach().clone()
    report = checkpoint.load_parent(_saved(study, parent, store), child, store)
    assert report is not None
    torch.testing.assert_close(_outputs(child), _outputs(parent), atol=atol, rtol=0)
    # The documented init of the added layer (MLP.inherit_state), exactly: W = I for a linear
    # block, 1e-3 x its fresh weights for a residual one; b = 0 for both.
    layer = child.linears[added]
    expected = fresh * 1e-3 if blocks else torch.eye(fresh.shape[0])
    assert torch.equal(layer.weight.detach(), expected)
    assert torch.equal(layer.bias.detach(), torch.zeros_like(layer.bias))
    # ... and the added layer can learn (an all-zero layer under ReLU gets no gradient).
    child(torch.randn(32, 6)).square().sum().backward()
    assert child.linears[added].weight.grad.abs().sum() > 0


def test_a_child_with_a_removed_layer_keeps_the_others_in_place(tmp_path: Path) -> None:
    study = optuna.create_study()
    store = FileSystemArtifactStore(str(tmp_path))
    parent = _relu_mlp([6, 8, 5, 4, 3], seed=0)
    child = _relu_mlp([6, 8, 4, 3], seed=1)  # the 5-wide layer removed
    checkpoint.load_parent(_saved(study, parent, store), child, store)
    p, c = parent.state_dict(), child.state_dict()
    assert torch.equal(c["linears.0.weight"], p["linears.0.weight"])
    assert torch.equal(c["linears.2.weight"], p["linears.3.weight"])  # the output layer
    # The 4-wide layer now reads 8 inputs instead of 5: its 5 trained columns are copied.
    assert torch.equal(c["linears.1.weight"][:, :5], p["linears.2.weight"])


def test_a_stacked_qkv_projection_of_another_width_is_skipped_not_sliced(tmp_path: Path) -> None:
    from optuna_evo.objectives import CharTransformer
    from optuna_evo.objectives import CharTransformerConfig

    def lm(n_embd: int) -> CharTransformer:
        torch.manual_seed(n_embd)
        config = CharTransformerConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2)
        config.n_embd = n_embd
        return CharTransformer(config)

    study = optuna.create_study()
    store = FileSystemArtifactStore(str(tmp_path))
    child = lm(16)
    fresh = _state(child)
    report = checkpoint.load_parent(_saved(study, lm(32), store), child, store)
    assert report is not None
    stacked = {"blocks.0.attn.c_attn.weight", "blocks.0.attn.c_attn.bias"} & set(fresh)
    assert stacked and stacked <= set(report.skipped)
    for key in stacked:
        assert torch.equal(child.state_dict()[key], fresh[key])
    assert "blocks.0.attn.c_proj.weight" in report.partial  # not stacked: overlap copied


def test_a_compiled_models_checkpoint_loads_into_a_plain_one(tmp_path: Path) -> None:
    # torch.compile's wrapper prefixes every key with "_orig_mod."; nothing matched before.
    study = optuna.create_study()
    store = FileSystemArtifactStore(str(tmp_path))
    parent = _mlp(0)
    wrapped = {f"_orig_mod.{k}": v for k, v in parent.state_dict().items()}
    child = _mlp(1)
    report = checkpoint.load_parent(_saved(study, wrapped, store), child, store)
    assert report is not None and report.exact
    _assert_same(_state(child), _state(parent))


def test_a_checkpoint_that_fits_nothing_is_said_aloud(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    study = optuna.create_study()
    store = FileSystemArtifactStore(str(tmp_path))
    child = _relu_mlp([6, 8, 3], seed=1)  # another model class than the parent's Sequential
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            report = checkpoint.load_parent(_saved(study, _mlp(0), store), child, store)
    finally:
        optuna.logging.set_verbosity(verbosity)
        optuna.logging.disable_propagation()
    assert report is not None and not (report.copied or report.partial)
    assert "fits the model" in caplog.text and "fresh weights" in caplog.text


@pytest.mark.parametrize("parent_skips", [[(0, 2)], [(1, 3)]])
@pytest.mark.parametrize("pos", [1, 2, 3])
def test_an_added_layer_keeps_the_skip_edges_on_their_layers(
    parent_skips: list[tuple[int, int]], pos: int
) -> None:
    # Equal widths leave several matchings; the one that carries the skip edges the mutation
    # moved keeps the parent's function (the earliest one did not: output off by ~1).
    from optuna_evo.architecture import _shift_skips
    from optuna_evo.objectives import MLP

    parent_arch = optuna_evo.Architecture([6, 8, 8, 8, 3], "relu", skips=parent_skips)
    skips = _shift_skips(list(parent_arch.skips), pos, +1, 4)
    child_arch = optuna_evo.Architecture([6, 8, 8, 8, 8, 3], "relu", skips=skips)
    torch.manual_seed(0)
    parent, child = MLP(parent_arch), MLP(child_arch)
    child.load_state_dict(child.inherit_state(parent_arch, parent.state_dict()), strict=False)
    torch.testing.assert_close(_outputs(child), _outputs(parent))
