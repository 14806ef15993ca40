"""Statistics over a chaos run's records, and the report's text. Plain functions, no I/O."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable, Sequence


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank p-th percentile (0 < p <= 100) of `values`; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def failover_times(fault_times: Iterable[float], attempts: Iterable[Any]) -> list[float | None]:
    """For each fault time t: the time from t until the first successful attempt sent at or
    after t completed (None when no attempt sent after t succeeded). Attempts need .sent,
    .done and .outcome (clients.OK for a success)."""
    from bazaar.chaos.clients import OK

    successes = sorted((a.done, a.sent) for a in attempts if a.outcome == OK)
    out: list[float | None] = []
    for t in fault_times:
        done = [d for d, s in successes if s >= t]
        out.append(min(done) - t if done else None)
    return out


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def summary_line(label: str, values: Sequence[float], fmt=_seconds) -> str:
    return (f"{label}: n={len(values)} p50 {fmt(percentile(values, 50))}  p99 {fmt(percentile(values, 99))}  "
            f"max {fmt(max(values) if values else None)}")


def render(
    *,
    seed: int,
    duration: float,
    clients: int,
    fault_every: float,
    records: Any,  # clients.Records
    faults: Sequence[Any],  # faults.Fault
    failovers: Sequence[float | None],
    converged_after: float | None,
    unexpected_exits: Sequence[tuple[str, int]],
    checks: Sequence[Any],  # invariants.Check
) -> list[str]:
    lines = [
        f"chaos run: seed {seed}, {duration:g} s, {clients} clients, a fault every {fault_every:g} s",
        "",
        f"orders acknowledged: {len(records.acknowledged)}   trades refused (definite 4xx): "
        f"{len(records.refused)}   left in doubt: {len(records.in_doubt)}",
        "requests by outcome:",
    ]
    outcomes = Counter(a.outcome for a in records.attempts)
    for outcome, count in sorted(outcomes.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {count:7d}  {outcome}")
    lines.append(summary_line("  POST latency (every attempt)", [a.latency for a in records.attempts], _ms))
    lines.append(summary_line(
        "  POST latency (successes)", [a.latency for a in records.attempts if a.outcome.startswith("200 ok")], _ms
    ))
    lines.append(f"faults: {len(faults)}")
    by_kind = Counter((f.kind, f.target) for f in faults)
    for (kind, target), count in sorted(by_kind.items()):
        leader = sum(1 for f in faults if (f.kind, f.target) == (kind, target) and f.was_leader)
        lines.append(f"  {count:4d}  {kind:<12} {target:<9} ({leader} while leader)")
    measured = [f for f in failovers if f is not None]
    lines.append(summary_line(f"failover after {len(failovers)} leader faults", measured))
    if failovers:
        shown = ", ".join("none" if f is None else f"{f:.2f}" for f in failovers[:20])
        lines.append(f"  each (s): {shown}{' ...' if len(failovers) > 20 else ''}")
    if len(measured) < len(failovers):
        lines.append(f"  ({len(failovers) - len(measured)} leader faults had no later success)")
    lines.append(f"replicas converged: {'after ' + _seconds(converged_after) if converged_after is not None else 'NO (deadline passed)'}")
    forbidden = sum(1 for a in records.attempts if a.outcome[:1] == "5" and not a.outcome.startswith("503"))
    if forbidden:
        lines.append(f"WARNING: {forbidden} requests got a 5xx other than 503 (the contract allows none; "
                     "see frontend.log)")
    for name, code in unexpected_exits:
        lines.append(f"WARNING: {name} exited on its own with status {code} (restarted; see its log)")
    lines.append("")
    for check in checks:
        lines.extend(check.lines())
    passed = all(c.passed for c in checks)
    lines.append("")
    lines.append("ALL INVARIANTS PASS" if passed else f"INVARIANT FAILURE (reproduce with --seed {seed})")
    return lines
