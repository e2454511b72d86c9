"""
Colour transfer with an optimal transport map
=============================================

The colours of a photograph form a point cloud in RGB space, one 3-D point per pixel. Recolouring one
photograph with the palette of another is a transport problem between two such clouds: find the map
T from the first cloud to the second that moves colours as little as possible (squared Euclidean
cost), and apply it to every pixel. Because T = grad psi with psi convex (a monotone gradient network,
fitted by :func:`~gradflow.transport.fit_ot_map`), it is monotone: two colours keep their order along
any direction (a brighter sky stays brighter than a darker roof), so the picture's structure survives
the recolouring.

Here the two photographs bundled with scikit-learn (``china.jpg`` and ``flower.jpg``) are
recoloured with each other's palettes: forward with T, backward with the inverse map T^-1 =
grad psi* (:meth:`~gradflow.transport.OTMap.inverse`, a Newton solve per pixel), which is the optimal
map the other way. The baseline is the linear (Bures) map :func:`~gradflow.transport.bures_map`, which
matches only the mean and covariance of the colours. The score is the exact W2 distance (POT) between
recoloured and target colours on a subsample of pixels (lower is better).
"""

# %%
# Pixels as point clouds
# ----------------------
import time

import matplotlib.pyplot as plt
import torch
from skimage.transform import resize
from sklearn.datasets import load_sample_image

from gradflow.transport import bures_map, fit_ot_map, w2

torch.set_num_threads(1)
torch.manual_seed(0)


def photo(name):
    """A bundled scikit-learn photograph, downsized to 128 x 192, as (H, W, 3) floats in [0, 1]."""
    return torch.from_numpy(resize(load_sample_image(name), (128, 192), anti_aliasing=True)).float()


china, flower = photo("china.jpg"), photo("flower.jpg")
pixels_c, pixels_f = china.reshape(-1, 3), flower.reshape(-1, 3)  # (24576, 3) each
g = torch.Generator().manual_seed(0)
sample_c = pixels_c[torch.randperm(len(pixels_c), generator=g)[:6000]]
sample_f = pixels_f[torch.randperm(len(pixels_f), generator=g)[:6000]]
print("pixels per image:", len(pixels_c), "| fitted on", len(sample_c), "per side")

# %%
# Fit the map between the colour distributions
# --------------------------------------------
# With more than 1024 samples per side the default method is the semi-dual; ``steps`` is an upper
# bound (the fit holds 20% of each side out and stops when the held-out objective stops improving).
start = time.process_time()
T = fit_ot_map(sample_c, sample_f, steps=400, progress=False, device="cpu", seed=0)
print(f"fit: method {T.method!r}, {T.steps} steps ({T.stop_reason}), {time.process_time() - start:.1f} CPU s")

# %%
# Recolour every pixel, both ways
# -------------------------------
start = time.process_time()
china_as_flower = T(pixels_c).clamp(0, 1)
flower_as_china = T.inverse(pixels_f).clamp(0, 1)  # damped Newton on grad psi(x) = y, per pixel
print(f"forward and inverse maps on {len(pixels_c) + len(pixels_f)} pixels: {time.process_time() - start:.1f} CPU s")
linear = bures_map(sample_c, sample_f)
china_linear = linear(pixels_c).clamp(0, 1)
flower_linear = linear.inverse(pixels_f).clamp(0, 1)

# %%
# Scores: exact W2 to the target palette
# --------------------------------------
idx = torch.randperm(len(pixels_c), generator=g)[:2000]


def w2_to(colours, target):
    return w2(colours[idx].double(), target[idx].double())


scores = {
    "china, original": w2_to(pixels_c, pixels_f),
    "china, linear map": w2_to(china_linear, pixels_f),
    "china, OT map T": w2_to(china_as_flower, pixels_f),
    "flower, original": w2_to(pixels_f, pixels_c),
    "flower, inverse linear map": w2_to(flower_linear, pixels_c),
    "flower, OT map T^-1": w2_to(flower_as_china, pixels_c),
}
for name, value in scores.items():
    print(f"W2 to the other photograph's colours, {name:27s} {value:.4f}")

# %%
# Pictures
# --------
rows = [
    [(china, "china.jpg"), (china_linear.reshape(china.shape), "linear map"),
     (china_as_flower.reshape(china.shape), "OT map T"), (flower, "flower.jpg (palette)")],
    [(flower, "flower.jpg"), (flower_linear.reshape(flower.shape), "inverse linear map"),
     (flower_as_china.reshape(flower.shape), "inverse OT map T^-1"), (china, "china.jpg (palette)")],
]
fig, axes = plt.subplots(2, 4, figsize=(14, 5.4), layout="constrained")
for ax_row, row in zip(axes, rows):
    for ax, (image, title) in zip(ax_row, row):
        ax.imshow(image.numpy())
        ax.set_title(title, fontsize=10)
        ax.axis("off")
plt.show()

# %%
# Half-way colours
# ----------------
# McCann's interpolation (1 - t) c + t T(c) gives the colours of the W2 geodesic between the two
# palettes: a gradual recolouring.
fig, axes = plt.subplots(1, 4, figsize=(14, 2.8), layout="constrained")
for ax, t in zip(axes, (0.0, 1 / 3, 2 / 3, 1.0)):
    ax.imshow(T.interpolate(pixels_c, t).clamp(0, 1).reshape(china.shape).numpy())
    ax.set_title(f"t = {t:.2f}")
    ax.axis("off")
plt.show()
