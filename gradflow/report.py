"""Deprecated: moved to :mod:`gradflow.cli.report` with the rest of the application layer."""

import warnings

from .cli.report import Comparison, Report, require_matplotlib, summary_rows

__all__ = ["Comparison", "Report", "require_matplotlib", "summary_rows"]

warnings.warn("gradflow.report moved to gradflow.cli.report; this alias will be removed", DeprecationWarning,
              stacklevel=2)
