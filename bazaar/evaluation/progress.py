"""The live progress bar on a terminal (redrawn in place with a carriage return), or nothing
but a line per finished run when stderr is not a terminal (a log file, a pipe)."""

from __future__ import annotations

import time
from typing import Callable, TextIO

WIDTH = 20


def bar_line(fraction: float, label: str, requests: int | None = None, rate: float | None = None,
             width: int = WIDTH) -> str:
    """E.g. "[#####               ]  25% on p=0.4 cache=on 1234 req 380 req/s"; the request
    count and rate only while a run is on."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(fraction * width)
    line = f"[{'#' * filled}{' ' * (width - filled)}] {fraction * 100:3.0f}% {label}"
    if requests is not None:
        line += f" {requests} req" + ("" if rate is None else f" {rate:.0f} req/s")
    return line


class Progress:
    """Counts iterations over the whole invocation and requests within the current run."""

    def __init__(self, stream: TextIO, total_iterations: int, live: bool,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._stream = stream
        self._total = max(total_iterations, 1)
        self.live = live
        self._clock = clock
        self._iterations = 0
        self._label = ""
        self._requests: int | None = None  # None between runs
        self._run_started = clock()
        self._drawn = 0  # characters of the bar on screen now

    def status(self, label: str) -> None:
        """What happens between runs (starting a cluster ...)."""
        self._label, self._requests = label, None

    def start_run(self, label: str) -> None:
        self._label, self._requests, self._run_started = f"on {label}", 0, self._clock()

    def request_done(self) -> None:
        if self._requests is not None:
            self._requests += 1

    def iterations_done(self, count: int = 1) -> None:
        self._iterations += count

    def line(self) -> str:
        elapsed = self._clock() - self._run_started
        rate = self._requests / elapsed if self._requests is not None and elapsed > 0 else None
        return bar_line(self._iterations / self._total, self._label, self._requests, rate)

    def draw(self) -> None:
        if self.live and self._label:
            text = self.line()
            self._stream.write("\r" + text.ljust(self._drawn))
            self._drawn = len(text)
            self._stream.flush()

    def say(self, text: str) -> None:
        """A line of its own, above the bar."""
        self.clear()
        self._stream.write(text + "\n")
        self.draw()

    def clear(self) -> None:
        if self._drawn:
            self._stream.write("\r" + " " * self._drawn + "\r")
            self._drawn = 0
        self._stream.flush()
