"""
A Gaussian optimal transport map, checked against the closed form and POT
==========================================================================

Between two Gaussians the optimal transport map for the squared Euclidean cost is known in closed
form (an affine map, :func:`~gradflow.transport.gaussian_map`), so a fitted map can be checked exactly.
We fit T = grad psi with psi convex (a monotone gradient network) from 2000 samples per side with
:func:`~gradflow.transport.fit_ot_map`, and compare three estimates with the true map:

* the fitted network;
* the Bures map :func:`~gradflow.transport.bures_map`: the closed form applied to the sample means and
  covariances, which is the right model class here (exact up to sampling error on Gaussians, a linear
  baseline otherwise);
* POT's exact discrete plan between the two sample sets (``ot.emd``), which is only defined on the
  samples (no map for new points).

The error measure is L2-UVP (Korotin et al. 2021): 100 E||T(x) - T*(x)||^2 / Var(Q), in percent.
The transport API is being revised; this example uses only its one-call form.
"""

# %%
# Two Gaussians and the true map
# ------------------------------
import time

import matplotlib.pyplot as plt
import ot
import torch

from gradflow.transport import bures_map, fit_ot_map, gaussian_map, l2_uvp

torch.set_num_threads(1)
torch.manual_seed(0)

mean_p, cov_p = torch.tensor([1.0, -1.0]), torch.tensor([[1.0, 0.7], [0.7, 1.0]])
mean_q, cov_q = torch.tensor([0.0, 0.0]), torch.tensor([[2.0, -0.5], [-0.5, 0.5]])
P = torch.distributions.MultivariateNormal(mean_p, cov_p)
Q = torch.distributions.MultivariateNormal(mean_q, cov_q)
x, y = P.sample((2000,)), Q.sample((2000,))  # training samples (independent: no pairing is given)
x_test = P.sample((5000,))                    # fresh source points to evaluate the maps on
T_true = gaussian_map(mean_p, cov_p, mean_q, cov_q)
var_q = cov_q.trace().item()

# %%
# Fit the map
# -----------
# ``init="none"`` starts the network from its own random initialisation; the default (``"bures"``)
# starts at the Bures map, which on Gaussian data is already the answer up to sampling error.
start = time.process_time()
T_fit = fit_ot_map(x, y, steps=500, init="none", progress=False, device="cpu")
print(f"fit: {time.process_time() - start:.1f} CPU s")
T_bures = bures_map(x, y)

# %%
# POT's exact plan on the same samples: with equal weights it is a permutation, x_i -> y_sigma(i).
start = time.process_time()
plan = ot.emd(ot.unif(len(x)), ot.unif(len(y)), ot.dist(x.double().numpy(), y.double().numpy()))
y_pot = torch.from_numpy(plan @ y.double().numpy()) * len(x)
print(f"ot.emd: {time.process_time() - start:.1f} CPU s")

scores = {
    "fitted network": l2_uvp(T_fit, T_true, x_test, var_q),
    "Bures map": l2_uvp(T_bures, T_true, x_test, var_q),
    "POT plan\n(samples only)": l2_uvp(y_pot, T_true(x.double()), x.double(), var_q),
}
for name, value in scores.items():
    print(f"L2-UVP {name.replace(chr(10), ' '):26s} {value:.3f} %")

# %%
# The fitted map is a gradient of a convex function, so its Jacobian is symmetric positive semidefinite:
print("is_monotone:", T_fit.model.is_monotone)

# %%
# Plot
# ----
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), layout="constrained")
axes[0].scatter(*x[:500].T, s=4, alpha=0.5, label="source P")
axes[0].scatter(*y[:500].T, s=4, alpha=0.5, label="target Q")
with torch.no_grad():
    mapped = T_fit(x_test[:500])
axes[0].scatter(*mapped.T, s=4, alpha=0.5, label="T_fit(x), x from P")
axes[0].set(title="samples")
axes[0].legend(markerscale=3)

some = x_test[:40]
with torch.no_grad():
    for T, color, label in ((T_true, "k", "true map"), (T_fit, "tab:green", "fitted")):
        d = T(some) - some
        axes[1].quiver(*some.T, *d.T, angles="xy", scale_units="xy", scale=1, color=color, width=0.004,
                       alpha=0.8, label=label)
axes[1].set(title="displacements T(x) - x (40 points)")
axes[1].legend()

axes[2].barh(list(scores), list(scores.values()), color=["tab:green", "tab:blue", "tab:gray"])
axes[2].set(title="L2-UVP against the true map", xlabel="% (lower is better)")
plt.show()
