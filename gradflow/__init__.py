"""gradflow: gradient networks for scientific machine learning.

A gradient network is a neural network that is, by construction, the gradient of a scalar potential
(GradNet) or of a convex potential (monotone mGradNet). See :mod:`gradflow.potentials`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gradflow")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
