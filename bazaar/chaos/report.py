"""Statistics over a chaos run's records, and the report's text. Plain functions, no I/O."""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Sequence

from bazaar.evaluation.stats import percentile
from bazaar.tables import table

# What each attempt came to, in the report's columns.
ANSWER_CLASSES = ("200", "4xx", "503", "504", "other 5xx", "no answer")
SHORT_KINDS = {"kill+restart": "kill", "stop+cont": "stop"}  # faults.KILL, faults.FREEZE
# ANSWER_CLASSES as the tables' column headers.
ANSWER_COLUMNS = tuple(c.replace("other ", "").replace("no answer", "none") for c in ANSWER_CLASSES)


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


def answer_class(outcome: str) -> str:
    """One of ANSWER_CLASSES for an attempt's outcome."""
    head = outcome[:3]
    if not head.isdigit():
        return "no answer"
    if head in ("200", "503", "504"):
        return head
    return "4xx" if head[0] == "4" else "other 5xx"


def answer_counts(attempts: Iterable[Any]) -> dict[str, int]:
    counts = Counter(answer_class(a.outcome) for a in attempts)
    return {c: counts.get(c, 0) for c in ANSWER_CLASSES}


def during(fault: Any, attempts: Iterable[Any]) -> list[Any]:
    """The attempts sent while `fault` lasted (from its first hit until every process was back)."""
    return [a for a in attempts if fault.at <= a.sent <= fault.back]


def leader_failovers(faults: Sequence[Any], attempts: Sequence[Any]) -> list[float | None]:
    """failover_times of the faults that hit the leader, in order, each from the leader's hit
    (in a double fault it may come after the other process's)."""
    return failover_times([f.leader_at for f in faults if f.was_leader], attempts)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def _after(value: float | None) -> str:
    return "NO (deadline passed)" if value is None else f"after {_seconds(value)}"


def summary_line(label: str, values: Sequence[float], fmt=_seconds) -> str:
    """n, p50, p99 and max of `values` (seconds; fmt: how a value is shown), the percentiles by
    bazaar.evaluation.stats.percentile (numpy.percentile, linear interpolation)."""
    return (f"{label}: n={len(values)} p50 {fmt(percentile(values, 50))}  p99 {fmt(percentile(values, 99))}  "
            f"max {fmt(max(values) if values else None)}")


def hits_text(fault: Any) -> str:
    """"order-2* kill 1.2 s, order-3 stop +0.31 s 2.1 s": each process hit (* the leader), how,
    its start after the fault's, and how long until it was back."""
    parts = []
    for h in fault.hits:
        offset = h.at - fault.at
        parts.append(f"{h.target}{'*' if h.was_leader else ''} {SHORT_KINDS.get(h.kind, h.kind)}"
                     f"{f' +{offset:.2f} s' if offset >= 0.005 else ''} {h.back - h.at:.1f} s")
    return ", ".join(parts)


def fault_table(faults: Sequence[Any], failovers: Sequence[float | None], attempts: Sequence[Any]) -> list[str]:
    """A row per fault: start, class, when all was back, failover (leader faults), what the
    attempts sent during it got, and the processes hit."""
    measured = iter(failovers)
    rows = []
    for f in faults:
        failover = next(measured, None) if f.was_leader else None
        counts = answer_counts(during(f, attempts))
        rows.append((f"{f.at:.1f}s", f.fault_class, f"{f.back - f.at:.1f} s", _seconds(failover),
                     *(counts[c] for c in ANSWER_CLASSES),
                     hits_text(f) + ("  [clients idle]" if getattr(f, "idle", False) else "")))
    header = ("at", "class", "back", "failover", *ANSWER_COLUMNS,
              "processes hit (* the leader; kill/stop, offset, down for)")
    return table(header, rows, align="rlrr" + "r" * len(ANSWER_CLASSES) + "l", indent="  ")


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
    keyless: int = 0,
    caught_up_after: float | None = None,
    pauses: Sequence[Any] = (),  # traffic.Pause
    fault_section: Sequence[str] | None = None,  # replaces the process faults' lines (network runs)
    title: str | None = None,  # replaces the first line
) -> list[str]:
    attempts = records.attempts
    long_pauses = sum(1 for p in pauses if p.long)
    lines = [
        title or
        f"chaos run: seed {seed}, {duration:g} s, {clients} clients ({clients - keyless} keyed, {keyless} "
        f"without keys), a fault every {fault_every:g} s, {len(pauses)} idle pauses ({long_pauses} long)",
        "",
        f"keys: {len(records.acknowledged)} acknowledged, {len(records.refused)} refused (definite 4xx), "
        f"{len(records.not_executed)} answered 503 and given up, {len(records.in_doubt)} left in doubt, "
        f"{len(records.lost)} keyless trades without any answer (key unknown)",
        "answers: " + ", ".join(f"{c} {n}" for c, n in answer_counts(attempts).items()),
        "requests by outcome:",
    ]
    outcomes = Counter(a.outcome for a in attempts)
    by_count = sorted(((n, o) for o, n in outcomes.items()), key=lambda row: (-row[0], row[1]))
    lines += table(("count", "outcome"), by_count, indent="  ")
    lines.append(summary_line("  POST latency (every attempt)", [a.latency for a in attempts], _ms))
    for label, wanted in (("successes", "200"), ("503s", "503"), ("504s", "504")):
        values = [a.latency for a in attempts if answer_class(a.outcome) == wanted]
        if values:
            lines.append(summary_line(f"  POST latency ({label})", values, _ms))
    if fault_section is not None:
        lines.extend(fault_section)
    elif faults:
        classes = ", ".join(f"{n} {c}" for c, n in sorted(Counter(f.fault_class for f in faults).items()))
        idle = sum(bool(getattr(f, "idle", False)) for f in faults)
        lines.append(f"faults: {len(faults)} ({classes}; {sum(f.was_leader for f in faults)} hit the leader, "
                     f"{idle} while the clients were idle)")
        lines.extend(fault_table(faults, failovers, attempts))
    else:
        lines.append("faults: 0")
    if fault_section is None:
        measured = [f for f in failovers if f is not None]
        lines.append(summary_line(f"failover after {len(failovers)} leader faults", measured))
        if len(measured) < len(failovers):
            lines.append(f"  ({len(failovers) - len(measured)} leader faults had no later success)")
    lines.append(f"replicas converged: {_after(converged_after)}")
    lines.append(f"catalog caught up: {_after(caught_up_after)}")
    forbidden = sum(1 for a in attempts if answer_class(a.outcome) == "other 5xx")
    if forbidden:
        lines.append(f"WARNING: {forbidden} requests got a 5xx other than 503 and 504 (the contract allows none; "
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


# ---- network runs (bazaar chaos --network) -----------------------------------------------------


def failover_gaps(faults: Sequence[Any], attempts: Sequence[Any]) -> list[float | None]:
    """For every fault: from its start until the first trade sent at or after it was
    acknowledged (failover_times; None when none was)."""
    return failover_times([f.at for f in faults], attempts)


def longest_gap(attempts: Sequence[Any]) -> tuple[float, float, float] | None:
    """(length, from, to) of the longest time between two successive acknowledgements (by
    completion time) of the run; None with fewer than two."""
    from bazaar.chaos.clients import OK

    done = sorted(a.done for a in attempts if a.outcome == OK)
    if len(done) < 2:
        return None
    return max(((b - a, a, b) for a, b in zip(done, done[1:])), key=lambda g: g[0])


def network_section(faults: Sequence[Any], attempts: Sequence[Any]) -> list[str]:
    """The faults of a network run: a row each (start, class, how long it was in place, the
    failover gap, the time from the heal to the first trade after it, the answers of the
    attempts sent while it lasted, its target and what it did), then a table of the gaps by class."""
    from bazaar.chaos.network import NET_CLASSES

    gaps = failover_gaps(faults, attempts)
    if not faults:
        return ["network faults: 0"]
    classes = ", ".join(f"{n} {c}" for c, n in sorted(Counter(f.fault_class for f in faults).items()))
    rows = []
    for f, gap in zip(faults, gaps):
        healed = None if f.recovered is None else f.recovered - f.back
        synced = None if f.synced is None else f.synced - f.back
        counts = answer_counts(during(f, attempts))
        rows.append((f"{f.at:.1f}s", f.fault_class, f"{f.back - f.at:.1f} s", _seconds(gap), _seconds(healed),
                     _seconds(synced), *(counts[c] for c in ANSWER_CLASSES), f"{f.marked_target}: {f.detail}"))
    header = ("at", "class", "lasted", "gap", "heal>ok", "in sync", *ANSWER_COLUMNS,
              "target (* the leader): what it did")
    lines = [f"network faults: {len(faults)} ({classes}; {sum(f.was_leader for f in faults)} touched the leader)",
             *table(header, rows, align="rlrrrr" + "r" * len(ANSWER_CLASSES) + "l", indent="  ")]
    lines.append("failover gap (fault start -> first trade sent after it acknowledged), by class:")
    by_class = []
    for fault_class in NET_CLASSES:
        values = [g for f, g in zip(faults, gaps) if f.fault_class == fault_class and g is not None]
        missing = sum(1 for f, g in zip(faults, gaps) if f.fault_class == fault_class and g is None)
        if values or missing:
            by_class.append((fault_class, values, missing))
    measured = [g for g in gaps if g is not None]
    by_class.append(("every fault", measured, len(gaps) - len(measured)))
    lines += table(("class", "n", "p50", "p99", "max", "no later success"),
                   [(c, len(v), _seconds(percentile(v, 50)), _seconds(percentile(v, 99)),
                     _seconds(max(v) if v else None), m) for c, v, m in by_class],
                   align="lrrrrr", indent="  ")
    recoveries = [f.recovered - f.back for f in faults if f.recovered is not None]
    lines.append(summary_line("heal -> first trade sent after it acknowledged", recoveries))
    synced = [f.synced - f.back for f in faults if f.synced is not None]
    lines.append(summary_line("heal -> every replica holds what a majority held at the heal", synced))
    longest = longest_gap(attempts)
    lines.append("longest gap between two acknowledged trades: " + (
        "-" if longest is None else f"{longest[0]:.2f} s (from {longest[1]:.1f} s to {longest[2]:.1f} s)"))
    return lines
