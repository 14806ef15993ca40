"""The summary table `bazaar load` prints, made from summary.json's document. Plain text."""

from __future__ import annotations

from typing import Any

from bazaar.evaluation.workload import TYPES


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_table(summary: dict[str, Any]) -> list[str]:
    lines = [
        "latency (ms) per request type",
        f"{'cache':<6}{'p':>5}  {'type':<7}{'count':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'mean':>9}{'errors':>8}",
    ]
    for run in summary["runs"]:
        for t in TYPES:
            s = run["types"][t]
            lines.append(
                f"{run['cache']:<6}{run['p']:>5g}  {t:<7}{s['count']:>7}{_number(s['p50_ms']):>9}"
                f"{_number(s['p95_ms']):>9}{_number(s['p99_ms']):>9}{_number(s['mean_ms']):>9}{s['errors']:>8}"
            )
    lines += [
        "",
        "runs",
        f"{'cache':<6}{'p':>5}  {'requests':>8}{'seconds':>9}{'req/s':>9}{'errors':>8}{'hit rate':>10}",
    ]
    for run in summary["runs"]:
        report = run["cache_report"]
        rate = "-" if report is None or report["hit_rate"] is None else f"{report['hit_rate']:.3f}"
        lines.append(
            f"{run['cache']:<6}{run['p']:>5g}  {run['requests']:>8}{run['duration_s']:>9.2f}"
            f"{_number(run['throughput_rps'], 1):>9}{run['errors']:>8}{rate:>10}"
        )
    return lines


def run_line(run: dict[str, Any]) -> str:
    """One finished run in a line (run: an entry of summary.json's "runs")."""
    report = run["cache_report"]
    rate = "" if report is None or report["hit_rate"] is None else f", hit rate {report['hit_rate']:.3f}"
    return (f"cache={run['cache']} p={run['p']:g}: {run['requests']} requests in {run['duration_s']:.2f} s, "
            f"{_number(run['throughput_rps'], 1)} req/s, {run['errors']} errors{rate}")
