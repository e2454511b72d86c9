"""The ``gradflow hamiltonian`` command and the demo section."""

import json
import math

import pytest

from gradflow.cli import main
from gradflow.cli.demo.dynamics import DEMO_MODELS, hamiltonian_section
from gradflow.cli.report import Report


def test_demo_section_quick(tmp_path):
    report = Report(tmp_path, "test")
    hamiltonian_section(report, quick=True, device="cpu", seed=0)
    path = report.write()
    text = path.read_text()
    for name in DEMO_MODELS:
        assert f"| {name} |" in text
    assert (tmp_path / "figures" / "hamiltonian-phase-portraits.png").stat().st_size > 0
    assert (tmp_path / "figures" / "hamiltonian-energy.png").stat().st_size > 0
    summary = text.split("## Summary: gradflow against its baselines")[1].split("\n## ")[0]
    for name in ("gradnet_m", "separable_m"):  # gradflow's models, each against the better baseline, once
        for metric in ("rollout energy MSE", "rollout state MSE"):
            assert summary.count(f"| pendulum | {metric} (lower is better) | {name}: ") == 1


def test_cli_trains_and_writes_metrics(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["hamiltonian", "--system", "mass_spring", "--model", "separable_c", "--steps", "5", "--n-params",
                 "100", "--n-trajectories", "6", "--horizon", "1", "--out", str(out), "--device", "cpu"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 5 and metrics["system"] == "mass_spring"
    assert math.isfinite(metrics["test_mse"]) and math.isfinite(metrics["energy_mse"])
    assert (out / "model.pt").exists() and (out / "figures" / "phase-portrait.png").exists()
    assert "separable_c on mass_spring" in capsys.readouterr().out


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["hamiltonian", "--system", "pendulm"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert main(["hamiltonian", "--lr", "0", "--out", str(tmp_path)]) == 2
    assert "--lr must be > 0" in capsys.readouterr().err
