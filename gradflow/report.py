"""A small Markdown report with PNG figures and metric tables, written by ``gradflow demo`` and the
domain commands. matplotlib is imported lazily (``pip install gradflow[plot]``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["Report", "require_matplotlib"]


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


class Report:
    """Collects Markdown blocks and figures for one output directory.

    Example:
        >>> report = Report("out", "My run")
        >>> report.heading("Results"); report.table(["model", "dB"], [["a", -40.1]])
        >>> path = report.write()  # out/report.md
    """

    def __init__(self, out_dir, title: str):
        self.out_dir = Path(out_dir)
        self.title = title
        self.blocks: list[str] = []
        self.summary: list[list] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(f"{'#' * level} {text}")

    def text(self, text: str) -> None:
        self.blocks.append(text.strip())

    def table(self, headers, rows) -> None:
        lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
        self.blocks.append("\n".join(lines))

    def metric(self, section: str, name: str, value) -> None:
        """Record one headline number for the summary table at the top of the report."""
        self.summary.append([section, name, value])

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
        if self.summary:
            lines = ["| section | metric | value |", "|---|---|---|"]
            lines += [f"| {s} | {n} | {_cell(v)} |" for s, n, v in self.summary]
            parts += ["## Summary", "\n".join(lines)]
        parts += self.blocks
        path = self.out_dir / "report.md"
        tmp = path.with_suffix(".md.tmp")
        tmp.write_text("\n\n".join(parts) + "\n")
        os.replace(tmp, path)
        return path
