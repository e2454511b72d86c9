"""Progress (tqdm bar or periodic status lines), JSON-lines history and deferred Ctrl-C (private)."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
from time import monotonic as _clock  # looked up at each use, so tests can replace it with a fake clock

from tqdm import tqdm

from ._checkpoint import atomic_write

__all__ = ["DEFAULT_STATUS_INTERVAL", "STATUS_INTERVAL_ENV", "DeferredInterrupt", "Reporter", "resolve_interval"]

#: seconds between two status lines off a terminal, unless ``progress_interval`` or the variable below says otherwise
DEFAULT_STATUS_INTERVAL = 10.0
#: environment variable read when ``fit`` gets no ``progress_interval`` (for scripts and the ``gradflow`` command)
STATUS_INTERVAL_ENV = "GRADFLOW_PROGRESS_INTERVAL"


def resolve_interval(value: float | None) -> float:
    """The status-line interval in seconds: ``value``, else ``$GRADFLOW_PROGRESS_INTERVAL``, else 10.

    Raises ValueError if the environment variable is set to anything but a finite number > 0.
    """
    if value is not None:
        return float(value)
    text = os.environ.get(STATUS_INTERVAL_ENV, "").strip()
    if not text:
        return DEFAULT_STATUS_INTERVAL
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{STATUS_INTERVAL_ENV} must be a number of seconds > 0, got {text!r}")
    return seconds


def _json_line(entry: dict) -> str:
    """One strict-JSON line (NaN and inf become null)."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in entry.items()}
    return json.dumps(clean, allow_nan=False) + "\n"


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def format_duration(seconds: float) -> str:
    """``"4.2s"``, ``"3m05s"`` or ``"2h03m05s"``."""
    if round(seconds, 1) < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _rate(steps: int, seconds: float) -> str:
    if steps <= 0 or seconds <= 0:
        return "- step/s"
    rate = steps / seconds
    if rate < 1:
        return f"{1 / rate:.3g} s/step"
    return f"{rate:.0f} step/s" if rate >= 100 else f"{rate:.3g} step/s"


class Reporter:
    """What :func:`fit` shows while it runs, and the optional JSON-lines history file.

    With ``enabled`` (``fit(progress=True)``) on the writing rank:

    * stderr is a terminal: a tqdm bar (loss and validation loss as postfix);
    * stderr is not a terminal (a log file, ``nohup``, CI, a notebook's subprocess): one status line
      at most every ``interval`` seconds of wall-clock time, checked after each step (never one per
      step)::

          fit: step 1200/5000 (24%)  loss 0.0123  val 0.0150  lr 0.001  | 41.7 step/s  elapsed 28.8s  eta 1m31s

      ``loss`` is the mean training loss of the steps since the previous line, ``val`` the latest
      validation loss, the rate is that of this call, and the ETA is the smaller of the remaining
      steps at that rate and what is left of ``max_time`` (then marked ``(max_time)``).

    Either way there is a first line with the budget (steps, epochs, batch size, ``max_time``,
    device, where a resume starts) and a last line with the stop reason (``completed``,
    ``early_stopping``, ``max_time``, ``interrupted`` or the exception's name), the step reached, the
    elapsed time, the training loss of the last history entry and the best validation loss.
    Disabled, nothing is written.

    Why plain lines printed to ``sys.stderr``, and not ``logging`` or tqdm off a terminal: progress is
    output the caller asked for (``progress=True``), like the bar itself, which tqdm writes to
    stderr. Through ``logging`` it would be lost exactly where it is needed: a library must not
    configure handlers, and without one Python drops INFO records, so a script under ``nohup`` or in
    CI would stay silent. tqdm off a terminal (``file=``, ``mininterval``) still redraws with
    carriage returns and no newline: a log file gets one ever-growing line that ``tail -f``, ``grep``
    and CI viewers show badly or not at all. Newline-terminated lines on stderr keep stdout for
    results and read well in any log; Keras's progress bar likewise switches to such lines when
    stdout is not a terminal. Events for applications that configure logging stay on the
    ``gradflow.train`` logger (resume, stop). The interval is ``fit(progress_interval=...)``, else
    the environment variable ``GRADFLOW_PROGRESS_INTERVAL`` (e.g. for the ``gradflow`` command), else
    10 seconds.

    ``past`` is the history restored from a checkpoint: the file is rewritten (atomically) to exactly
    those entries, so a resumed run never duplicates lines logged after its checkpoint.
    """

    prefix = "fit: "

    def __init__(
        self,
        enabled: bool,
        total: int,
        initial: int,
        history_path,
        past: list[dict],
        write: bool,
        *,
        interval: float | None = None,
        budget: str = "",
        lr=None,
        max_time: float | None = None,
    ):
        stream = sys.stderr
        self.mode = None  # None (silent), "bar" (a terminal) or "lines" (anything else)
        if enabled and write and stream is not None:
            self.mode = "bar" if _isatty(stream) else "lines"
        interval = DEFAULT_STATUS_INTERVAL if interval is None else interval
        self.total, self.initial, self.step = total, initial, initial
        self.interval, self.lr, self.max_time = interval, lr, max_time
        self.window_sum, self.window_count, self.loss, self.val, self.logged = 0.0, 0, None, None, None
        self.start = _clock()
        self.next_line = self.start + interval
        if self.mode == "lines":
            budget += f"; a status line every {format_duration(interval)}"
        if self.mode is not None and budget:
            self._say(budget)
        self.bar = tqdm(
            total=total,
            initial=initial,
            unit="step",
            dynamic_ncols=True,
            disable=self.mode != "bar",
        )
        self.file = None
        if history_path is not None and write:
            text = "".join(_json_line(e) for e in past)
            path = atomic_write(history_path, lambda f: f.write(text.encode()))
            self.file = open(path, "a")

    def _say(self, text: str) -> None:
        stream = sys.stderr
        if stream is not None:
            print(self.prefix + text, file=stream, flush=True)

    def advance(self, loss: float, val: float | None = None, *, final: bool = False) -> None:
        """Count one step with its training loss (and validation loss, if evaluated after it).

        Off a terminal, writes a status line if ``interval`` seconds have passed since the previous
        one, unless this is the ``final`` step (the end line follows).
        """
        self.step += 1
        self.window_sum, self.window_count = self.window_sum + loss, self.window_count + 1
        if val is not None:
            self.val = val
        self.bar.update(1)
        if self.mode != "lines" or final:
            return
        now = _clock()
        if now >= self.next_line:
            self._say(self._status(now))
            self.next_line = now + self.interval

    def _take_loss(self) -> float | None:
        """Mean training loss of the steps since the previous call (or the previous value if none)."""
        if self.window_count:
            self.loss = self.window_sum / self.window_count
            self.window_sum, self.window_count = 0.0, 0
        return self.loss

    def _status(self, now: float) -> str:
        elapsed, done = now - self.start, self.step - self.initial
        parts = [f"step {self.step}/{self.total} ({100 * self.step / self.total:.0f}%)"]
        loss = self._take_loss()
        if loss is not None:
            parts.append(f"loss {loss:.4g}")
        if self.val is not None:
            parts.append(f"val {self.val:.4g}")
        if self.lr is not None:
            parts.append(f"lr {self.lr():.3g}")
        eta = (self.total - self.step) * elapsed / done if done and elapsed > 0 else None
        bound = ""
        if self.max_time is not None and (eta is None or self.max_time - elapsed < eta):
            eta, bound = max(0.0, self.max_time - elapsed), " (max_time)"
        timing = f"{_rate(done, elapsed)}  elapsed {format_duration(elapsed)}"
        if eta is not None:
            timing += f"  eta {format_duration(eta)}{bound}"
        return "  ".join(parts) + "  | " + timing

    def log(self, entry: dict) -> None:
        self.logged = entry
        postfix = {"loss": f"{entry['loss']:.4g}"}
        if entry.get("val_loss") is not None:
            postfix["val"] = f"{entry['val_loss']:.4g}"
        self.bar.set_postfix(postfix, refresh=False)
        if self.file is not None:
            self.file.write(_json_line(entry))
            self.file.flush()

    def close(self, reason: str | None = None, detail: str = "", step: int | None = None) -> None:
        """Close the bar and the history file; write the end line: stop ``reason``, ``step`` (default: the
        steps counted), time, ``detail``."""
        step = self.step if step is None else step
        self.bar.close()
        if self.file is not None:
            self.file.close()
        if self.mode is None or reason is None:
            return
        elapsed = _clock() - self.start
        text = (
            f"stopped at step {step}/{self.total} ({reason}) after {format_duration(elapsed)}, "
            f"{_rate(step - self.initial, elapsed)}"
        )
        if self.logged is not None:  # the last history entry, as on the bar
            text += f"; loss {self.logged['loss']:.4g}"
        self._say(text + (f"; {detail}" if detail else ""))


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
