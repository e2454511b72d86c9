"""Deprecated: moved to :mod:`gradflow.cli.demo` with the rest of the application layer."""

import warnings

from .cli.demo import SECTIONS, run_demo

__all__ = ["SECTIONS", "run_demo"]

warnings.warn("gradflow.demo moved to gradflow.cli.demo; this alias will be removed", DeprecationWarning,
              stacklevel=2)
