"""Optimal transport maps as gradients of convex potentials (Brenier), with POT as the exact reference.

* :func:`fit_ot_map` fits T = grad psi, psi convex, from samples, samplers or densities, by a method object:
  the semi-dual :class:`SemiDual` (``"dual"``, with a :class:`Conjugate` solver: :class:`DenseNewton`,
  :class:`NewtonCG` or :class:`Amortized`), minibatch-plan regression :class:`PlanRegression` (``"plan"``)
  or the Monge-Ampere equation :class:`MongeAmpere` (``"monge_ampere"``), and returns an :class:`OTMap`
  (forward, inverse, potential, McCann interpolation, cost, save/load).
* Metrics: :func:`l2_uvp`, :func:`cosine_similarity`, :func:`w2` (exact or entropic, via POT),
  :func:`gaussian_map` (closed form) and :func:`bures_map` (the linear baseline from samples).
* :mod:`gradflow.transport.benchmarks`: known-truth pairs at any dimension: Gaussian -> Gaussian, and a
  Gaussian mixture pushed through a known strongly convex potential: input-convex networks made in code
  ("icnn", after Korotin et al. 2021), a sum of smoothed norms ("smoothed_norm"), or a random mGradNet-M
  ("mixture", the same family as the default fitted network).
"""

from . import benchmarks
from ._conjugate import Amortized, Conjugate, DenseNewton, NewtonCG
from ._fit import fit_ot_map
from ._map import OTMap
from ._methods import CONJUGATES, METHODS, MongeAmpere, PlanRegression, SemiDual, TransportMethod
from ._metrics import AffineMap, bures_map, cosine_similarity, gaussian_map, l2_uvp, w2
from ._potential import DEFAULT_MODULES, BrenierNet, default_net

__all__ = [
    "CONJUGATES",
    "DEFAULT_MODULES",
    "METHODS",
    "AffineMap",
    "Amortized",
    "BrenierNet",
    "Conjugate",
    "DenseNewton",
    "MongeAmpere",
    "NewtonCG",
    "OTMap",
    "PlanRegression",
    "SemiDual",
    "TransportMethod",
    "benchmarks",
    "bures_map",
    "cosine_similarity",
    "default_net",
    "fit_ot_map",
    "gaussian_map",
    "l2_uvp",
    "w2",
]
