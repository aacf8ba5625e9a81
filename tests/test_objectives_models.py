from __future__ import annotations

from collections.abc import Callable
import dataclasses
import json
import math

from evo_testing import assert_names_rule
import numpy as np
import pytest
import torch
from torch import nn

from optuna_evo.architecture import ACTIVATIONS
from optuna_evo.architecture import Architecture
from optuna_evo.objectives.models import MLP
from optuna_evo.objectives.models import CharTransformer
from optuna_evo.objectives.models import CharTransformerConfig
from optuna_evo.objectives.models import SeedCNN
from optuna_evo.objectives.models import count_parameters
from optuna_evo.objectives.models import make_activation

# --- Architecture -------------------------------------------------------------------------


def test_architecture_json_round_trip() -> None:
    arch = Architecture(
        widths=[784, 256, 128, 256, 10],
        activations=["relu", "gelu", "tanh"],
        dropout=0.25,
        skips=[(1, 3), (0, 2)],
        blocks=["residual", "linear", "residual"],
    )
    assert arch.n_hidden == 3 and arch.n_inputs == 784 and arch.n_outputs == 10
    assert arch.skips == [(0, 2), (1, 3)]  # Stored sorted.
    restored = Architecture.from_dict(json.loads(json.dumps(arch.to_dict())))
    assert restored == arch
    assert hash(restored) == hash(arch)
    assert restored.skips == [(0, 2), (1, 3)]


def test_architecture_is_immutable_and_copies_inputs() -> None:
    widths = [4, 8, 2]
    arch = Architecture(widths=widths, activations="relu")
    widths[1] = 99
    assert arch.widths == [4, 8, 2]
    assert arch.activations == ["relu"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        arch.dropout = 0.5  # type: ignore[misc]
    wider = arch.replace(widths=[4, 16, 2])
    assert wider.widths == [4, 16, 2] and arch.widths == [4, 8, 2]
    assert len({arch, Architecture([4, 8, 2], ["relu"]), wider}) == 2


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"widths": [10]}, "`widths` must have at least 2 entries"),
        ({"widths": "10-5-2"}, "`widths` must be a list"),
        ({"widths": [10, 0, 2], "activations": ["relu"]}, r"`widths\[1\]`"),
        ({"widths": [10, 5, 2], "activations": ["swish"]}, r"`activations\[0\]`"),
        ({"widths": [10, 5, 2], "activations": ["relu", "relu"]}, "`activations` must have one"),
        ({"widths": [10, 5, 2], "activations": "relu", "dropout": 1.0}, "`dropout`"),
        ({"widths": [10, 5, 5, 2], "activations": "relu", "skips": 3}, "`skips` must be a list"),
        ({"widths": [10, 5, 5, 2], "activations": "relu", "skips": [(0, 1)]}, r"`skips\[0\]`"),
        ({"widths": [10, 5, 5, 2], "activations": "relu", "skips": [(0, 3)]}, r"`skips\[0\]`"),
        ({"widths": [10, 5, 5, 2], "activations": "relu", "skips": [(0, 2), (0, 2)]}, "twice"),
        ({"widths": [10, 5, 2], "activations": "relu", "blocks": ["conv"]}, r"`blocks\[0\]`"),
        ({"widths": [10, 5, 2], "activations": "relu", "blocks": ["linear"] * 2}, "`blocks` must"),
    ],
)
def test_architecture_validation_names_the_argument(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument) as info:
        Architecture(**kwargs)
    assert_names_rule(info.value)


def test_architecture_blocks_default_to_linear() -> None:
    arch = Architecture([4, 8, 8, 2], "relu")
    assert arch.blocks == ["linear", "linear"]
    assert arch == Architecture([4, 8, 8, 2], "relu", blocks="linear")
    assert arch != arch.replace(blocks=["linear", "residual"])
    stored_before_blocks = {"widths": [4, 8, 8, 2], "activations": ["relu", "relu"]}
    assert Architecture.from_dict(stored_before_blocks) == arch


def test_architecture_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(
        ValueError, match=r"`data` has unknown keys \['depth'\]; allowed: "
    ) as info:
        Architecture.from_dict({"widths": [2, 2], "depth": 3})
    assert_names_rule(info.value)
    with pytest.raises(ValueError, match="`data` must contain 'widths'"):
        Architecture.from_dict({"activations": ["relu"]})
    with pytest.raises(ValueError, match="`data` must be a mapping, got list"):
        Architecture.from_dict([[2, 2]])  # type: ignore[arg-type]


# --- MLP ----------------------------------------------------------------------------------


def test_mlp_shapes_and_parameter_count() -> None:
    model = MLP(Architecture([784, 128, 10], "relu"))
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 10)
    assert model.n_params == 784 * 128 + 128 + 128 * 10 + 10
    assert count_parameters(model) == model.n_params


def test_mlp_skip_projection_only_where_widths_differ() -> None:
    base = Architecture([6, 8, 8, 4, 3], "relu")
    same = MLP(base.replace(skips=[(0, 2)]))  # Hidden 0 (8) -> block 2 input (8): identity.
    projected = MLP(base.replace(skips=[(0, 3)]))  # Hidden 0 (8) -> block 3 input (4).
    plain = MLP(base)
    assert same.n_params == plain.n_params
    assert projected.n_params == plain.n_params + 8 * 4
    assert isinstance(projected.skip_projections["0_3"], nn.Linear)
    assert projected.skip_projections["0_3"].bias is None


def test_mlp_skip_adds_hidden_output_to_later_block_input() -> None:
    torch.manual_seed(0)
    model = MLP(Architecture([4, 8, 8, 3], ["tanh", "relu"], skips=[(0, 2)]))
    x = torch.randn(7, 4)
    lin = model.linears
    h0 = torch.tanh(lin[0](x))
    h1 = torch.relu(lin[1](h0))
    expected = lin[2](h1 + h0)
    torch.testing.assert_close(model(x), expected)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_every_activation_trains(activation: str) -> None:
    model = MLP(Architecture([3, 5, 2], activation, dropout=0.1))
    out = model(torch.randn(4, 3))
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_make_activation_computes_the_function_of_its_name(activation: str) -> None:
    # Negative, zero and positive inputs: every pair of these functions differs somewhere here.
    x = torch.linspace(-3.0, 3.0, 13)
    expected = getattr(nn.functional, activation)(x)
    torch.testing.assert_close(make_activation(activation)(x), expected)


def test_mlp_rejects_non_architecture() -> None:
    with pytest.raises(ValueError, match="arch"):
        MLP([784, 10])  # type: ignore[arg-type]


# --- Seed CNN -----------------------------------------------------------------------------


def test_seed_cnn_matches_pytorch_examples() -> None:
    model = SeedCNN()
    assert model.n_params == 1_199_882
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_seed_cnn_width_knobs() -> None:
    c1, c2, hidden = 8, 16, 32
    model = SeedCNN(c1=c1, c2=c2, hidden=hidden)
    expected = (9 * c1 + c1) + (9 * c1 * c2 + c2) + (c2 * 144 * hidden + hidden) + hidden * 10 + 10
    assert model.n_params == expected
    with pytest.raises(ValueError, match="c2"):
        SeedCNN(c2=0)


# --- CharTransformer ----------------------------------------------------------------------


def tiny_config(**overrides: object) -> CharTransformerConfig:
    kwargs = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
    kwargs.update(overrides)
    return CharTransformerConfig(**kwargs)  # type: ignore[arg-type]


def test_char_transformer_shapes_tying_and_count() -> None:
    cfg = tiny_config()
    model = CharTransformer(cfg)
    assert model(torch.randint(0, 11, (3, 8))).shape == (3, 8, 11)
    assert model.wte.weight is model.lm_head.weight
    v, t, c, n = cfg.vocab_size, cfg.block_size, cfg.n_embd, cfg.n_layer
    # Tied embedding once, positions, per block 12 C^2 weights + 2 LayerNorms, final LayerNorm.
    assert model.n_params == v * c + t * c + n * (12 * c * c + 2 * c) + c


def test_char_transformer_is_causal() -> None:
    torch.manual_seed(0)
    model = CharTransformer(tiny_config()).eval()
    idx = torch.randint(0, 11, (1, 8))
    changed = idx.clone()
    changed[0, 5] = (idx[0, 5] + 1) % 11
    with torch.no_grad():
        a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_char_transformer_generate_and_limits() -> None:
    model = CharTransformer(tiny_config()).eval()
    out = model.generate(torch.zeros(2, 1, dtype=torch.long), max_new_tokens=12, top_k=3)
    assert out.shape == (2, 13)
    assert int(out.max()) < 11
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_char_transformer_generate_with_top_k_1_is_greedy() -> None:
    torch.manual_seed(0)
    model = CharTransformer(tiny_config()).eval()
    start = torch.tensor([[0], [5]])
    greedy = start
    with torch.no_grad():
        for _ in range(7):
            next_id = model(greedy)[:, -1, :].argmax(dim=-1, keepdim=True)
            greedy = torch.cat((greedy, next_id), dim=1)
        # A high temperature would make plain sampling nearly uniform over the 11 tokens:
        # only the top-1 cut keeps it greedy, whatever the seed.
        for seed in range(3):
            torch.manual_seed(seed)
            out = model.generate(start, max_new_tokens=7, temperature=50.0, top_k=1)
            assert torch.equal(out, greedy), seed


def test_char_transformer_config_validation() -> None:
    with pytest.raises(ValueError, match="divisible"):
        tiny_config(n_embd=16, n_head=6)
    with pytest.raises(ValueError, match="dropout"):
        tiny_config(dropout=1.5)


def test_count_parameters_trainable_only() -> None:
    model = MLP(Architecture([3, 4, 2], "relu"))
    model.linears[0].weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == model.n_params - 12


def test_model_arguments_accept_numpy_and_integral_floats() -> None:
    config = tiny_config(n_embd=np.int64(16), block_size=8.0, dropout=np.float32(0.25))
    assert (config.n_embd, config.block_size, config.dropout) == (16, 8, 0.25)
    assert type(config.n_embd) is int and type(config.block_size) is int
    assert type(config.dropout) is float
    assert SeedCNN(c1=np.int64(8), c2=16.0, hidden=32).n_params == SeedCNN(8, 16, 32).n_params


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: tiny_config(dropout=math.nan), r"`dropout` must be a finite number in \[0, 1\)"),
        (lambda: tiny_config(n_layer=True), r"`n_layer` must be an integer >= 1, got True\."),
        (lambda: tiny_config(n_embd=16, n_head=6), r"`n_embd` must be divisible by `n_head`"),
        (lambda: SeedCNN(hidden=2.5), r"`hidden` must be an integer >= 1, got 2\.5\."),
        (lambda: SeedCNN(dropout2=math.inf), r"`dropout2` must be a finite number"),
        (lambda: make_activation("swish"), r"`activation` must be one of \('relu', "),
    ],
)
def test_model_arguments_are_refused_with_one_wording(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make()
