"""Progress with rate and ETA: a tqdm bar on a terminal, periodic lines in a log, and a JSON-lines
metrics log.

A person at a terminal sees a bar that moves; a run whose output goes to a file (a background job,
a notebook's captured cell, CI) gets one plain line every so often instead, which a log can keep
and ``tail`` can read, where a bar's carriage returns would not be.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import sys
import time


def format_seconds(seconds: float) -> str:
    seconds = int(round(max(seconds, 0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def is_terminal(stream) -> bool:
    """Whether ``stream`` is an interactive terminal (a bar there; plain lines anywhere else)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def stage_progress(name: str, log=print, every_seconds: float = 20.0, stream=None):
    """``report(done, total)`` for a long stage.

    On a terminal (``stream``, default ``sys.stderr``) a tqdm bar with rate and ETA, gone when the
    stage ends. Anywhere else, a line ``[name] done/total (p%) | ... so far | ETA ...`` through
    ``log`` at most every ``every_seconds`` (and when it finishes), so a stage of minutes is not
    silent in a log and a fast one says nothing.
    """
    stream = sys.stderr if stream is None else stream
    # The bar needs tqdm (the models extra); the lines need nothing.
    if is_terminal(stream) and importlib.util.find_spec("tqdm") is not None:
        return _bar(name, stream)
    return _lines(name, log, every_seconds)


def _bar(name: str, stream):
    from tqdm import tqdm  # once per stage, not on every report from the compiled loop

    state = {"bar": None}

    def report(done: int, total: int) -> None:
        bar = state["bar"]
        if bar is None or bar.total != total:
            if bar is not None:
                bar.close()
            bar = state["bar"] = tqdm(total=total, desc=name, file=stream, leave=False, dynamic_ncols=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            state["bar"] = None

    return report


def _lines(name: str, log, every_seconds: float):
    start = time.perf_counter()
    last = [start]

    def report(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] < every_seconds and done < total:
            return
        if done == total and now - start < every_seconds:
            return  # finished within the first interval: nothing to follow
        last[0] = now
        rate = done / (now - start)
        eta = format_seconds((total - done) / rate) if rate > 0 else "?"
        log(f"  [{name}] {done}/{total} ({100.0 * done / total:.0f}%) | {format_seconds(now - start)} so far | ETA {eta}")

    return report


class ProgressLog:
    """Prints ``[name] step i/n (p%) | r steps/s | ETA ... | metrics`` and appends metrics to a file.

    The rate is measured over the steps done in this process, so a resumed run's ETA is honest.
    """

    def __init__(
        self,
        name: str,
        total_steps: int,
        start_step: int = 0,
        metrics_path: str | os.PathLike | None = None,
        unit: str = "steps",
        stream=None,
    ):
        self.name = name
        self.total = total_steps
        self.start_step = start_step
        self.unit = unit
        self.stream = stream or sys.stderr
        self.metrics_path = pathlib.Path(metrics_path) if metrics_path else None
        self._t0 = time.perf_counter()

    def update(self, step: int, metrics: dict[str, float] | None = None) -> None:
        elapsed = time.perf_counter() - self._t0
        done = step - self.start_step
        rate = done / elapsed if elapsed > 0 else float("nan")
        eta = (self.total - step) / rate if rate and rate > 0 else float("nan")
        metrics = {k: float(v) for k, v in (metrics or {}).items()}
        shown = " | ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        eta_text = format_seconds(eta) if eta == eta else "?"
        # Slow work (minutes per cell of a sweep) reads better as time per unit.
        rate_text = (
            f"{1.0 / rate:.0f} s per {self.unit.rstrip('s')}" if 0 < rate < 0.1 else f"{rate:.2f} {self.unit}/s"
        )
        line = (
            f"[{self.name}] {step}/{self.total} ({100.0 * step / max(self.total, 1):.1f}%) | "
            f"{rate_text} | ETA {eta_text}" + (f" | {shown}" if shown else "")
        )
        print(line, file=self.stream, flush=True)
        if self.metrics_path is not None:
            record = {"step": step, "time": time.time(), "rate": rate, **metrics}
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")
