"""`bazaar load`: for each cache mode and each p, concurrent clients against a front end; every
request timed; the files written and a summary printed.

Without --url, one throwaway cluster per cache mode (five foreground twistd children on free
loopback ports, see bazaar.chaos.processes), started and stopped in turn, in a temporary
directory removed at the end. Every child is stopped whatever happens: an error, Ctrl-C or
SIGTERM. With --url, the front end's own cache mode is read from GET /cache; --cache, when
given, must match it (else a usage error).

Status lines and the progress bar go to stderr, the summary table to stdout. The exit status is
0 when every request got its expected answer, 1 when some did not (the files are written either
way), 130 when interrupted (the finished runs are written).
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

from bazaar.config import Config, load_config
from bazaar.tools.cluster import ClusterError
from bazaar.reactor.run import run_on_reactor
from bazaar.evaluation.files import write_all
from bazaar.evaluation.progress import Progress
from bazaar.evaluation.results import RunResult, run_summary
from bazaar.evaluation.table import run_line, summary_table

ON, OFF, BOTH = "on", "off", "both"
INTERRUPTED = 130
DRAW_EVERY = 0.2  # seconds between redraws of the progress bar
PROBE_TIMEOUT = 5.0


# A proxy from the environment (http_proxy) must not stand between us and the front end.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class UsageError(Exception):
    """The options do not fit the front end (exit status 2)."""


class LoadError(ClusterError):
    """The load could not run (no front end, a cluster that would not start)."""


@dataclass(frozen=True)
class LoadSettings:
    url: str | None = None  # None: own clusters
    clients: int = 5
    p: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8)
    requests: int = 200  # iterations per client and run
    cache: str | None = None  # ON | OFF | BOTH; None: BOTH, or the front end's mode with --url
    out: Path | None = None
    seed: int | None = None


def main(settings: LoadSettings, say: Callable[[str], None] = print, err: TextIO | None = None) -> int:
    err = err if err is not None else sys.stderr
    modes = cache_modes(settings)
    seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(1 << 31)
    out = output_directory(settings.out)
    progress = Progress(err, len(modes) * len(settings.p) * settings.clients * settings.requests, err.isatty())
    progress.say(f"seed: {seed}")
    completed: list[RunResult] = []
    root: Path | None = None
    clusters: list[Any] = []
    previous_handler = signal.signal(signal.SIGTERM, _terminated)
    try:
        if settings.url is None:
            root = Path(tempfile.mkdtemp(prefix="bazaar-load-"))
            progress.say(f"cluster directory: {root}")
        finished, _ = run_on_reactor(lambda reactor: _all_runs(
            reactor, settings, modes, seed, root, clusters, progress, completed))
        signal.signal(signal.SIGTERM, _terminated)
    except Exception:
        # The runs that did finish are worth keeping; the error is reported by the caller.
        progress.clear()
        _report(out, settings, modes, seed, completed, say, err)
        raise
    finally:
        progress.clear()
        for cluster in clusters:
            cluster.stop_all()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous_handler)
    errors = _report(out, settings, modes, seed, completed, say, err)
    if not finished:
        print(f"interrupted after {len(completed)} of {len(modes) * len(settings.p)} runs", file=err)
        return INTERRUPTED
    return 1 if errors else 0


def _report(out: Path, settings: LoadSettings, modes: list[str], seed: int, completed: list[RunResult],
            say: Callable[[str], None], err: TextIO) -> int:
    """Write the files and print the table for the finished runs; the number of errors."""
    if not completed:
        return 0
    document = {"clients": settings.clients, "requests": settings.requests, "p": list(settings.p),
                "cache": modes, "url": settings.url, "seed": seed}
    paths = write_all(out, document, completed)
    summaries = [run_summary(run) for run in completed]
    for line in summary_table({"runs": summaries}):
        say(line)
    say("")
    for path in paths:
        say(f"wrote {path}")
    lost = sum(run.dropped_events for run in completed)
    if lost:
        print(f"warning: the front end's cache event log dropped {lost} events between polls", file=err)
    return sum(s["errors"] for s in summaries)


def cache_modes(settings: LoadSettings) -> list[str]:
    """The cache modes to run, in order. With --url, the front end's own (read now)."""
    if settings.url is None:
        return [ON, OFF] if settings.cache in (None, BOTH) else [settings.cache]
    actual = ON if frontend_cache_enabled(settings.url) else OFF
    if settings.cache not in (None, actual):
        raise UsageError(f"the front end at {settings.url} has its cache {actual}, but --cache is "
                         f"{settings.cache}; leave --cache out or say --cache {actual}")
    return [actual]


def frontend_cache_enabled(url: str) -> bool:
    try:
        with _opener.open(url + "/cache", timeout=PROBE_TIMEOUT) as response:
            enabled = json.loads(response.read())["data"]["enabled"]
    except urllib.error.HTTPError as e:
        raise LoadError(f"GET {url}/cache answered {e.code}: is that a Bazaar front end?") from None
    except urllib.error.URLError as e:
        reason = getattr(e.reason, "strerror", None) or e.reason
        raise LoadError(f"cannot reach the front end at {url}: {reason}") from None
    except OSError as e:
        raise LoadError(f"cannot reach the front end at {url}: {e.strerror or e}") from None
    except (ValueError, KeyError, TypeError):
        enabled = None
    if not isinstance(enabled, bool):
        raise LoadError(f"GET {url}/cache gave no cache report: is that a Bazaar front end?")
    return enabled


def output_directory(wanted: Path | None) -> Path:
    """--out (created if needed), or a new ./bazaar-load-<timestamp>[-n]."""
    if wanted is None:
        base = Path(f"bazaar-load-{time.strftime('%Y%m%d-%H%M%S')}")
        wanted, n = base, 1
        while wanted.exists():
            n += 1
            wanted = base.with_name(f"{base.name}-{n}")
    if wanted.exists() and not wanted.is_dir():
        raise UsageError(f"--out {wanted}: exists and is not a directory")
    wanted.mkdir(parents=True, exist_ok=True)
    return wanted


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


# ---- on the reactor ---------------------------------------------------------------------------


async def _all_runs(reactor: Any, settings: LoadSettings, modes: list[str], seed: int, root: Path | None,
                    clusters: list[Any], progress: Progress, completed: list[RunResult]) -> None:
    from twisted.internet.task import LoopingCall
    from twisted.internet.threads import deferToThread

    token = uuid.uuid4().hex[:12]
    drawing = LoopingCall(progress.draw)
    drawing.clock = reactor
    if progress.live:
        drawing.start(DRAW_EVERY)
    try:
        for cache in modes:
            if root is None:
                await _runs_of_mode(reactor, settings, cache, settings.url, None, seed, token, progress, completed)
                continue
            cluster = _new_cluster(root, cache)
            clusters.append(cluster)
            progress.say(f"starting a cluster with the cache {cache}")
            progress.status(f"starting a cluster with the cache {cache}")
            await deferToThread(cluster.start_all, _ready(cluster))
            await _runs_of_mode(reactor, settings, cache, cluster.frontend_url, load_config(cluster.config_path),
                                seed, token, progress, completed)
            progress.status("stopping the cluster")
            await deferToThread(cluster.stop_all)
    finally:
        if drawing.running:
            drawing.stop()


async def _runs_of_mode(reactor: Any, settings: LoadSettings, cache: str, url: str, config: Config | None,
                        seed: int, token: str, progress: Progress, completed: list[RunResult]) -> None:
    """Every p against one front end, on one connection pool, after checking its cache mode.
    With our own cluster's `config`, the cache's events are read on the internal listener as
    the operator; a front end named by --url shows its counters only."""
    from bazaar.evaluation.cachewatch import CacheWatch
    from bazaar.evaluation.exchange import new_client
    from bazaar.evaluation.loadrun import RunPlan, run_once
    from bazaar.tls.files import load_credentials
    from bazaar.tls.identity import OPERATOR
    from bazaar.tls.web import internal_url

    http, pool = new_client(reactor, settings.clients + 2)
    watching, watch_pool, watch_url = http, None, url
    if config is not None:
        credentials = load_credentials(config, OPERATOR)
        watching, watch_pool = new_client(reactor, 1, credentials)
        watch_url = internal_url(config, credentials)
    try:
        watch = CacheWatch(watching, reactor, watch_url)
        enabled = (await watch.read())["enabled"]
        if enabled != (cache == ON):
            raise LoadError(f"the front end at {url} has its cache {ON if enabled else OFF}, expected {cache}")
        for p in settings.p:
            plan = RunPlan(cache, p, settings.clients, settings.requests, seed, token)
            completed.append(await run_once(reactor, http, url, plan, watch if enabled else None, progress))
            progress.status("")
            progress.say(run_line(run_summary(completed[-1])))
    finally:
        await pool.closeCachedConnections()
        if watch_pool is not None:
            await watch_pool.closeCachedConnections()


def _new_cluster(root: Path, cache: str) -> Any:
    from bazaar.chaos.processes import ChaosCluster

    directory = root / f"cache-{cache}"
    directory.mkdir()
    return ChaosCluster(directory, cache=cache == ON)


def _ready(cluster: Any) -> Callable[[], bool]:
    from bazaar.tools.cluster import frontend_ready

    config = load_config(cluster.config_path)
    return lambda: frontend_ready(config)
