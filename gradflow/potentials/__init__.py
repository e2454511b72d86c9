"""Potentials: gradient networks, baselines and the Potential contract.

Every model here maps (..., d) -> (..., d) as the gradient of a scalar potential F, with ``energy``
(F up to a constant) and ``jacobian`` (the Hessian of F). Gradient networks compute the field in one
forward pass; the monotone ones (mGradNets) are gradients of convex potentials and add
``lipschitz_bound``, ``logdet_jacobian``, ``inverse`` and ``conjugate``.
"""

from ._activations import (
    ELEMENTWISE_ACTIVATIONS,
    MODULE_ACTIVATIONS,
    MONOTONE_ACTIVATIONS,
    make_elementwise_activation,
    make_module_activation,
    positive,
)
from ._base import MonotonePotential, Potential, autograd_gradient, autograd_jacobian
from ._baselines import ICNN, MLPField, MLPPotential
from ._cascaded import GradNetC, MGradNetC, identity_scale_init
from ._fast import FastGradientField
from ._inverse import ConvergenceError
from ._modular import GradNetM, MGradNetM
from ._registry import count_parameters, create_potential, list_potentials

__all__ = [
    "ELEMENTWISE_ACTIVATIONS",
    "ICNN",
    "MODULE_ACTIVATIONS",
    "MONOTONE_ACTIVATIONS",
    "ConvergenceError",
    "FastGradientField",
    "GradNetC",
    "GradNetM",
    "MGradNetC",
    "MGradNetM",
    "MLPField",
    "MLPPotential",
    "MonotonePotential",
    "Potential",
    "autograd_gradient",
    "autograd_jacobian",
    "count_parameters",
    "create_potential",
    "identity_scale_init",
    "list_potentials",
    "make_elementwise_activation",
    "make_module_activation",
    "positive",
]
