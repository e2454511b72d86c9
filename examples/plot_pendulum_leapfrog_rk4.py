"""
A pendulum learned from trajectories, rolled out with leapfrog and RK4
======================================================================

Learn the pendulum H = 3 (1 - cos q) + p^2 from 25 noisy trajectories (the HNN reference protocol) with
a separable Hamiltonian network H(q, p) = T(p) + V(q) made of two gradient networks, then roll the
learned model out far beyond the training window with two fixed-step integrators at the same step size:
leapfrog (Stormer-Verlet, order 2, symplectic) and classical RK4 (order 4, not symplectic).

What to look at: along the RK4 rollout the energy drifts steadily (here it decays: the orbit spirals
inwards), so its error grows with the horizon; along the leapfrog rollout it oscillates in a bounded
band and does not drift. At this step size leapfrog's band is wider than RK4's drift over the first
tens of time units (leapfrog is the lower-order method); the drift overtakes it later. Leapfrog also
evaluates the field fewer times per step here (3 against 4). The benchmark of every model on this task
is in :doc:`/benchmarks/hamiltonian`.
"""

# %%
# Data and model
# --------------
import time

import matplotlib.pyplot as plt
import torch

from gradflow.dynamics import Pendulum, create_dynamics_model, derivative_mse, fit_derivatives, odeint

torch.set_num_threads(1)
torch.manual_seed(0)

system = Pendulum()
train, test = system.dataset(seed=0)  # 50 trajectories of 45 points on [0, 3], noise 0.1, half for testing
print("train states", tuple(train.states.shape), "test states", tuple(test.states.shape))

model = create_dynamics_model("separable_c", 2, n_params=2000)  # T: monotone GradNet-C, V: GradNet-C
result = fit_derivatives(model, train, test, steps=1500, lr=5e-3, progress=False)
print(f"test derivative MSE {derivative_mse(model, test):.4f} after {result.steps} steps "
      "(the states carry noise of std 0.1, so about 0.036 is the floor of this protocol)")

# %%
# Long rollouts with two integrators
# ----------------------------------
# :func:`~gradflow.dynamics.odeint` takes torchdiffeq's methods and the symplectic ones by name. The
# step size is coarse on purpose (h = 0.2, about 1/13 of the small-oscillation period) and the horizon
# is 100 times the training window.
model = model.double()
z0 = test.initial_states[:1].double()
t = torch.arange(0.0, 300.0 + 1e-9, 0.2, dtype=torch.float64)

rollouts = {}
for method in ("leapfrog", "rk4"):
    start = time.process_time()
    with torch.no_grad():
        rollouts[method] = odeint(model, z0, t, method=method)
    print(f"{method:8s} {len(t) - 1} steps in {time.process_time() - start:.2f} CPU s")

# %%
# Energy along the rollouts
# -------------------------
# Left: the learned Hamiltonian along each rollout (what the integrator is asked to conserve; the
# cascaded nets' ``energy`` is computed by quadrature, so it is evaluated at every fifth time only).
# Middle: the true H along the same rollouts (what a user cares about); the model's own error adds to
# the integrator's there. Right: the rollouts in phase space over the true orbit (the level set of H).
colors = {"leapfrog": "tab:blue", "rk4": "tab:red"}
every = slice(None, None, 5)
fig, axes = plt.subplots(1, 3, figsize=(14, 4))
with torch.no_grad():
    for method, z in rollouts.items():
        learned = model.hamiltonian(z[every])[:, 0]
        true = system.hamiltonian(z)[:, 0]
        axes[0].plot(t[every], learned - learned[0], color=colors[method], label=method)
        axes[1].plot(t, true - true[0], color=colors[method], label=method)
        axes[2].plot(z[:, 0, 0], z[:, 0, 1], color=colors[method], lw=0.4, label=method)
        for horizon in (30, 300):
            k = round(horizon / 0.2)
            print(f"{method:8s} t <= {horizon:3d}: max |H_model(t) - H_model(0)| = "
                  f"{(learned[: k // 5 + 1] - learned[0]).abs().max():.3f}, "
                  f"max |H(t) - H(0)| (true H) = {(true[: k + 1] - true[0]).abs().max():.3f}")
    q, p = torch.meshgrid(torch.linspace(-3, 3, 200, dtype=torch.float64),
                          torch.linspace(-3, 3, 200, dtype=torch.float64), indexing="ij")
    level = system.hamiltonian(z0)[0].item()
    axes[2].contour(q, p, system.hamiltonian(torch.stack([q, p], -1)), levels=[level], colors="k",
                    linestyles="--", linewidths=1)
axes[0].set(title="learned H along the rollout", xlabel="t", ylabel="H(t) - H(0)")
axes[1].set(title="true H along the rollout", xlabel="t", ylabel="H(t) - H(0)")
axes[2].set(title="phase portrait (dashed: true orbit)", xlabel="q", ylabel="p")
for ax in axes:
    ax.legend(loc="lower left")
fig.tight_layout()
plt.show()
