"""The package's top level: light to import, every subpackage reachable as an attribute."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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


def test_unknown_attribute_is_an_attribute_error() -> None:
    import optuna_evo

    with pytest.raises(AttributeError, match="no attribute 'plots'"):
        optuna_evo.plots  # noqa: B018
