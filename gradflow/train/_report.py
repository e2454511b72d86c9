"""Progress bar, JSON-lines history and deferred Ctrl-C (private)."""

from __future__ import annotations

import json
import math
import signal
import sys
import threading

from tqdm import tqdm

from ._checkpoint import atomic_write

__all__ = ["DeferredInterrupt", "Reporter"]


def _json_line(entry: dict) -> str:
    """One strict-JSON line (NaN and inf become null)."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in entry.items()}
    return json.dumps(clean, allow_nan=False) + "\n"


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
            text = "".join(_json_line(e) for e in past)
            path = atomic_write(history_path, lambda f: f.write(text.encode()))
            self.file = open(path, "a")

    def advance(self) -> None:
        self.bar.update(1)

    def log(self, entry: dict) -> None:
        postfix = {"loss": f"{entry['loss']:.4g}"}
        if entry.get("val_loss") is not None:
            postfix["val"] = f"{entry['val_loss']:.4g}"
        self.bar.set_postfix(postfix, refresh=False)
        if self.file is not None:
            self.file.write(_json_line(entry))
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
            signal.signal(signal.SIGINT, self._restore)
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if self.enabled:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self.enabled:
            signal.signal(signal.SIGINT, self._restore)
        return False

    @property
    def _restore(self):
        # getsignal() gives None for a handler not installed from Python; the default one is closest.
        return signal.default_int_handler if self._previous is None else self._previous
