"""`bazaar chaos --out DIR`: the run's records as files for `bazaar plot` and the evaluation.

DIR/attempts.csv has one row per POST attempt, DIR/faults.json the faults, the failover times
and the invariants' verdicts (the shared formats of the evaluation). A fault that hit two
processes is one entry: `kind` and `target` join its hits' ("kill+stop", "order-1+catalog"),
`at` is its first hit's start, `back` when every process was back, `was_leader` whether one of
them was the leader, `pause` the longest; `hits` lists each process on its own. Beyond that
format faults.json also carries the run's settings and counts, so a document can say exactly
how the run was made and what it achieved.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

from bazaar.chaos.clients import OK
from bazaar.chaos.faults import FREEZE, KILL
from bazaar.chaos.report import answer_counts, during

ATTEMPTS_FILE = "attempts.csv"
FAULTS_FILE = "faults.json"
NETWORK_FILE = "network-faults.json"  # a network run's faults (bazaar plot does not read it)
# key: the one sent, else the one the answer named, else empty; sent_key: empty when the client
# sent none; header: the answer's Idempotency-Key header, empty when none came.
ATTEMPT_COLUMNS = ("client", "key", "sent", "done", "latency_ms", "outcome", "number", "sent_key", "header")
# The format's short names for the injector's kinds.
KIND_NAMES = {KILL: "kill", FREEZE: "stop"}
DETAIL_EXAMPLES = 5


def attempt_row(attempt: Any) -> list[object]:
    # "ok", like the load generator's requests.csv, rather than the report's "200 ok".
    outcome = "ok" if attempt.outcome == OK else attempt.outcome
    number = "" if attempt.number is None else attempt.number
    return [attempt.client, attempt.key, f"{attempt.sent:.6f}", f"{attempt.done:.6f}",
            f"{attempt.latency * 1000:.3f}", outcome, number, attempt.sent_key or "", attempt.header or ""]


def _hit_entry(hit: Any) -> dict[str, object]:
    return {"target": hit.target, "kind": KIND_NAMES.get(hit.kind, hit.kind), "was_leader": hit.was_leader,
            "at": round(hit.at, 6), "pause": round(hit.pause, 6), "back": round(hit.back, 6)}


def fault_entry(fault: Any, attempts: Sequence[Any] = ()) -> dict[str, object]:
    hits = [_hit_entry(h) for h in fault.hits]
    return {"at": round(fault.at, 6), "kind": "+".join(dict.fromkeys(str(h["kind"]) for h in hits)),
            "target": fault.target, "was_leader": fault.was_leader, "pause": round(fault.pause, 6),
            "back": round(fault.back, 6), "class": fault.fault_class, "idle": fault.idle, "hits": hits,
            "answers": answer_counts(during(fault, attempts))}


def invariant_entry(check: Any) -> dict[str, object]:
    parts = [check.title + (f" ({check.note})" if check.note else "")]
    parts.extend(check.problems[:DETAIL_EXAMPLES])
    if len(check.problems) > DETAIL_EXAMPLES:
        parts.append(f"... and {len(check.problems) - DETAIL_EXAMPLES} more")
    return {"name": check.code, "passed": check.passed, "detail": "; ".join(parts)}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def faults_document(
    settings: Any,  # run.ChaosSettings: duration, clients, fault_every
    seed: int,
    phase: Any,  # run.PhaseResult
    failovers: Sequence[float | None],
    checks: Sequence[Any],  # invariants.Check
) -> dict[str, object]:
    records = phase.records
    return {
        "duration": settings.duration,
        "seed": seed,
        "faults": [fault_entry(f, records.attempts) for f in phase.faults],
        "failovers": [_rounded(f) for f in failovers],
        "invariants": [invariant_entry(c) for c in checks],
        "clients": settings.clients,
        "keyless_clients": phase.keyless,
        "fault_every": settings.fault_every,
        "idle_pauses": [[round(p.start, 6), round(p.end, 6)] for p in phase.pauses],
        **_outcome(phase),
    }


def _outcome(phase: Any) -> dict[str, object]:
    """How long the logs took to converge and the catalog to catch up, and the counts."""
    records = phase.records
    return {
        "converged_after": _rounded(phase.converged_after),
        "caught_up_after": _rounded(phase.caught_up_after),
        "orders": {"acknowledged": len(records.acknowledged), "refused": len(records.refused),
                   "in_doubt": len(records.in_doubt), "not_executed": len(records.not_executed),
                   "lost": len(records.lost)},
        "answers": answer_counts(records.attempts),
    }


def network_document(
    settings: Any,  # run.ChaosSettings
    seed: int,
    phase: Any,  # run.PhaseResult, its faults network.NetFault
    checks: Sequence[Any],
    delay: bool,
) -> dict[str, object]:
    """A network run: settings, each fault (class, target, hosts, start, heal, failover gap,
    time from the heal to the first trade after it, loss and delay), the longest gap between
    two acknowledgements, the invariants' verdicts and the counts."""
    from bazaar.chaos.report import failover_gaps, longest_gap

    records = phase.records
    gaps = failover_gaps(phase.faults, records.attempts)
    longest = longest_gap(records.attempts)
    return {
        "duration": settings.duration, "seed": seed, "clients": settings.clients,
        "keyless_clients": phase.keyless, "fault_every": settings.fault_every, "delay_available": delay,
        "faults": [
            {"at": round(f.at, 6), "class": f.fault_class, "target": f.target, "hosts": list(f.hosts),
             "was_leader": f.was_leader, "back": round(f.back, 6), "lasted": round(f.back - f.at, 6),
             "loss": f.loss, "delay_ms": f.delay_ms, "gap": _rounded(gap),
             "after_heal": None if f.recovered is None else round(f.recovered - f.back, 6),
             "answers": answer_counts(during(f, records.attempts))}
            for f, gap in zip(phase.faults, gaps)
        ],
        "longest_gap": None if longest is None else {"seconds": round(longest[0], 6), "from": round(longest[1], 6),
                                                     "to": round(longest[2], 6)},
        "invariants": [invariant_entry(c) for c in checks],
        **_outcome(phase),
    }


def write(out_dir: Path, attempts: Sequence[Any], document: dict[str, object],
          faults_file: str = FAULTS_FILE) -> list[Path]:
    """Write both files into out_dir (created if needed); returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    attempts_path, faults_path = out_dir / ATTEMPTS_FILE, out_dir / faults_file
    with open(attempts_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ATTEMPT_COLUMNS)
        writer.writerows(attempt_row(a) for a in attempts)
    faults_path.write_text(json.dumps(document, indent=1) + "\n")
    return [attempts_path, faults_path]
