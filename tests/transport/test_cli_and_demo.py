import json
import math

import numpy as np
import pytest
import torch

from gradflow.cli import main
from gradflow.cli.demo.transport import colour_transfer, transport_section
from gradflow.cli.report import Report
from gradflow.transport import OTMap


@pytest.fixture
def sample_files(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.normal(size=(300, 2)))
    np.save(tmp_path / "b.npy", rng.normal(size=(300, 2)) * [2.0, 0.5] + 1.0)
    np.save(tmp_path / "c.npy", rng.normal(size=(300, 3)))
    np.save(tmp_path / "flat.npy", rng.normal(size=300))
    np.save(tmp_path / "complex.npy", rng.normal(size=(300, 2)) + 1j)
    np.save(tmp_path / "nan.npy", np.full((300, 2), np.nan))
    np.savetxt(tmp_path / "table.npy", rng.normal(size=(300, 2)), delimiter=",")  # a CSV under a .npy name
    return tmp_path


def test_cli_writes_map_mapped_samples_metrics_and_report(sample_files, capsys):
    out = sample_files / "out"
    rc = main(["transport", "--source", str(sample_files / "a.npy"), "--target", str(sample_files / "b.npy"),
               "--out", str(out), "--steps", "20", "--method", "plan", "--device", "cpu"])
    assert rc == 0
    mapped = np.load(out / "mapped.npy")
    assert mapped.shape == (300, 2)
    T = OTMap.load(out / "map.pt")
    x = torch.from_numpy(np.load(sample_files / "a.npy")).float()
    with torch.no_grad():
        np.testing.assert_allclose(T(x).numpy(), mapped, rtol=1e-5, atol=1e-5)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "plan" and metrics["steps"] == 20
    # the fitted map moves the source much closer to the target than it was
    assert metrics["w2_mapped_target_300"] < 0.5 * metrics["w2_source_target_300"]
    assert (out / "report.md").is_file() and (out / "figures" / "map.png").is_file()
    assert "fitted plan OT map" in capsys.readouterr().out


def test_cli_amortized_dual_keeps_its_inverse_network(sample_files):
    out = sample_files / "out_dual"
    rc = main(["transport", "--source", str(sample_files / "a.npy"), "--target", str(sample_files / "b.npy"),
               "--out", str(out), "--steps", "10", "--method", "dual", "--conjugate", "amortized",
               "--scheduler", "cosine", "--device", "cpu"])
    assert rc == 0
    T = OTMap.load(out / "map.pt")
    assert T.method == "dual" and T.inverse_net is not None
    metrics = json.loads((out / "metrics.json").read_text())  # 20% of the samples were held out
    assert isinstance(metrics["best_step"], int) and metrics["best_step"] == T.best_step


@pytest.mark.parametrize("target, message", [("c.npy", "same dimension"), ("flat.npy", "(N, d) array"),
                                             ("missing.npy", "No such file"), ("complex.npy", "real (N, d)"),
                                             ("nan.npy", "NaN or inf"), ("table.npy", "not a NumPy .npy file")])
def test_cli_reports_user_mistakes_in_one_line(sample_files, capsys, target, message):
    rc = main(["transport", "--source", str(sample_files / "a.npy"), "--target", str(sample_files / target),
               "--out", str(sample_files / "out"), "--steps", "2"])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1


def test_cli_keeps_values_beyond_float32_in_float64(sample_files):
    x = np.random.default_rng(0).normal(size=(200, 2)) * 1e39  # finite, but inf in float32
    np.save(sample_files / "big.npy", x)
    np.save(sample_files / "big2.npy", 2 * x)
    out = sample_files / "out_big"
    rc = main(["transport", "--source", str(sample_files / "big.npy"), "--target", str(sample_files / "big2.npy"),
               "--out", str(out), "--steps", "2", "--method", "plan", "--device", "cpu"])
    assert rc == 0 and np.isfinite(np.load(out / "mapped.npy")).all()


def test_colour_transfer_moves_the_palette_towards_the_target():
    g = torch.Generator().manual_seed(0)
    source = torch.rand(16, 16, 3, generator=g) * 0.5  # dark image
    target = 0.5 + 0.5 * torch.rand(16, 16, 3, generator=g)  # bright palette
    out, T = colour_transfer(source, target, method="plan", steps=30, progress=False, device="cpu")
    assert T.dim == 3
    assert out.shape == source.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    assert abs(float(out.mean()) - float(target.mean())) < 0.05
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        colour_transfer(source[..., :2], target)


def test_demo_section_quick_adds_metrics_and_figures(tmp_path):
    report = Report(tmp_path, "test")
    transport_section(report, quick=True, device="cpu", seed=0)
    path = report.write()
    text = path.read_text()
    for figure in ("ot-map-2d", "ot-interpolation", "ot-colour-transfer"):
        assert (tmp_path / "figures" / f"{figure}.png").is_file()
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| optimal transport")]
    assert [row[1] for row in rows] == ["2-D ICNN pair", "colour transfer"]
    assert all(row[3].startswith("fitted OT map: ") and row[4].startswith("linear (Bures) map: ") for row in rows)
    values = [float(cell.split(": ")[1]) for row in rows for cell in row[3:5]]
    assert len(values) == 4 and all(math.isfinite(v) for v in values)
