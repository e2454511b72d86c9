"""Worker for test_train_ddp.py: run with plain python (1 process) or under torchrun (N processes).

Trains a small float64 network whose loss differentiates through its inputs (double backward, via
``model.energy``), with validation, gradient clipping and a last global batch smaller than the number
of processes, then a run interrupted after 6 steps and resumed. Every rank writes its results to
``OUT/rank{r}.pt``.
"""

import os
import sys

import torch

from gradflow.train import fit


class Potential(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

    def energy(self, x):
        return self.net(x).squeeze(-1)

    def forward(self, x):
        x = x.detach().requires_grad_(True)
        return torch.autograd.grad(self.energy(x).sum(), x, create_graph=True)[0]


def field_loss(model, batch):
    x, target = batch
    return ((model(x) - target) ** 2).sum(-1).mean()


def run(out_dir, steps, resume=False):
    torch.manual_seed(1)  # a different init on every rank would be overwritten by rank 0's broadcast
    if int(os.environ.get("RANK", "0")) == 1:
        torch.manual_seed(99)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(41, 2, generator=gen, dtype=torch.float64)  # batches 8,...,8,1: one rank gets nothing
    target = torch.stack([x[:, 1], -x[:, 0]], -1) + 0.5 * x
    model = Potential().double()
    result = fit(
        model,
        field_loss,
        (x, target),
        val_data=(x[:20], target[:20]),
        steps=steps,
        batch_size=8,
        lr=0.01,
        grad_clip=1.0,
        eval_every=3,
        log_every=1,
        seed=3,
        device="cpu",
        progress=False,
        val_grad=True,
        checkpoint_dir=out_dir,
        resume=resume,
    )
    return {
        "params": {k: v.clone() for k, v in model.state_dict().items()},
        "losses": [h["loss"] for h in result.history],
        "best_step": result.best_step,
        "val_losses": [h.get("val_loss") for h in result.history],
        "steps": result.steps,
    }


def main(out):
    full = run(None, 12)
    run(os.path.join(out, "ckpt"), 6)
    resumed = run(os.path.join(out, "ckpt"), 12, resume=True)
    rank = int(os.environ.get("RANK", "0"))
    torch.save(
        {"full": full, "resumed": resumed, "world_size": int(os.environ.get("WORLD_SIZE", "1"))},
        os.path.join(out, f"rank{rank}.pt"),
    )


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1])
    if torch.distributed.is_initialized():  # leave together: a rank that exits first can abort the other's Gloo
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
