"""One bounded load against one URL, by wrk when it is installed, else by Python processes."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

from bench import pyload, wrk
from bench.result import LoadResult


class LoadError(Exception):
    """The load generator failed; the message says how."""


class Loader:
    """Runs loads: `kind` is "get" (the URL as is), "orders" (POST /orders, unique keys) or
    "lookups" (GET /orders/<n>, n cycling through `numbers`)."""

    def __init__(self, scripts: Path, prefer_wrk: bool = True, processes: int = 4) -> None:
        self.wrk = wrk.find_wrk() if prefer_wrk else None
        self.processes = processes
        self._scripts = scripts  # a folder for the Lua files
        self._runs = 0

    @property
    def name(self) -> str:
        if self.wrk:
            return f"wrk ({self.wrk}, 1 thread)"
        return f"python ({self.processes} processes, http.client keep-alive)"

    def run(self, base_url: str, kind: str, path: str, connections: int, seconds: float,
            numbers: range = range(1)) -> LoadResult:
        self._runs += 1
        tag = f"r{os.getpid()}x{self._runs}"
        if self.wrk is None:
            return pyload.run(base_url, kind, path, connections, seconds, self.processes, tag, numbers)
        script_path = self._scripts / f"{kind}.lua"
        script_path.write_text(wrk.script(kind))
        argv = wrk.command(self.wrk, base_url + path, str(script_path), connections, seconds,
                           wrk.arguments(kind, tag, numbers))
        before = _children_cpu()
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            raise LoadError(f"wrk did not finish within {seconds + 30:g} s") from None
        cpu = _children_cpu() - before
        summary = wrk.parse_summary(done.stdout)
        if done.returncode != 0 or summary is None:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise LoadError(f"wrk failed (exit {done.returncode}): {tail[0]}")
        return LoadResult(
            loader="wrk", seconds=summary.seconds, requests=summary.requests,
            failures=summary.status_errors + summary.socket_errors,
            p50=summary.p50, p99=summary.p99, loader_cpu=cpu,
        )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
