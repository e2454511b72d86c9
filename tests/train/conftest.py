"""Shared fixtures for the training-loop tests: tiny seeded models, data and losses."""

import pytest
import torch


@pytest.fixture
def regression():
    """(x, y): 64 points in R^3 with y = x @ w_true + 0.5, float64; returns (x, y, w_true)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    w_true = torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64)
    return x, x @ w_true + 0.5, w_true


def mse(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def make_mlp(seed=0, dropout=0.0):
    """A float64 3 -> 16 -> 1 MLP (with dropout, so that resuming must restore the torch RNG)."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Dropout(dropout), torch.nn.Linear(16, 1)
    ).double()


@pytest.fixture
def mlp_factory():
    return make_mlp


@pytest.fixture
def mse_loss():
    return mse


def params_of(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture
def snapshot():
    """``snapshot(model)``: a detached copy of the state dict."""
    return params_of
