"""Progress bar, JSON-lines history and deferred Ctrl-C (private)."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from tqdm.auto import tqdm

__all__ = ["DeferredInterrupt", "Reporter"]


def _jsonable(entry: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in entry.items()}


class Reporter:
    """tqdm bar (only when ``enabled`` and stderr is a TTY) and an optional JSON-lines history file.

    ``past`` is the history restored from a checkpoint: the file is rewritten (atomically) to exactly
    those entries, so a resumed run never duplicates lines logged after its checkpoint.
    """

    def __init__(self, enabled: bool, total: int, initial: int, history_path, past: list[dict], write: bool):
        self.bar = tqdm(
            total=total,
            initial=initial,
            unit="step",
            dynamic_ncols=True,
            disable=not (enabled and write and sys.stderr.isatty()),
        )
        self.file = None
        if history_path is not None and write:
            path = Path(history_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.writelines(json.dumps(_jsonable(e), allow_nan=False) + "\n" for e in past)
            os.replace(tmp, path)
            self.file = open(path, "a")

    def advance(self) -> None:
        self.bar.update(1)

    def log(self, entry: dict) -> None:
        postfix = {"loss": f"{entry['loss']:.4g}"}
        if entry.get("val_loss") is not None:
            postfix["val"] = f"{entry['val_loss']:.4g}"
        self.bar.set_postfix(postfix, refresh=False)
        if self.file is not None:
            self.file.write(json.dumps(_jsonable(entry), allow_nan=False) + "\n")
            self.file.flush()

    def close(self) -> None:
        self.bar.close()
        if self.file is not None:
            self.file.close()


class DeferredInterrupt:
    """Context manager: the first Ctrl-C (SIGINT) only sets ``requested``; a second one interrupts at once.

    The trainer polls ``requested`` after each step, writes ``last.pt`` and then raises
    KeyboardInterrupt, so Ctrl-C never loses the steps since the last checkpoint. Installed only when
    ``enabled`` and in the main thread; the previous handler is restored on exit.
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if self.enabled:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self.enabled:
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
        return False
