"""The optimal-transport section of ``gradflow demo``: a 2-D known-truth map with arrows, McCann
interpolation frames, and colour transfer between two scikit-image photographs."""

from __future__ import annotations

import torch

from ...transport import bures_map, cosine_similarity, fit_ot_map, l2_uvp, w2
from ...transport.benchmarks import create_pair
from ..report import Report, require_matplotlib

__all__ = ["colour_transfer", "plot_map", "transport_section"]


def plot_map(plt, x, y, Tx, title: str, n_arrows: int = 150):
    """Scatter of source x, target y and mapped T(x) (first two coordinates) with arrows x -> T(x)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    axes[0].scatter(x[:, 0], x[:, 1], s=2, alpha=0.3, label="source P", color="C0")
    axes[0].scatter(y[:, 0], y[:, 1], s=2, alpha=0.3, label="target Q", color="C1")
    k = min(n_arrows, len(x))
    axes[0].quiver(x[:k, 0], x[:k, 1], Tx[:k, 0] - x[:k, 0], Tx[:k, 1] - x[:k, 1], angles="xy", scale_units="xy",
                   scale=1, width=0.003, alpha=0.6)
    axes[0].set_title("x -> T(x)")
    axes[1].scatter(y[:, 0], y[:, 1], s=2, alpha=0.3, label="target Q", color="C1")
    axes[1].scatter(Tx[:, 0], Tx[:, 1], s=2, alpha=0.3, label="T # P", color="C2")
    axes[1].set_title("target vs pushed-forward source")
    for ax in axes:
        ax.legend(fontsize=7, markerscale=4)
        ax.set_aspect("equal")
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _photo_pixels(name: str, size: int) -> torch.Tensor:
    """RGB pixels in [0, 1] of a bundled scikit-image photograph, resized to size x size: (size, size, 3)."""
    from skimage import data, transform

    image = transform.resize(getattr(data, name)(), (size, size), anti_aliasing=True)
    return torch.from_numpy(image).float()


def colour_transfer(source_image: torch.Tensor, target_image: torch.Tensor, *, n_pixels: int = 20_000,
                    seed: int = 0, **fit_options):
    """Recolour ``source_image`` (H, W, 3) with the palette of ``target_image`` (H', W', 3), values in [0, 1]:
    fit the OT map between the two pixel-colour distributions and apply it to every pixel.

    Returns (recoloured image (H, W, 3) clipped to [0, 1], the :class:`OTMap`). ``fit_options`` go to
    :func:`fit_ot_map`.
    """
    for img, name in ((source_image, "source_image"), (target_image, "target_image")):
        if not isinstance(img, torch.Tensor) or img.ndim != 3 or img.shape[-1] != 3:
            raise ValueError(f"{name} must be an (H, W, 3) tensor, got {getattr(img, 'shape', type(img).__name__)}")
    g = torch.Generator().manual_seed(seed)
    src, tgt = source_image.reshape(-1, 3), target_image.reshape(-1, 3)
    src_sample = src[torch.randperm(len(src), generator=g)[:n_pixels]]
    tgt_sample = tgt[torch.randperm(len(tgt), generator=g)[:n_pixels]]
    T = fit_ot_map(src_sample, tgt_sample, seed=seed, **fit_options)
    T.to("cpu")
    with torch.no_grad():
        out = torch.cat([T(chunk) for chunk in src.split(65_536)]).clamp(0, 1)
    return out.reshape(source_image.shape), T


def transport_section(report: Report, *, quick: bool = False, device: str = "auto", seed: int = 0,
                      max_time: float | None = None) -> None:
    """Fit OT maps on a 2-D known-truth pair and between two photographs' colours; add figures and metrics."""
    plt = require_matplotlib()
    report.heading("Optimal transport (maps as gradients of convex potentials)")
    steps = 5 if quick else 600
    pair = create_pair("icnn", 2, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x, y, x_test = (pair.sample_source(4000, g), pair.sample_target(4000, g), pair.sample_source(4000, g))
    report.text(
        "2-D known-truth pair: P is a 3-component Gaussian mixture and Q = grad psi0 # P for a strongly convex "
        "psi0 made of input-convex networks (after Korotin et al. 2021; not the family of the fitted network), "
        "so the optimal map T* = grad psi0 is known. The map is fitted by the semi-dual "
        f"(method='dual') from 4000 samples per side ({steps} steps) and compared "
        "with the linear (Bures) map, the baseline; L2-UVP is in % of Var(Q) (lower is better; a fit at or above "
        "100%, the constant map to Q's mean, failed)."
    )
    T = fit_ot_map(x, y, method="dual", steps=steps, max_time=max_time, seed=seed, device=device, progress=False)
    T.to("cpu")
    linear = bures_map(x, y)
    with torch.no_grad():
        rows = [["linear (Bures)", l2_uvp(linear, pair.true_map, x_test, pair.target_var),
                 cosine_similarity(linear, pair.true_map, x_test)],
                [f"fitted ({T.steps} steps, {T.seconds:.1f} s)", l2_uvp(T, pair.true_map, x_test, pair.target_var),
                 cosine_similarity(T, pair.true_map, x_test)]]
        Tx = T(x_test[:2000])
        frames = [T.interpolate(x_test[:2000], t) for t in (0.0, 0.25, 0.5, 0.75, 1.0)]
    report.table(["map", "L2-UVP %", "cosine"], rows)
    report.compare("optimal transport", "2-D ICNN pair", "L2-UVP %", "fitted OT map", rows[1][1], "linear (Bures) map",
                   rows[0][1], lower_is_better=True,
                   failure=f"L2-UVP {rows[1][1]:.0f}% is no better than the constant map to Q's mean (100%)"
                   if rows[1][1] >= 100 else None)
    report.figure(plot_map(plt, x_test[:2000], y[:2000], Tx, "fitted OT map on the 2-D ICNN pair"),
                  "ot-map-2d", "source, target and the fitted map x -> T(x) (arrows); right: T # P against Q")
    fig, axes = plt.subplots(1, len(frames), figsize=(2.4 * len(frames), 2.6), sharex=True, sharey=True)
    for ax, t, frame in zip(axes, (0.0, 0.25, 0.5, 0.75, 1.0), frames):
        ax.scatter(frame[:, 0], frame[:, 1], s=1, alpha=0.3, color=plt.cm.viridis(t))
        ax.set_title(f"t = {t:g}", fontsize=9)
        ax.set_xlabel("x1", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0].set_ylabel("x2", fontsize=7)
    fig.suptitle("McCann interpolation (1 - t) x + t T(x)")
    fig.tight_layout()
    report.figure(fig, "ot-interpolation", "displacement interpolation between P (t = 0) and Q (t = 1)")

    size = 32 if quick else 128
    source_image, target_image = _photo_pixels("astronaut", size), _photo_pixels("coffee", size)
    recoloured, _ = colour_transfer(source_image, target_image, n_pixels=size * size, seed=seed,
                                    method="dual", steps=3 if quick else 400, max_time=max_time,
                                    device=device, progress=False)
    pixels_s, pixels_t = source_image.reshape(-1, 3), target_image.reshape(-1, 3)
    linear_colours = bures_map(pixels_s, pixels_t)(pixels_s).clamp(0, 1)
    k = min(1500, len(pixels_s))
    idx = torch.randperm(len(pixels_s), generator=torch.Generator().manual_seed(seed))[:k]
    colour_rows = [[name, w2(c[idx].double(), pixels_t[idx].double())]
                   for name, c in (("original", pixels_s), ("linear (Bures)", linear_colours),
                                   ("fitted OT map", recoloured.reshape(-1, 3)))]
    report.text(
        f"Colour transfer: the colours of skimage.data.astronaut() ({size} x {size}) are mapped onto the palette "
        "of skimage.data.coffee() by the OT map between the two pixel-colour distributions in RGB; the table "
        f"gives the exact W2 distance (POT) between {k} mapped and {k} target pixel colours (lower is better; the "
        "baseline is the linear map; a fitted map whose W2 is no lower than the original colours' failed)."
    )
    report.table(["colours", "W2 to coffee's colours"], colour_rows)
    original, linear_w2, fitted_w2 = (row[1] for row in colour_rows)
    report.compare("optimal transport", "colour transfer", "W2 to the target colours", "fitted OT map", fitted_w2,
                   "linear (Bures) map", linear_w2, lower_is_better=True,
                   failure=f"W2 {fitted_w2:.3g} is no lower than the original colours' {original:.3g}"
                   if fitted_w2 >= original else None)
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
    images = [(source_image, "astronaut"), (target_image, "coffee (palette)"),
              (linear_colours.reshape(source_image.shape), "linear map"), (recoloured, "OT map")]
    for ax, (img, title) in zip(axes, images):
        ax.imshow(img.numpy())
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    report.figure(fig, "ot-colour-transfer", "colour transfer by the fitted OT map and by the linear map")
