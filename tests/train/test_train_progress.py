"""fit's progress: status lines off a terminal (start, periodic, end), the tqdm bar on one, silence when off."""

import io
import re
import sys

import pytest
import torch

from gradflow.train import TrainingError, _report, fit

CPU = {"device": "cpu"}


class FakeClock:
    """A monotonic clock that advances ``tick`` seconds at every reading."""

    def __init__(self, tick=1.0):
        self.now, self.tick = 0.0, tick

    def __call__(self):
        self.now += self.tick
        return self.now - self.tick


def _lines(text):
    return [line for line in text.splitlines() if line.startswith("fit: ")]


def test_off_a_terminal_fit_writes_a_start_line_periodic_status_lines_and_an_end_line(
    capsys, monkeypatch, regression, mse_loss
):
    """The reporter reads the clock once at the start and once per step: with a clock that advances one
    second per reading and a 10 s interval, steps 10, 20 and 30 of 35 get a status line, no other does."""
    monkeypatch.setattr(_report, "_clock", FakeClock())
    x, y, _ = regression
    result = fit(torch.nn.Linear(3, 1).double(), mse_loss, (x, y), val_data=(x, y), steps=35, batch_size=16,
                 eval_every=5, lr=0.01, max_time=3600, progress=True, progress_interval=10, **CPU)
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout stays for results
    lines = _lines(captured.err)
    assert captured.err.splitlines() == lines  # plain lines: no tqdm bar, no carriage returns
    assert "\r" not in captured.err
    start, *status, end = lines
    assert start == ("fit: 35 steps, batch size 16, max_time 1h00m00s, device cpu; a status line every 10.0s")
    steps = [int(re.match(r"fit: step (\d+)/35 ", line).group(1)) for line in status]
    assert steps == [10, 20, 30]  # at most one line per 10 s, never one per step
    losses = [h["loss"] for h in result.history]
    first = status[0]
    assert f"loss {sum(losses[:10]) / 10:.4g}" in first  # mean training loss since the previous line
    val_at_10 = next(h["val_loss"] for h in result.history if h["step"] == 10)
    assert f"val {val_at_10:.4g}" in first and "lr 0.01" in first
    assert "(29%)" in first and "1 step/s" in first and "elapsed 10.0s" in first and "eta 25.0s" in first
    assert end.startswith("fit: stopped at step 35/35 (completed) after ")
    assert f"best val {result.best_val_loss:.4g} at step {result.best_step}" in end


def test_status_lines_use_real_time_with_a_tiny_interval(capfd, regression, mse_loss):
    x, y, _ = regression
    fit(torch.nn.Linear(3, 1).double(), mse_loss, (x, y), epochs=2, batch_size=32, progress=True,
        progress_interval=1e-9, **CPU)
    lines = _lines(capfd.readouterr().err)
    assert lines[0] == "fit: 4 steps (2 epochs of 2 batches), batch size 32, device cpu; a status line every 0.0s"
    assert [line.split()[2] for line in lines[1:-1]] == ["1/4", "2/4", "3/4"]  # the last step: the end line
    assert all(re.search(r"loss \S+  lr 0.001  \| \S+ (step/s|s/step)  elapsed \S+  eta \S+$", line)
               for line in lines[1:-1])
    assert lines[-1].startswith("fit: stopped at step 4/4 (completed) after ")


def test_eta_is_bounded_by_max_time(capsys, monkeypatch, regression, mse_loss):
    monkeypatch.setattr(_report, "_clock", FakeClock())
    x, y, _ = regression
    fit(torch.nn.Linear(3, 1).double(), mse_loss, (x, y), steps=1000, max_time=500, progress=True,
        progress_interval=100, **CPU)  # max_time is measured by the real clock: the run completes
    status = _lines(capsys.readouterr().err)[1:3]
    assert "step 100/1000" in status[0] and "eta 6m40s (max_time)" in status[0]  # 500 - 100 s < 900 steps at 1/s
    assert "step 200/1000" in status[1] and "eta 5m00s (max_time)" in status[1]


def test_progress_false_writes_nothing(capfd, regression, mse_loss):
    x, y, _ = regression
    fit(torch.nn.Linear(3, 1).double(), mse_loss, (x, y), val_data=(x, y), steps=20, progress=False,
        progress_interval=1e-9, **CPU)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_on_a_terminal_the_bar_replaces_the_status_lines(monkeypatch, regression, mse_loss):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    x, y, _ = regression
    fit(torch.nn.Linear(3, 1).double(), mse_loss, (x, y), steps=20, progress=True, progress_interval=1e-9, **CPU)
    text = terminal.getvalue()
    assert "20/20" in text and "\r" in text  # tqdm's bar
    lines = _lines(text)
    assert lines[0].startswith("fit: 20 steps") and "status line" not in lines[0]
    assert not any(line.startswith("fit: step ") for line in text.replace("\r", "\n").splitlines())
    assert any(line.startswith("fit: stopped at step 20/20 (completed)") for line in text.splitlines())


def test_the_end_line_names_the_error_that_stopped_the_run(capsys, regression, mse_loss):
    x, y, _ = regression

    def nan_at_step_3(model, batch, calls=[]):  # noqa: B006 (counts calls)
        calls.append(1)
        return mse_loss(model, batch) * (float("nan") if len(calls) == 3 else 1.0)

    with pytest.raises(TrainingError):
        fit(torch.nn.Linear(3, 1).double(), nan_at_step_3, (x, y), steps=5, progress=True, **CPU)
    assert _lines(capsys.readouterr().err)[-1].startswith("fit: stopped at step 2/5 (TrainingError) after ")


def test_a_resumed_run_says_where_it_starts(capsys, tmp_path, regression, mse_loss):
    x, y, _ = regression
    options = {"batch_size": 16, "checkpoint_dir": tmp_path, "progress": True, **CPU}
    fit(torch.nn.Linear(3, 1).double(), mse_loss, (x, y), epochs=1, **options)
    capsys.readouterr()
    torch.manual_seed(0)
    fit(torch.nn.Linear(3, 1).double(), mse_loss, (x, y), epochs=2, resume=True, **options)
    lines = _lines(capsys.readouterr().err)
    assert lines[0].startswith("fit: 8 steps (2 epochs of 4 batches), batch size 16, device cpu, resuming at step 4;")
    assert lines[-1].startswith("fit: stopped at step 8/8 (completed)")


def test_the_interval_comes_from_the_environment_when_not_given(capsys, monkeypatch, regression, mse_loss):
    x, y, _ = regression
    monkeypatch.setenv("GRADFLOW_PROGRESS_INTERVAL", "60")
    fit(torch.nn.Linear(3, 1).double(), mse_loss, (x, y), steps=2, progress=True, **CPU)
    assert _lines(capsys.readouterr().err)[0].endswith("a status line every 1m00s")
    fit(torch.nn.Linear(3, 1).double(), mse_loss, (x, y), steps=2, progress=True, progress_interval=5, **CPU)
    assert _lines(capsys.readouterr().err)[0].endswith("a status line every 5.0s")  # the argument wins
    monkeypatch.setenv("GRADFLOW_PROGRESS_INTERVAL", "often")
    with pytest.raises(ValueError, match="GRADFLOW_PROGRESS_INTERVAL must be a number of seconds > 0, got 'often'"):
        fit(torch.nn.Linear(3, 1).double(), mse_loss, (x, y), steps=2, progress=True, **CPU)
    fit(torch.nn.Linear(3, 1).double(), mse_loss, (x, y), steps=2, progress=False, **CPU)  # not read when silent


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.04, "0.0s"), (12.34, "12.3s"), (59.96, "1m00s"), (185, "3m05s"), (7385, "2h03m05s")]
)
def test_format_duration(seconds, text):
    assert _report.format_duration(seconds) == text
