"""
Choosing an integrator: accuracy, energy drift and cost
=======================================================

:func:`gradflow.dynamics.odeint` integrates any field with torchdiffeq's methods and with three
symplectic methods written in gradflow: ``leapfrog`` (Stormer-Verlet, order 2) and ``yoshida4``
(order 4), explicit but only for separable H = T(p) + V(q), and ``implicit_midpoint`` (order 2, any H,
one nonlinear solve per step). This example measures, on the true pendulum H = 3 (1 - cos q) + p^2
(separable), the three things that decide between them:

1. the error at a fixed time against the step size (the order of the method);
2. the energy error over a long horizon (bounded for symplectic methods, drifting otherwise);
3. the cost: field evaluations and CPU seconds.

The user guide's :doc:`/guide/dynamics` page summarises the outcome.
"""

# %%
import time

import matplotlib.pyplot as plt
import torch

from gradflow.dynamics import Pendulum, odeint

torch.set_num_threads(1)

system = Pendulum()
z0 = torch.tensor([[2.0, 0.0], [1.0, 0.5], [0.5, -1.0]], dtype=torch.float64)
FIXED = ("leapfrog", "yoshida4", "implicit_midpoint", "rk4")
colors = {"leapfrog": "tab:blue", "yoshida4": "tab:purple", "implicit_midpoint": "tab:orange",
          "rk4": "tab:red", "dopri5": "tab:gray"}


class Counted(torch.nn.Module):
    """The true field, counting evaluations."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, z):
        self.calls += 1
        return system.vector_field(z)


# %%
# 1. Error at t = 10 against the step size
# ----------------------------------------
reference = system.simulate(z0, torch.tensor([0.0, 10.0], dtype=torch.float64))[-1]
steps = [0.2, 0.1, 0.05, 0.025]
errors = {m: [] for m in FIXED}
for method in FIXED:
    for h in steps:
        with torch.no_grad():
            z = odeint(system.vector_field, z0, torch.tensor([0.0, 10.0], dtype=torch.float64), method=method,
                       step_size=h)[-1]
        errors[method].append((z - reference).abs().max().item())
    slope = torch.log(torch.tensor(errors[method][-2] / errors[method][-1])) / torch.log(torch.tensor(2.0))
    print(f"{method:18s} error at h = 0.025: {errors[method][-1]:.1e}   observed order {slope:.2f}")

# %%
# 2. and 3. Energy over a long horizon, and cost, at one step size
# -----------------------------------------------------------------
# Every fixed-step method at h = 0.1 over t in [0, 100] (1000 steps); dopri5 (adaptive, the default of
# ``odeint``) at its default tolerances, for reference.
t = torch.arange(0.0, 100.0 + 1e-9, 0.1, dtype=torch.float64)
drift, cost = {}, {}
for method in (*FIXED, "dopri5"):
    field = Counted()
    start = time.process_time()
    with torch.no_grad():
        z = odeint(field, z0, t, method=method)
    seconds = time.process_time() - start
    H = system.hamiltonian(z)
    drift[method] = (H - H[0]).abs().amax(-1)  # worst of the three initial states, at every time
    cost[method] = (field.calls, seconds)
    print(f"{method:18s} max |H(t) - H(0)| at t <= 10: {drift[method][: 101].max():.1e}, "
          f"t <= 100: {drift[method].max():.1e}   field evaluations {field.calls:6d}   "
          f"CPU {seconds:.2f} s")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
for method in FIXED:
    axes[0].loglog(steps, errors[method], "o-", color=colors[method], label=method)
axes[0].set(title="error at t = 10 (max over states)", xlabel="step size h", ylabel="max |z - z_ref|")
axes[0].legend()
for method, values in drift.items():
    axes[1].semilogy(t[10::10], values[10::10], color=colors[method], label=method, lw=0.8)
axes[1].set(title="energy error, h = 0.1 (dopri5: adaptive)", xlabel="t", ylabel="max |H(t) - H(0)|")
axes[1].legend(loc="lower right")
fig.tight_layout()
plt.show()
