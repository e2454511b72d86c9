"""gradflow: gradient networks for scientific machine learning.

A gradient network is a neural network that is, by construction, the gradient of a scalar potential
(GradNet) or of a convex potential (monotone mGradNet). See :mod:`gradflow.potentials`.

Errors: bad arguments raise ValueError naming the argument and what was expected (a
:class:`CheckpointError`, a ValueError, for checkpoint files that cannot be read or do not fit); a training
run that diverges raises :class:`TrainingError` and a solve that does not converge :class:`ConvergenceError`.
The three classes are importable from here (loaded on first use).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gradflow")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["CheckpointError", "ConvergenceError", "TrainingError", "__version__"]

_ERRORS = {"CheckpointError": "gradflow.train", "ConvergenceError": "gradflow.potentials",
           "TrainingError": "gradflow.train"}


def __getattr__(name: str):
    if name in _ERRORS:
        import importlib

        return getattr(importlib.import_module(_ERRORS[name]), name)
    raise AttributeError(f"module 'gradflow' has no attribute {name!r}")
