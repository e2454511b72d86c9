"""
A GradNet as a drop-in module in a plain PyTorch loop
=====================================================

Every gradflow network is an ordinary ``torch.nn.Module``: it can be trained by a hand-written loop
with any optimizer, put inside other modules and saved with ``state_dict``. Here a monotone GradNet
(:class:`~gradflow.potentials.MGradNetM`) and an unconstrained MLP field
(:class:`~gradflow.potentials.MLPField`) of similar size learn the same vector field from noisy
samples, in the same twenty-line loop. The target is the gradient of the convex function
F(x) = log sum_i exp(x_i) + ||x||^2 / 4 on R^3.

Both fit the samples (the printed test errors say which fits better in this run); only the GradNet is
a gradient field, i.e. has a symmetric Jacobian, and a monotone one (a positive semidefinite
Jacobian), wherever it is evaluated, by construction rather than as a result of training. The MLP's
Jacobian is measurably asymmetric, so it is not the gradient of any potential.
"""

# %%
import matplotlib.pyplot as plt
import torch

from gradflow.potentials import MGradNetM, MLPField, autograd_jacobian, count_parameters

torch.set_num_threads(1)
torch.manual_seed(0)


def target_field(x):
    """grad F for F(x) = logsumexp(x) + ||x||^2 / 4: softmax(x) + x / 2."""
    return torch.softmax(x, -1) + x / 2


x_train = 2 * torch.randn(2000, 3)
g_train = target_field(x_train) + 0.05 * torch.randn(2000, 3)  # noisy gradient observations
x_test = 2 * torch.randn(1000, 3)

models = {"MGradNetM": MGradNetM(3, width=32, n_modules=4), "MLPField": MLPField(3, widths=(20, 20))}
for name, model in models.items():
    print(f"{name}: {count_parameters(model)} parameters")

# %%
# The training loop: nothing gradflow-specific
# --------------------------------------------
history = {}
for name, model in models.items():
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=1500)
    losses = []
    for _ in range(1500):
        batch = torch.randint(0, len(x_train), (128,))
        loss = (model(x_train[batch]) - g_train[batch]).square().sum(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    history[name] = losses

# %%
# Accuracy and structure on held-out points
# -----------------------------------------
# Both Jacobians are taken by autograd (:func:`~gradflow.potentials.autograd_jacobian`), so the
# comparison does not rely on the GradNet's own analytic ``jacobian`` method.
results = {}
for name, model in models.items():
    with torch.no_grad():
        test_mse = (model(x_test) - target_field(x_test)).square().sum(-1).mean().item()
    J = autograd_jacobian(model, x_test).detach()
    asym = ((J - J.mT).norm(dim=(-2, -1)) / J.norm(dim=(-2, -1))).median().item()
    min_eig = torch.linalg.eigvalsh((J + J.mT) / 2).min().item()
    results[name] = (test_mse, asym, min_eig)
    print(f"{name:9s} test MSE {test_mse:.2e}   median ||J - J^T|| / ||J|| {asym:.1e}   "
          f"smallest eigenvalue of sym(J) {min_eig:+.3f}")

# %%
# A GradNet also gives the potential, so the field can be integrated back to F (up to a constant):
model = models["MGradNetM"]
with torch.no_grad():
    F = torch.logsumexp(x_test, -1) + x_test.square().sum(-1) / 4
    F_net = model.energy(x_test)
    shift = (F - F_net).mean()
print(f"potential error after removing the constant: RMS {(F_net + shift - F).square().mean().sqrt():.3f}, "
      f"spread of F {F.std():.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for name, losses in history.items():
    smooth = torch.tensor(losses).unfold(0, 50, 50).mean(-1)
    axes[0].semilogy(torch.arange(len(smooth)) * 50, smooth, label=name)
axes[0].axhline(3 * 0.05**2, color="k", ls=":", label="noise level")
axes[0].set(title="training loss (plain PyTorch loop)", xlabel="step", ylabel="MSE")
axes[0].legend()
names = list(results)
axes[1].bar(names, [max(results[n][1], 1e-9) for n in names], color=["tab:green", "tab:gray"])
axes[1].set_yscale("log")
axes[1].set(title="median relative Jacobian asymmetry on test points", ylabel="||J - J^T|| / ||J||")
fig.tight_layout()
plt.show()
