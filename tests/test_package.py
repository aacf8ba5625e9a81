"""The package's top level: light to import, every subpackage reachable as an attribute."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
import textwrap
from typing import Any

import pytest


def test_import_stays_light_and_subpackages_load_on_first_access() -> None:
    # A fresh interpreter: this test process has imported torch already.
    code = textwrap.dedent(
        """
        import sys
        import optuna_evo
        heavy = sorted(m for m in ("torch", "plotly", "safetensors") if m in sys.modules)
        assert heavy == [], heavy
        # The names the README uses after a bare `import optuna_evo`.
        optuna_evo.visualization.plot_predictor_accuracy
        optuna_evo.visualization.save_to_dashboard
        optuna_evo.checkpoint.save
        optuna_evo.genreg.GenregObjective
        optuna_evo.objectives.TrainConfig
        optuna_evo.operators.TrustWeightedSelection
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def _public_modules() -> list[Any]:
    import optuna_evo

    names = [m.name for m in pkgutil.walk_packages(optuna_evo.__path__, "optuna_evo.")]
    public = [n for n in names if not any(p.startswith("_") for p in n.split(".")[1:])]
    return [importlib.import_module(n) for n in ["optuna_evo", *public]]


def test_every_public_name_has_a_docstring() -> None:
    missing: list[str] = []
    seen: set[int] = set()
    for module in _public_modules():
        if not module.__doc__:
            missing.append(module.__name__)
        names = getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")])
        for name in names:
            obj = getattr(module, name)
            ours = getattr(obj, "__module__", "").startswith("optuna_evo")
            if (
                not (inspect.isclass(obj) or inspect.isfunction(obj))
                or not ours
                or id(obj) in seen
            ):
                continue
            seen.add(id(obj))
            where = f"{obj.__module__}.{obj.__qualname__}"
            # Dataclasses and named tuples get "Name(field, ...)" when they have no docstring.
            if not obj.__doc__ or obj.__doc__.startswith(f"{obj.__name__}("):
                missing.append(where)
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    function = value.fget if isinstance(value, property) else value
                    function = getattr(function, "__func__", function)  # static / class methods
                    if not attr.startswith("_") and callable(function) and not function.__doc__:
                        missing.append(f"{where}.{attr}")
    assert len(seen) > 100  # the walk reached the package
    assert not missing, f"public names without a docstring: {missing}"


def test_unknown_attribute_is_an_attribute_error() -> None:
    import optuna_evo

    with pytest.raises(AttributeError, match="no attribute 'plots'"):
        optuna_evo.plots  # noqa: B018


def test_the_wheel_ships_every_module_the_type_marker_and_the_cli(tmp_path) -> None:
    # A user installs the wheel, not this checkout: every module, py.typed and the console
    # script must be in it (a subpackage left out of packages.find breaks only there).
    from pathlib import Path
    import shutil
    import zipfile

    root = Path(__file__).resolve().parents[1]
    # Built from a copy: setuptools writes build/ and egg-info next to the sources.
    copy = tmp_path / "src"
    shutil.copytree(root / "optuna_evo", copy / "optuna_evo",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        shutil.copy(root / name, copy / name)
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(copy)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("optuna_evo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    source = {
        p.relative_to(root).as_posix()
        for p in (root / "optuna_evo").rglob("*")
        if p.suffix == ".py" or p.name == "py.typed"
    }
    assert source - names == set()
    assert "optuna_evo/py.typed" in names
    (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "optuna-evo = optuna_evo.cli:main" in text
