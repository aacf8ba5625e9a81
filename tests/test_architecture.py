"""Argument checks of Architecture and ArchitectureSpace (the shared rules of _validation)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from optuna_evo.architecture import Architecture
from optuna_evo.architecture import ArchitectureSpace


@pytest.mark.parametrize("to_number", [np.int64, np.int32, float])
def test_architecture_accepts_integral_numbers_as_python_ints(to_number: Any) -> None:
    arch = Architecture(
        [to_number(w) for w in (4, 8, 8, 2)],
        "relu",
        dropout=np.float32(0.5),
        skips=[(to_number(0), to_number(2))],
    )
    assert arch == Architecture([4, 8, 8, 2], "relu", dropout=0.5, skips=[(0, 2)])
    assert hash(arch) == hash(Architecture([4, 8, 8, 2], "relu", dropout=0.5, skips=[(0, 2)]))
    assert {type(w) for w in arch.widths} == {int}
    assert {type(v) for edge in arch.skips for v in edge} == {int}
    assert type(arch.dropout) is float


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"widths": [4, 2.5, 2]}, r"`widths\[1\]` must be an integer >= 1, got 2\.5\."),
        ({"widths": [4, True, 2]}, r"`widths\[1\]`.*got True\."),
        ({"widths": [4, 0, 2]}, r"`widths\[1\]` must be an integer >= 1, got 0\."),
        ({"widths": [4, 8, 2], "activations": ["swish"]}, r"`activations\[0\]` must be one of"),
        ({"widths": [4, 8, 2], "blocks": ["conv"]}, r"`blocks\[0\]` must be one of"),
        ({"widths": [4, 8, 2], "dropout": math.nan}, r"`dropout` .* in \[0, 1\), got nan\."),
        ({"widths": [4, 8, 2], "dropout": 1.0}, r"`dropout` .* in \[0, 1\), got 1\.0\."),
        ({"widths": [4, 8, 2], "dropout": True}, r"`dropout`.*got True\."),
        ({"widths": [4, 8, 8, 2], "skips": [(0, 2.5)]}, r"`skips\[0\]\[1\]`.*got 2\.5\."),
        (
            {"widths": [4, 8, 8, 2], "skips": [(0, 1)]},
            r"`skips\[0\]` must satisfy .*got the skip edge \(0, 1\)",
        ),
    ],
)
def test_architecture_checks_raise_one_wording(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Architecture(**{"activations": "relu", **kwargs})


def test_architecture_from_dict_accepts_integral_floats() -> None:
    stored = {"widths": [4.0, 8.0, 2.0], "activations": ["relu"], "dropout": 0, "skips": []}
    arch = Architecture.from_dict(stored)
    assert arch.widths == [4, 8, 2] and {type(w) for w in arch.widths} == {int}
    assert type(arch.dropout) is float


def test_space_accepts_numpy_bounds_and_flags() -> None:
    space = ArchitectureSpace.from_dict(
        {
            "layers": [[np.int64(4), np.int64(8), np.int64(2)]],
            "min_layers": np.int64(1),
            "max_width": 32.0,
            "skips": np.bool_(True),
        }
    )
    assert (space.min_layers, space.max_width, space.skips) == (1, 32, True)
    assert type(space.min_layers) is int and type(space.max_width) is int
    assert type(space.skips) is bool
    assert space.layers == ((4, 8, 2),) and {type(w) for w in space.layers[0]} == {int}


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"min_layers": 1.5}, r"`search_space\['min_layers'\]` must be an integer, got 1\.5\."),
        ({"min_layers": -1}, r"`min_layers` must be an integer >= 0, got -1\."),
        ({"min_width": 0}, r"`min_width` must be an integer >= 1, got 0\."),
        ({"min_layers": 3, "max_layers": 2}, r"`max_layers` must be >= `min_layers`=3, got 2\."),
        ({"min_width": 9, "max_width": 8}, r"`max_width` must be >= `min_width`=9, got 8\."),
        ({"activations": ["relu", "swish"]}, r"`search_space\['activations'\]\[1\]` must be"),
        ({"blocks": ["conv"]}, r"`search_space\['blocks'\]\[0\]` must be one of"),
        ({"skips": 1}, r"`search_space\['skips'\]` must be True or False, got 1\."),
    ],
)
def test_space_checks_raise_one_wording(space: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ArchitectureSpace.from_dict({"layers": [[4, 8, 2]], **space})


def test_from_params_reads_integral_numbers_and_refuses_the_rest() -> None:
    space = ArchitectureSpace.from_dict({"layers": [[4, 8, 2]]})
    arch = space.from_params(
        {"arch_n_hidden": np.int64(2), "arch_width_0": 8.0, "arch_width_1": 4}
    )
    assert arch is not None and arch.widths == [4, 8, 4, 2]
    assert space.from_params({"arch_n_hidden": 1, "arch_width_0": 2.5}) is None
    assert space.from_params({"arch_n_hidden": 1}) is None
    assert space.from_params({"arch_n_hidden": True, "arch_width_0": 8}) is None


@pytest.mark.parametrize(
    "parent, child, expected",
    [
        # Same depth: every layer keeps its place (a width change included).
        ([4, 8, 16, 2], [4, 8, 32, 2], {0: 0, 1: 1}),
        # A layer added in the middle: the layers behind it moved by one.
        ([4, 8, 16, 2], [4, 8, 12, 16, 2], {0: 0, 1: 2}),
        # A layer removed: the one behind it takes its place.
        ([4, 8, 12, 16, 2], [4, 8, 16, 2], {0: 0, 2: 1}),
        # Equal widths: the earlier layers are matched.
        ([4, 8, 2], [4, 8, 8, 2], {0: 0}),
        ([4, 8, 8, 2], [4, 8, 2], {0: 0}),
    ],
)
def test_align_hidden_layers(parent: list[int], child: list[int], expected: dict) -> None:
    from optuna_evo.architecture import align_hidden_layers

    def arch(widths: list[int]) -> Architecture:
        return Architecture(widths, "relu")

    assert align_hidden_layers(arch(parent), arch(child)) == expected


def test_align_hidden_layers_matches_block_types_too() -> None:
    from optuna_evo.architecture import align_hidden_layers

    parent = Architecture([4, 8, 8, 2], "relu", blocks=["linear", "residual"])
    child = Architecture([4, 8, 8, 8, 2], "relu", blocks=["linear", "linear", "residual"])
    assert align_hidden_layers(parent, child) == {0: 0, 1: 2}
