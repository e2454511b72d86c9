"""Inverse problems with learned convex priors from gradient networks.

Solve y = A x + noise by minimising 1/2 ||A x - y||^2 + lam R(x):

* :mod:`~gradflow.inverse.operators`: forward operators with exact adjoints (denoising, blur,
  inpainting, super-resolution, compressed sensing, undersampled Fourier);
* :mod:`~gradflow.inverse.priors`: :class:`GradNetPrior` (convex, its gradient a convolutional monotone
  gradient network), :class:`WeaklyConvexPrior` (a convex minus a bounded concave ridge profile, with a
  certified weak-convexity modulus ``rho_bound()``), :class:`GradStepPrior` (non-convex, a gradient-step
  denoiser), total variation and Tikhonov;
* :func:`solve` (accelerated / proximal / plug-and-play solvers with certified step sizes),
  :func:`select_lam`;
* :func:`train_prior` (a prior trained as an unrolled denoiser through :func:`gradflow.train.fit`),
  :func:`patch_dataset` from bundled images with a fixed train/test/validation split (:data:`TRAIN_IMAGES`,
  :data:`TEST_IMAGES`, :data:`VALIDATION_IMAGES`), :func:`psnr` (gradflow's one PSNR, the same function as
  :func:`gradflow.vision.psnr`: every channel by default) and :func:`ssim`;
* shipped priors: ``GradNetPrior.pretrained(name)``, :func:`list_pretrained`.

Example:
    >>> import torch
    >>> from gradflow.inverse import Denoising, TotalVariation, solve
    >>> x = torch.rand(1, 1, 32, 32); y = Denoising().measure(x, 0.1)
    >>> solve(y, Denoising(), TotalVariation(), lam=0.05, method="fista").x.shape
    torch.Size([1, 1, 32, 32])
"""

from ._data import (
    TEST_IMAGES,
    TRAIN_IMAGES,
    VALIDATION_IMAGES,
    list_images,
    load_image,
    patch_dataset,
    read_image,
    write_image,
)
from ._metrics import psnr, ssim
from ._pretrained import list_pretrained
from ._solvers import METHODS, LamSelection, SolveResult, certified_convex, objective, select_lam, solve
from ._training import train_prior
from .operators import (
    MRI,
    Blur,
    CompressedSensing,
    Denoising,
    Downsampling,
    Inpainting,
    LinearOperator,
    gaussian_kernel,
    motion_kernel,
)
from .priors import GradNetPrior, GradStepPrior, Prior, Tikhonov, TotalVariation, WeaklyConvexPrior

__all__ = [
    "METHODS",
    "MRI",
    "TEST_IMAGES",
    "TRAIN_IMAGES",
    "VALIDATION_IMAGES",
    "Blur",
    "CompressedSensing",
    "Denoising",
    "Downsampling",
    "GradNetPrior",
    "GradStepPrior",
    "Inpainting",
    "LamSelection",
    "LinearOperator",
    "Prior",
    "SolveResult",
    "Tikhonov",
    "TotalVariation",
    "WeaklyConvexPrior",
    "certified_convex",
    "gaussian_kernel",
    "list_images",
    "list_pretrained",
    "load_image",
    "motion_kernel",
    "objective",
    "patch_dataset",
    "psnr",
    "read_image",
    "select_lam",
    "solve",
    "ssim",
    "train_prior",
    "write_image",
]
