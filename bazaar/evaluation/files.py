"""Writing a load run's files: requests.csv (one row per request), summary.json (settings and
per-run statistics, see results.run_summary) and cache-events.json (the cache's event log per
cache-on run). README.md's "Load" section describes them."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

from bazaar.evaluation.results import RunResult, cache_events_document, summary_document

REQUESTS = "requests.csv"
SUMMARY = "summary.json"
CACHE_EVENTS = "cache-events.json"
CSV_HEADER = ("cache", "p", "client", "type", "start", "latency_ms", "status", "outcome")


def write_requests_csv(path: Path, runs: Sequence[RunResult]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_HEADER)
        for run in runs:
            for r in run.requests:
                writer.writerow((r.cache, repr(float(r.p)), r.client, r.type, f"{r.start:.6f}",
                                 f"{r.latency_ms:.3f}", r.status, r.outcome))


def write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n")


def write_all(directory: Path, settings: dict[str, Any], runs: Sequence[RunResult]) -> list[Path]:
    """Write the three files into `directory` (which exists); returns their paths."""
    paths = [directory / REQUESTS, directory / SUMMARY, directory / CACHE_EVENTS]
    write_requests_csv(paths[0], runs)
    write_json(paths[1], summary_document(settings, runs))
    write_json(paths[2], cache_events_document(runs))
    return paths
