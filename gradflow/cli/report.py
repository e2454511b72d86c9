"""A small Markdown report with PNG figures and metric tables, written by ``gradflow demo`` and the
domain commands. matplotlib is imported lazily (``pip install gradflow[plot]``)."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .._validation import check_choice

__all__ = ["Comparison", "Report", "require_matplotlib", "summary_rows"]

#: the columns of the comparison summary (see :func:`summary_rows`)
SUMMARY_HEADERS = ["section", "task", "metric", "gradflow model", "baseline", "margin", "verdict"]
_MARGINS = ("ratio", "db")


def require_matplotlib():
    """Import matplotlib with the Agg backend, or raise ImportError saying how to install it."""
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'gradflow[plot]'") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "figure"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


@dataclass(frozen=True)
class Comparison:
    """One summary row: gradflow's model ``ours`` against the baseline ``baseline`` on one task.

    ``margin`` is how the two values are compared: ``"db"`` for values in decibels (the margin is the
    difference |ours - baseline| dB) and ``"ratio"`` for positive values (the margin is the factor
    max/min). ``failure`` is the reason gradflow's fit counts as failed under the task's own criterion
    (e.g. "error -0.8 dB is above the -10 dB failure line"), or None; a non-finite value of ours is a
    failure whatever the criterion.

    Example:
        >>> row = Comparison("fields", "nonconvex_2d", "error (dB)", "gradnet_c", -31.0, "mlp_potential", -32.5,
        ...                  lower_is_better=True, margin="db")
        >>> row.outcome()
        ('1.5 dB', 'gradflow loses by 1.5 dB')
    """

    section: str
    task: str
    metric: str
    ours: str
    ours_value: float
    baseline: str
    baseline_value: float
    lower_is_better: bool
    margin: str = "ratio"
    failure: str | None = None

    def __post_init__(self):
        for name in ("section", "task", "metric", "ours", "baseline"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        object.__setattr__(self, "ours_value", _real(self.ours_value, "ours_value"))
        object.__setattr__(self, "baseline_value", _real(self.baseline_value, "baseline_value"))
        if not isinstance(self.lower_is_better, bool):
            raise ValueError(f"lower_is_better must be True or False, got {self.lower_is_better!r}")
        check_choice(self.margin, "margin", _MARGINS)
        if self.margin == "ratio":
            for name in ("ours_value", "baseline_value"):
                value = getattr(self, name)
                if math.isfinite(value) and value <= 0:
                    raise ValueError(f"{name} must be > 0 for a ratio margin, got {value!r} (use margin='db')")
        if self.failure is not None and (not isinstance(self.failure, str) or not self.failure):
            raise ValueError(f"failure must be None or a non-empty string, got {self.failure!r}")

    @property
    def direction(self) -> str:
        return "lower is better" if self.lower_is_better else "higher is better"

    def outcome(self) -> tuple[str, str]:
        """(margin text, verdict): "gradflow wins by ...", "gradflow loses by ...", "tie", or a FAILED flag.

        With values a (ours) and b (baseline): the dB margin is |a - b| dB, the ratio margin is
        max(a, b) / min(a, b); gradflow wins when a < b (``lower_is_better``) or a > b (otherwise).
        """
        a, b = self.ours_value, self.baseline_value
        if not math.isfinite(a):
            return "-", f"FAILED: gradflow's {self.ours} gave a non-finite {self.metric} ({a})"
        if not math.isfinite(b):
            margin, verdict = "-", f"gradflow wins (the baseline {self.baseline} gave a non-finite {self.metric})"
        else:
            margin = f"{abs(a - b):.1f} dB" if self.margin == "db" else f"{max(a, b) / min(a, b):.2f}x"
            better = a < b if self.lower_is_better else a > b
            verdict = "tie" if a == b else f"gradflow {'wins' if better else 'loses'} by {margin}"
        if self.failure is not None:
            verdict = f"FAILED: {self.failure} ({verdict})"
        return margin, verdict


def summary_rows(comparisons) -> list[list[str]]:
    """The rows (columns :data:`SUMMARY_HEADERS`) of the summary table for a sequence of :class:`Comparison`.

    Raises ValueError if two comparisons share (section, task, metric, gradflow model): no row twice.

    Example:
        >>> summary_rows([Comparison("ot", "2-D pair", "L2-UVP %", "fitted map", 0.5, "linear", 2.0,
        ...                          lower_is_better=True)])[0][-2:]
        ['4.00x', 'gradflow wins by 4.00x']
    """
    rows, seen = [], set()
    for c in comparisons:
        if not isinstance(c, Comparison):
            raise ValueError(f"comparisons must hold Comparison objects, got {type(c).__name__}")
        key = (c.section, c.task, c.metric, c.ours)
        if key in seen:
            raise ValueError(f"comparison {key} appears twice; each (section, task, metric, model) once")
        seen.add(key)
        margin, verdict = c.outcome()
        rows.append([c.section, c.task, f"{c.metric} ({c.direction})", f"{c.ours}: {_cell(c.ours_value)}",
                     f"{c.baseline}: {_cell(c.baseline_value)}", margin, verdict])
    return rows


class Report:
    """Collects Markdown blocks, figures and the comparisons of the summary table for one output directory.

    Example:
        >>> import tempfile
        >>> report = Report(tempfile.mkdtemp(), "My run")
        >>> report.heading("Results"); report.table(["model", "dB"], [["a", -40.1]])
        >>> path = report.write()  # <out_dir>/report.md
        >>> path.name
        'report.md'
    """

    def __init__(self, out_dir, title: str):
        self.out_dir = Path(out_dir)
        self.title = title
        self.blocks: list[str] = []
        self.summary: list[list] = []
        self.comparisons: list[Comparison] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(f"{'#' * level} {text}")

    def text(self, text: str) -> None:
        self.blocks.append(text.strip())

    def table(self, headers, rows) -> None:
        lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
        self.blocks.append("\n".join(lines))

    def metric(self, section: str, name: str, value) -> None:
        """Record one headline number (no baseline) for the table under the summary; ValueError if
        (section, name) was recorded before."""
        if any(s == section and n == name for s, n, _ in self.summary):
            raise ValueError(f"metric {name!r} of section {section!r} was already recorded")
        self.summary.append([section, name, value])

    def compare(self, *args, **kwargs) -> Comparison:
        """Record a :class:`Comparison` (same arguments) for the summary table at the top of the report;
        ValueError if its (section, task, metric, gradflow model) was recorded before."""
        comparison = Comparison(*args, **kwargs)
        self._add(comparison)
        return comparison

    def _add(self, comparison: Comparison) -> None:
        summary_rows([*self.comparisons, comparison])  # refuses a row twice
        self.comparisons.append(comparison)

    def parts(self) -> tuple[list[str], list[list], list[Comparison]]:
        """(Markdown blocks, headline metrics, comparisons): what :meth:`extend` adds to another report."""
        return list(self.blocks), [list(row) for row in self.summary], list(self.comparisons)

    def extend(self, parts) -> None:
        """Append the :meth:`parts` of another report (one written elsewhere, e.g. by a worker process into
        the same output directory); ValueError if a metric or comparison of it was recorded here before."""
        blocks, summary, comparisons = parts
        for section, name, value in summary:
            self.metric(section, name, value)
        for comparison in comparisons:
            self._add(comparison)
        self.blocks.extend(blocks)

    def figure(self, fig, name: str, caption: str) -> Path:
        """Save a matplotlib figure as figures/<name>.png, close it, and reference it in the report."""
        path = self.out_dir / "figures" / f"{_slug(name)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
        self.blocks.append(f"![{caption}](figures/{path.name})\n\n*{caption}*")
        return path

    def write(self) -> Path:
        """Write report.md atomically and return its path."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        parts = [f"# {self.title}"]
        if self.comparisons:
            lines = ["| " + " | ".join(SUMMARY_HEADERS) + " |", "|" + "---|" * len(SUMMARY_HEADERS)]
            lines += ["| " + " | ".join(row) + " |" for row in summary_rows(self.comparisons)]
            parts += ["## Summary: gradflow against its baselines",
                      "Per task, gradflow's model against the baseline, the margin and the verdict; a fit that "
                      "fails its task's criterion (stated in its section) is flagged FAILED.",
                      "\n".join(lines)]
        if self.summary:
            lines = ["| section | metric | value |", "|---|---|---|"]
            lines += [f"| {s} | {n} | {_cell(v)} |" for s, n, v in self.summary]
            parts += ["## Headline numbers" if self.comparisons else "## Summary", "\n".join(lines)]
        parts += self.blocks
        path = self.out_dir / "report.md"
        tmp = path.with_suffix(".md.tmp")
        tmp.write_text("\n\n".join(parts) + "\n")
        os.replace(tmp, path)
        return path
