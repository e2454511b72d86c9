"""The demo report's summary: gradflow's model against its baseline, the margin, and the winner / loser /
failed flags, built from synthetic results (no training); and nothing written outside the output directory."""

from __future__ import annotations

import doctest
import importlib
import math

import pytest

from gradflow.cli.report import SUMMARY_HEADERS, Comparison, Report, summary_rows


def field_row(ours_db, baseline_db=-32.0, **options):
    return Comparison("gradient fields", "nonconvex_2d", "grid error (dB)", "gradnet_c", ours_db, "mlp_potential",
                      baseline_db, lower_is_better=True, margin="db", **options)


def verdict(comparison):
    return summary_rows([comparison])[0][-1]


def test_lower_is_better_db_winner_and_loser():
    assert verdict(field_row(-40.0)) == "gradflow wins by 8.0 dB"
    assert verdict(field_row(-20.5)) == "gradflow loses by 11.5 dB"
    assert verdict(field_row(-32.0)) == "tie"


def test_higher_is_better_psnr_margin_in_db():
    row = Comparison("inverse problems", "deblur", "PSNR (dB)", "learned prior", 24.0, "TV", 25.5,
                     lower_is_better=False, margin="db")
    assert verdict(row) == "gradflow loses by 1.5 dB"
    flipped = Comparison("inverse problems", "deblur", "PSNR (dB)", "learned prior", 25.5, "TV", 24.0,
                         lower_is_better=False, margin="db")
    assert verdict(flipped) == "gradflow wins by 1.5 dB"


def test_ratio_margin_is_a_factor_of_at_least_one_either_way():
    worse = Comparison("hamiltonian dynamics", "pendulum", "energy MSE", "gradnet_m", 0.9, "hnn", 0.1,
                       lower_is_better=True)
    better = Comparison("hamiltonian dynamics", "pendulum", "state MSE", "gradnet_m", 0.1, "hnn", 0.9,
                        lower_is_better=True)
    (row_worse, row_better) = summary_rows([worse, better])
    assert row_worse[-2:] == ["9.00x", "gradflow loses by 9.00x"]
    assert row_better[-2:] == ["9.00x", "gradflow wins by 9.00x"]


def test_a_row_names_both_models_the_metric_and_its_direction():
    row = summary_rows([field_row(-40.0)])[0]
    assert len(row) == len(SUMMARY_HEADERS)
    assert row[:5] == ["gradient fields", "nonconvex_2d", "grid error (dB) (lower is better)", "gradnet_c: -40",
                       "mlp_potential: -32"]


def test_a_failed_fit_is_flagged_even_when_it_beats_the_baseline():
    row = field_row(-0.8, baseline_db=-0.5, failure="error -0.8 dB is above the -10 dB failure line")
    assert verdict(row) == ("FAILED: error -0.8 dB is above the -10 dB failure line "
                            "(gradflow wins by 0.3 dB)")


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_non_finite_metric_is_a_failure(value):
    assert verdict(field_row(value)).startswith("FAILED: gradflow's gradnet_c gave a non-finite grid error (dB)")


def test_a_non_finite_baseline_is_not_a_gradflow_failure():
    assert verdict(field_row(-30.0, baseline_db=math.nan)) == (
        "gradflow wins (the baseline mlp_potential gave a non-finite grid error (dB))")


def test_no_row_twice(tmp_path):
    report = Report(tmp_path, "t")
    report.compare("gradient fields", "nonconvex_2d", "grid error (dB)", "gradnet_c", -30.0, "mlp_potential",
                   -32.0, lower_is_better=True, margin="db")
    with pytest.raises(ValueError, match="appears twice"):
        report.compare("gradient fields", "nonconvex_2d", "grid error (dB)", "gradnet_c", -31.0, "mlp_field",
                       -20.0, lower_is_better=True, margin="db")
    report.metric("vision", "bicubic PSNR", 30.0)
    with pytest.raises(ValueError, match="already recorded"):
        report.metric("vision", "bicubic PSNR", 30.0)
    with pytest.raises(ValueError, match="appears twice"):
        summary_rows([field_row(-1.0), field_row(-2.0)])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"margin": "percent"}, "unknown margin 'percent'"),
        ({"margin": "ratio"}, "ours_value must be > 0 for a ratio margin"),
        ({"ours_value": "fast"}, "ours_value must be a real number"),
        ({"lower_is_better": 1}, "lower_is_better must be True or False"),
        ({"ours": ""}, "ours must be a non-empty string"),
        ({"failure": ""}, "failure must be None or a non-empty string"),
    ],
)
def test_comparison_checks_its_arguments(change, match):
    arguments = {"section": "s", "task": "t", "metric": "m", "ours": "a", "ours_value": -3.0, "baseline": "b",
                 "baseline_value": -2.0, "lower_is_better": True, "margin": "db", **change}
    with pytest.raises(ValueError, match=match):
        Comparison(**arguments)


def test_the_written_summary_flags_losses_and_failures(tmp_path):
    report = Report(tmp_path, "t")
    report.compare(*field_row(-40.0).__dict__.values())
    report.compare("gradient fields", "nonconvex_2d", "grid error (dB)", "gradnet_m", -14.0, "mlp_potential", -32.0,
                   lower_is_better=True, margin="db")
    report.compare("gradient fields", "convex_2d", "grid error (dB)", "mgradnet_c", -5.0, "icnn", -40.0,
                   lower_is_better=True, margin="db", failure="error -5.0 dB is above the -10 dB failure line")
    text = report.write().read_text()
    summary = text.split("## Summary: gradflow against its baselines")[1]
    assert "| gradflow wins by 8.0 dB |" in summary
    assert "| gradflow loses by 18.0 dB |" in summary
    assert "| FAILED: error -5.0 dB is above the -10 dB failure line (gradflow loses by 35.0 dB) |" in summary


@pytest.mark.parametrize("module", ["gradflow.cli.report", "gradflow.cli.demo"])
def test_doctests_write_nothing_into_the_working_directory(module, tmp_path, monkeypatch):
    """`make test` runs the doctests from the repository root: an example that writes relative to the
    working directory leaves files in the checkout (it left out/report.md there)."""
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == []
