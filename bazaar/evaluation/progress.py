"""The live progress bar on a terminal (tqdm, redrawn in place), or nothing but a line per
finished run when the stream is not a terminal (a log file, a pipe)."""

from __future__ import annotations

import time
from typing import Callable, TextIO

from tqdm import tqdm

# E.g. " 25%|#####               | on p=0.4 cache=on 1234 req 380 req/s"
BAR_FORMAT = "{percentage:3.0f}%|{bar:20}| {desc}"


class _Bar(tqdm):
    monitor_interval = 0  # no monitor thread: the caller redraws (draw) on its own schedule


def requests_text(requests: int | None, rate: float | None) -> str:
    """" 1234 req 380 req/s" while a run is on (the rate once it is known), else ""."""
    if requests is None:
        return ""
    return f" {requests} req" + ("" if rate is None else f" {rate:.0f} req/s")


class Progress:
    """Counts iterations over the whole invocation and requests within the current run; on a
    terminal (live) a tqdm bar shows them, redrawn only by draw() and say()."""

    def __init__(self, stream: TextIO, total_iterations: int, live: bool,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._stream = stream
        self.total = max(total_iterations, 1)
        self.live = live
        self._clock = clock
        self.iterations = 0
        self._label = ""
        self._requests: int | None = None  # None between runs
        self._run_started = clock()
        # delay: never drawn by tqdm on its own (not at creation, not on update), only by refresh().
        self._bar = _Bar(total=self.total, file=stream, disable=not live, leave=False, bar_format=BAR_FORMAT,
                         delay=float("inf"))

    @property
    def fraction(self) -> float:
        return min(self.iterations / self.total, 1.0)

    def status(self, label: str) -> None:
        """What happens between runs (starting a cluster ...)."""
        self._label, self._requests = label, None

    def start_run(self, label: str) -> None:
        self._label, self._requests, self._run_started = f"on {label}", 0, self._clock()

    def request_done(self) -> None:
        if self._requests is not None:
            self._requests += 1

    def iterations_done(self, count: int = 1) -> None:
        self.iterations += count
        self._bar.update(count)

    def description(self) -> str:
        """The text beside the bar: the label, and the run's requests and their rate."""
        elapsed = self._clock() - self._run_started
        rate = self._requests / elapsed if self._requests is not None and elapsed > 0 else None
        return self._label + requests_text(self._requests, rate)

    def draw(self) -> None:
        if self.live and self._label:
            self._bar.set_description_str(self.description(), refresh=False)
            self._bar.refresh()

    def say(self, text: str) -> None:
        """A line of its own, above the bar."""
        self._bar.clear()
        self._stream.write(text + "\n")
        self.draw()

    def clear(self) -> None:
        """The bar off the screen, for good (the end of the invocation)."""
        self._bar.clear()
        self._bar.close()
        self._stream.flush()
