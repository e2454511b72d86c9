"""The gradflow command: version, demo report, fit-field outputs and resume, one-line user errors."""

import json
import os
import re
import subprocess
import sys
import types

import pytest
import torch

import gradflow.cli.demo
from gradflow import __version__
from gradflow.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "gradflow.cli", *args], capture_output=True, text=True, timeout=600)


def test_version():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"gradflow {__version__}"


def test_demo_quick_writes_a_report_with_figures(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert captured.out.endswith(f"report written to {tmp_path / 'report.md'}\n")  # stdout: the result
    n = len(gradflow.cli.demo.SECTIONS)
    for number, (title, _) in enumerate(gradflow.cli.demo.SECTIONS, 1):  # never silent off a terminal
        assert f"demo: [{number}/{n}] {title}: started\n" in captured.err
        assert re.search(rf"demo: \[{number}/{n}\] {title}: done in \d+\.\ds\n", captured.err)
    assert re.search(rf"demo: all {n} sections done in \d+\.\ds\n", captured.err)
    report = (tmp_path / "report.md").read_text()
    assert "## Summary" in report and "Gradient fields" in report
    assert f"torch {torch.__version__} (1 thread(s))" in report  # the run section names the machine
    images = sorted((tmp_path / "figures").glob("*.png"))
    assert len(images) >= 3
    for image in images:
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"figures/{image.name}" in report


def _fake_sections(monkeypatch):
    """Replace the demo's sections by two instant ones, the second failing unless ``quick``."""

    def ok_section(report, **options):
        report.heading("Fake")
        report.metric("fake", "options", str(sorted(options)))

    def fragile_section(report, *, quick, **options):
        if not quick:
            raise RuntimeError("boom")

    module = types.ModuleType("fake_demo_sections")
    module.ok_section, module.fragile_section = ok_section, fragile_section
    monkeypatch.setitem(sys.modules, module.__name__, module)
    sections = [("fine", f"{module.__name__}:ok_section"), ("fragile", f"{module.__name__}:fragile_section")]
    monkeypatch.setattr(gradflow.cli.demo, "SECTIONS", sections)


def test_demo_prints_a_line_as_each_section_starts_and_ends(tmp_path, capsys, monkeypatch):
    _fake_sections(monkeypatch)
    path = gradflow.cli.demo.run_demo(tmp_path, quick=True, device="cpu")
    assert path.read_text().count("| fake | options |") == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "demo: 2 sections (fine, fragile); quick=True, device=cpu, seed=0, max_time=None, jobs=1"
    assert lines[1] == "demo: [1/2] fine: started" and re.fullmatch(r"demo: \[1/2\] fine: done in \d+\.\ds", lines[2])
    assert lines[3] == "demo: [2/2] fragile: started"
    assert re.fullmatch(r"demo: \[2/2\] fragile: done in \d+\.\ds", lines[4])
    assert re.fullmatch(r"demo: all 2 sections done in \d+\.\ds", lines[5]) and len(lines) == 6

    with pytest.raises(RuntimeError, match="boom"):
        gradflow.cli.demo.run_demo(tmp_path, quick=False, device="cpu")
    assert re.fullmatch(r"demo: \[2/2\] fragile: failed after \d+\.\ds \(RuntimeError\)",
                        capsys.readouterr().err.splitlines()[-1])

    gradflow.cli.demo.run_demo(tmp_path, quick=True, device="cpu", progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_fit_field_writes_model_metrics_report_and_resumes(tmp_path):
    args = ["fit-field", "--model", "mgradnet_m", "--n-train", "2000", "--batch-size", "500", "--out", str(tmp_path)]
    assert main([*args, "--epochs", "2"]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps"] == 8 and metrics["params"] == 94 and metrics["error_db"] < 20
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert set(state["state_dict"]) >= {"weight", "hidden_bias", "alpha", "beta", "bias"}
    assert (tmp_path / "report.md").exists() and (tmp_path / "figures" / "field.png").exists()
    # resuming with more epochs continues from the checkpoint instead of starting over
    assert main([*args, "--epochs", "3", "--resume"]) == 0
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 12
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert max(h["step"] for h in history) == 12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bogus"], "invalid choice: 'bogus'"),
        (["fit-field", "--model", "nope"], "invalid choice: 'nope'"),
        (["fit-field", "--epochs", "0"], "expected an integer >= 1"),
        (["fit-field", "--epochs", "two"], "expected an integer >= 1"),
        (["fit-field", "--target", "polymax", "--epochs", "1"], "needs dim"),
        (["fit-field", "--device", "cuda:7", "--epochs", "1", "--n-train", "10"], "CUDA"),
    ],
)
def test_user_errors_are_one_line(args, message, tmp_path):
    out = run_cli(*args, *(["--out", str(tmp_path)] if args[0] == "fit-field" else []))
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_diverging_run_is_a_one_line_error_not_a_traceback(tmp_path):
    out = run_cli("fit-field", "--target", "convex_2d", "--model", "mgradnet_c", "--n-params", "100", "--epochs",
                  "2", "--lr", "1e30", "--device", "cpu", "--out", str(tmp_path))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(("gradflow: error: loss is inf", "gradflow: error: loss is nan")), last


def test_a_non_empty_out_is_refused_unless_overwrite_or_resume(tmp_path, capsys):
    (tmp_path / "old.txt").write_text("a previous run\n")
    args = ["fit-field", "--model", "mgradnet_m", "--n-train", "200", "--batch-size", "100", "--epochs", "1",
            "--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gradflow: error: --out {tmp_path} is not empty") and "--overwrite" in err
    assert "--resume" in err and not (tmp_path / "metrics.json").exists()
    assert main([*args, "--overwrite"]) == 0
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "old.txt").is_file()  # other files stay


def test_an_out_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "out.txt"
    target.write_text("x")
    assert main(["fit-field", "--epochs", "1", "--out", str(target), "--overwrite"]) == 2
    assert "is a file; --out must be a directory" in capsys.readouterr().err


def seeded_section(report, *, seed, **options):
    """A demo section for the process tests: its own seeded draw and the process that ran it."""
    torch.manual_seed(seed)
    report.heading(f"Seeded {torch.rand(()).item():.6f}")
    report.text(f"pid {os.getpid()}")


def failing_section(report, **options):
    raise RuntimeError("boom in a worker")


def test_demo_jobs_run_sections_in_worker_processes_with_the_same_numbers(tmp_path, capsys, monkeypatch):
    sections = [(f"s{k}", f"{__name__}:seeded_section") for k in range(3)]
    monkeypatch.setattr(gradflow.cli.demo, "SECTIONS", sections)
    serial = gradflow.cli.demo.run_demo(tmp_path / "serial", quick=True, device="cpu", jobs=1).read_text()
    parallel = gradflow.cli.demo.run_demo(tmp_path / "parallel", quick=True, device="cpu", jobs=2).read_text()
    pids = [int(line.split()[1]) for line in parallel.splitlines() if line.startswith("pid ")]
    assert len(pids) == 3 and os.getpid() not in pids  # each section ran in a worker
    headings = [line for line in parallel.splitlines() if line.startswith("## Seeded")]
    assert headings == [line for line in serial.splitlines() if line.startswith("## Seeded")]
    assert len(headings) == 3 and "jobs=2" in parallel
    err = capsys.readouterr().err
    for number in (1, 2, 3):
        assert f"demo: [{number}/3] s{number - 1}: started" in err


@pytest.mark.slow
def test_demo_jobs_raise_a_workers_error(tmp_path, capsys, monkeypatch):
    sections = [("fine", f"{__name__}:seeded_section"), ("bad", f"{__name__}:failing_section")]
    monkeypatch.setattr(gradflow.cli.demo, "SECTIONS", sections)
    with pytest.raises(RuntimeError, match="boom in a worker"):
        gradflow.cli.demo.run_demo(tmp_path / "failed", quick=True, device="cpu", jobs=2)
    assert re.search(r"demo: \[2/2\] bad: failed after \d+\.\ds \(RuntimeError\)", capsys.readouterr().err)
