"""The summary table `bazaar load` prints, made from summary.json's document. Plain text (bazaar.tables)."""

from __future__ import annotations

from typing import Any

from bazaar.evaluation.workload import TYPES
from bazaar.tables import table


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_table(summary: dict[str, Any]) -> list[str]:
    latency, runs = [], []
    for run in summary["runs"]:
        for t in TYPES:
            s = run["types"][t]
            latency.append((run["cache"], f"{run['p']:g}", t, s["count"], _number(s["p50_ms"]), _number(s["p95_ms"]),
                            _number(s["p99_ms"]), _number(s["mean_ms"]), s["errors"]))
        report = run["cache_report"]
        rate = "-" if report is None or report["hit_rate"] is None else f"{report['hit_rate']:.3f}"
        runs.append((run["cache"], f"{run['p']:g}", run["requests"], f"{run['duration_s']:.2f}",
                     _number(run["throughput_rps"], 1), run["errors"], rate))
    return (["latency (ms) per request type"]
            + table(("cache", "p", "type", "count", "p50", "p95", "p99", "mean", "errors"), latency,
                    align="lrlrrrrrr")
            + ["", "runs"]
            + table(("cache", "p", "requests", "seconds", "req/s", "errors", "hit rate"), runs, align="lrrrrrr"))


def run_line(run: dict[str, Any]) -> str:
    """One finished run in a line (run: an entry of summary.json's "runs")."""
    report = run["cache_report"]
    rate = "" if report is None or report["hit_rate"] is None else f", hit rate {report['hit_rate']:.3f}"
    return (f"cache={run['cache']} p={run['p']:g}: {run['requests']} requests in {run['duration_s']:.2f} s, "
            f"{_number(run['throughput_rps'], 1)} req/s, {run['errors']} errors{rate}")
