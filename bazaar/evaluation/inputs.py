"""Reading the evaluation's inputs: a `bazaar load --out` folder and a `bazaar chaos --out` folder.

The formats are the shared ones (summary.json, cache-events.json, requests.csv; attempts.csv,
faults.json). Anything missing or malformed is an InputError naming the file and the problem, so
the command can print one line instead of a traceback. Optional files read as None.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUMMARY = "summary.json"
CACHE_EVENTS = "cache-events.json"
REQUESTS = "requests.csv"
ATTEMPTS = "attempts.csv"
FAULTS = "faults.json"
TYPES = ("lookup", "trade", "query")
OK_OUTCOMES = ("ok", "200 ok")


class InputError(Exception):
    """An input folder or file that is missing or not in the expected format."""


@dataclass(frozen=True)
class TypeStats:
    count: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    max_ms: float | None


@dataclass(frozen=True)
class LoadRun:
    cache: str  # "on" | "off"
    p: float
    duration_s: float
    requests: int
    throughput_rps: float
    errors: int
    cache_report: dict[str, Any] | None  # hits, misses, evictions, hit_rate
    types: dict[str, TypeStats]

    def stats(self, kind: str) -> TypeStats | None:
        """The type's numbers, or None when the run made no such request."""
        s = self.types.get(kind)
        return s if s is not None and s.count > 0 and s.p50_ms is not None else None

    @property
    def hit_rate(self) -> float | None:
        rate = (self.cache_report or {}).get("hit_rate")
        return float(rate) if isinstance(rate, (int, float)) else None


@dataclass(frozen=True)
class CacheEvent:
    t: float
    kind: str  # insert | evict | invalidate
    name: str


@dataclass(frozen=True)
class CacheTimeline:
    p: float
    capacity: int | None
    names_at_start: list[str]
    events: list[CacheEvent]


@dataclass
class LoadData:
    directory: Path
    settings: dict[str, Any]
    runs: list[LoadRun]
    timelines: list[CacheTimeline] | None  # None: no cache-events.json
    failures: Counter = field(default_factory=Counter)  # (type, outcome) of every non-ok request

    def run(self, cache: str, p: float) -> LoadRun | None:
        return next((r for r in self.runs if r.cache == cache and r.p == p), None)

    def ps(self, cache: str) -> list[float]:
        return sorted(r.p for r in self.runs if r.cache == cache)


@dataclass(frozen=True)
class Attempt:
    client: int
    key: str
    sent: float
    done: float
    latency_ms: float
    outcome: str
    number: int | None

    @property
    def ok(self) -> bool:
        return self.outcome in OK_OUTCOMES


@dataclass(frozen=True)
class Fault:
    at: float
    kind: str
    target: str
    was_leader: bool
    pause: float
    back: float


@dataclass(frozen=True)
class Invariant:
    name: str
    passed: bool
    detail: str


@dataclass
class ChaosData:
    directory: Path
    duration: float
    seed: int | None
    faults: list[Fault]
    failovers: list[float | None]
    invariants: list[Invariant]
    attempts: list[Attempt]
    extra: dict[str, Any]  # what `bazaar chaos` adds beyond the format: clients, fault_every, orders...


@dataclass(frozen=True)
class ScalePoint:
    """One point of a bench scale curve: a Bazaar load and its reference, run in turns."""
    at: int  # connections, or orders of history
    per_second: float | None
    reference_per_second: float | None  # the bare Klein route's, or the empty cluster's
    p99: float | None  # seconds
    reference_p99: float | None


@dataclass(frozen=True)
class BenchData:
    """What `python bench/run.py --json FILE` wrote, as far as the figures need it."""
    path: Path
    connections: list[ScalePoint]  # trades, beside the bare POST route
    history: list[ScalePoint]  # trades on a seeded history, beside an empty cluster


# ---- small checked accessors ------------------------------------------------------------------


def _number(value: Any, where: str, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _get(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise InputError(f"{where}: missing {key!r}")
    return obj[key]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from None
    except ValueError as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
            return list(reader)
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from None
    except csv.Error as e:
        raise InputError(f"{path}: not valid CSV ({e})") from None


# ---- the load folder -----------------------------------------------------------------------------


def read_load(directory: Path) -> LoadData:
    summary_path = directory / SUMMARY
    if not directory.is_dir():
        raise InputError(f"{directory}: no such directory (expected the output of `bazaar load --out DIR`)")
    if not summary_path.is_file():
        raise InputError(f"{summary_path}: not found (expected the output of `bazaar load --out DIR`)")
    summary = _read_json(summary_path)
    settings = _get(summary, "settings", str(summary_path))
    raw_runs = _get(summary, "runs", str(summary_path))
    if not isinstance(raw_runs, list) or not raw_runs:
        raise InputError(f"{summary_path}: 'runs' holds no run")
    runs = [_load_run(r, f"{summary_path}: run {i}") for i, r in enumerate(raw_runs)]
    events_path = directory / CACHE_EVENTS
    timelines = _timelines(_read_json(events_path), str(events_path)) if events_path.is_file() else None
    requests_path = directory / REQUESTS
    failures: Counter = Counter()
    if requests_path.is_file():
        for row in _read_csv(requests_path, ("type", "outcome")):
            if row["outcome"] not in OK_OUTCOMES:
                failures[(row["type"], row["outcome"])] += 1
    return LoadData(directory, settings if isinstance(settings, dict) else {}, runs, timelines, failures)


def _load_run(raw: Any, where: str) -> LoadRun:
    cache = _get(raw, "cache", where)
    if cache not in ("on", "off"):
        raise InputError(f"{where}: cache must be 'on' or 'off', got {cache!r}")
    types = {}
    for kind, s in (_get(raw, "types", where) or {}).items():
        w = f"{where} type {kind}"
        types[kind] = TypeStats(
            int(_number(s.get("count", 0), w)), int(_number(s.get("errors", 0), w)),
            *(_number(s.get(k), w, optional=True) for k in ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms")),
        )
    report = raw.get("cache_report")
    return LoadRun(
        cache=cache,
        p=_number(_get(raw, "p", where), where),
        duration_s=_number(raw.get("duration_s", 0.0), where),
        requests=int(_number(raw.get("requests", 0), where)),
        throughput_rps=_number(raw.get("throughput_rps", 0.0), where),
        errors=int(_number(raw.get("errors", 0), where)),
        cache_report=report if isinstance(report, dict) else None,
        types=types,
    )


def _timelines(raw: Any, where: str) -> list[CacheTimeline]:
    out = []
    for i, run in enumerate(_get(raw, "runs", where)):
        w = f"{where}: run {i}"
        events = [
            CacheEvent(_number(_get(e, "t", w), w), str(_get(e, "kind", w)), str(_get(e, "name", w)))
            for e in _get(run, "events", w)
        ]
        capacity = run.get("capacity")
        out.append(CacheTimeline(_number(_get(run, "p", w), w), capacity if isinstance(capacity, int) else None,
                                 [str(n) for n in run.get("names_at_start") or []], events))
    return out


# ---- the chaos folder ----------------------------------------------------------------------------


def read_chaos(directory: Path) -> ChaosData:
    faults_path, attempts_path = directory / FAULTS, directory / ATTEMPTS
    for path in (faults_path, attempts_path):
        if not path.is_file():
            raise InputError(f"{path}: not found (expected the output of `bazaar chaos --out DIR`)")
    doc = _read_json(faults_path)
    where = str(faults_path)
    faults = [
        Fault(_number(_get(f, "at", where), where), str(_get(f, "kind", where)), str(_get(f, "target", where)),
              bool(_get(f, "was_leader", where)), _number(f.get("pause", 0.0), where),
              _number(f.get("back", _get(f, "at", where)), where))
        for f in _get(doc, "faults", where)
    ]
    failovers = [_number(f, where, optional=True) for f in _get(doc, "failovers", where)]
    invariants = [Invariant(str(_get(c, "name", where)), bool(_get(c, "passed", where)), str(c.get("detail", "")))
                  for c in _get(doc, "invariants", where)]
    attempts = []
    for n, row in enumerate(_read_csv(attempts_path, ("client", "sent", "done", "latency_ms", "outcome")), 2):
        try:
            attempts.append(Attempt(int(row["client"]), row.get("key", ""), float(row["sent"]), float(row["done"]),
                                    float(row["latency_ms"]), row["outcome"],
                                    int(row["number"]) if row.get("number") else None))
        except ValueError as e:
            raise InputError(f"{attempts_path}: line {n}: {e}") from None
    seed = doc.get("seed")
    known = {"duration", "seed", "faults", "failovers", "invariants"}
    return ChaosData(directory, _number(_get(doc, "duration", where), where), seed if isinstance(seed, int) else None,
                     faults, failovers, invariants, attempts, {k: v for k, v in doc.items() if k not in known})


def read_bench(path: Path) -> BenchData:
    """The scale curves of the bench's JSON (bench/report.py's as_json)."""
    if not path.is_file():
        raise InputError(f"{path}: not found (expected the JSON of `python bench/run.py --json FILE`)")
    doc = _read_json(path)
    where = str(path)

    def point(at: Any, measured: Any, reference: Any) -> ScalePoint:
        m, r = measured or {}, reference or {}
        return ScalePoint(int(_number(at, where) or 0), _number(m.get("per_second"), where, optional=True),
                          _number(r.get("per_second"), where, optional=True),
                          _number(m.get("p99"), where, optional=True), _number(r.get("p99"), where, optional=True))

    connections = [point(_get(t, "connections", where), t.get("measured"), t.get("baseline"))
                   for t in _get(doc, "trades", where)]
    history = [point(_get(h, "orders", where), h.get("trades"), h.get("empty")) for h in _get(doc, "history", where)]
    return BenchData(path, sorted(connections, key=lambda p: p.at), sorted(history, key=lambda p: p.at))
