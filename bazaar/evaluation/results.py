"""What a load run measured, and the documents made of it (summary.json, cache-events.json, the
rows of requests.csv; the formats are in the module `files`). Plain data and functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from bazaar.evaluation.stats import hit_rate, summarise
from bazaar.evaluation.workload import OK, TYPES


@dataclass(frozen=True)
class RequestRecord:
    cache: str  # "on" | "off"
    p: float
    client: int
    type: str  # workload.LOOKUP | TRADE | QUERY
    start: float  # seconds since the run started
    latency_ms: float
    status: int  # 0 when no HTTP answer came
    outcome: str  # workload.OK or a short description of the problem

    @property
    def ok(self) -> bool:
        return self.outcome == OK


@dataclass
class RunResult:
    """One (cache, p) run. The cache fields stay None when the front end's cache is off."""

    cache: str
    p: float
    duration_s: float
    requests: list[RequestRecord] = field(default_factory=list)
    cache_before: dict[str, Any] | None = None  # GET /cache data before the run
    cache_after: dict[str, Any] | None = None  # ... and after it
    events: list[dict[str, Any]] = field(default_factory=list)  # {"t", "kind", "name"}
    dropped_events: int = 0  # events the bounded log lost between two polls

    @property
    def errors(self) -> int:
        return sum(not r.ok for r in self.requests)


def cache_report(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any] | None:
    """The cache's counters over one run: the difference of two GET /cache reports."""
    if before is None or after is None:
        return None
    delta = {k: after[k] - before[k] for k in ("hits", "misses", "evictions")}
    return {**delta, "hit_rate": hit_rate(delta["hits"], delta["misses"])}


def type_summary(records: Sequence[RequestRecord]) -> dict[str, Any]:
    """Latency over every request of one type (failed ones too: their wait was real), plus
    how many failed."""
    summary = summarise([r.latency_ms for r in records])
    summary["errors"] = sum(not r.ok for r in records)
    return summary


def run_summary(run: RunResult) -> dict[str, Any]:
    count = len(run.requests)
    return {
        "cache": run.cache,
        "p": run.p,
        "duration_s": run.duration_s,
        "requests": count,
        "throughput_rps": count / run.duration_s if run.duration_s > 0 else None,
        "errors": run.errors,
        "cache_report": cache_report(run.cache_before, run.cache_after),
        "types": {t: type_summary([r for r in run.requests if r.type == t]) for t in TYPES},
    }


def summary_document(settings: dict[str, Any], runs: Sequence[RunResult]) -> dict[str, Any]:
    return {"settings": settings, "runs": [run_summary(run) for run in runs]}


def cache_events_document(runs: Sequence[RunResult]) -> dict[str, Any]:
    return {"runs": [
        {
            "p": run.p,
            "capacity": run.cache_before["capacity"],
            "names_at_start": list(run.cache_before["names"]),
            "events": run.events,
        }
        for run in runs
        if run.cache_before is not None
    ]}


def relative_events(events: Sequence[dict[str, Any]], wall_start: float) -> list[dict[str, Any]]:
    """GET /cache events with their time made relative to the run's wall-clock start."""
    return [{"t": round(e["time"] - wall_start, 6), "kind": e["kind"], "name": e["name"]} for e in events]


def fresh_events(events: Sequence[dict[str, Any]], cursor: int) -> tuple[list[dict[str, Any]], int, int]:
    """The events after `cursor` (a seq), the new cursor, and how many were lost in between
    (the log keeps only the latest events; a gap in seq means some fell out before we asked)."""
    new = sorted((e for e in events if e["seq"] > cursor), key=lambda e: e["seq"])
    if not new:
        return [], cursor, 0
    lost = new[0]["seq"] - cursor - 1 if cursor >= 0 else 0
    return new, new[-1]["seq"], lost
