"""`bazaar chaos --out DIR`: the run's records as files for `bazaar plot` and the evaluation.

DIR/attempts.csv has one row per POST attempt, DIR/faults.json the faults, the failover times
and the invariants' verdicts (the shared formats of the evaluation). Beyond that format
faults.json also carries the run's settings and order counts, so a document can say exactly
how the run was made and what it achieved.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

from bazaar.chaos.clients import OK
from bazaar.chaos.faults import FREEZE, KILL

ATTEMPTS_FILE = "attempts.csv"
FAULTS_FILE = "faults.json"
ATTEMPT_COLUMNS = ("client", "key", "sent", "done", "latency_ms", "outcome", "number")
# The format's short names for the injector's kinds.
KIND_NAMES = {KILL: "kill", FREEZE: "stop"}
DETAIL_EXAMPLES = 5


def attempt_row(attempt: Any) -> list[object]:
    # "ok", like the load generator's requests.csv, rather than the report's "200 ok".
    outcome = "ok" if attempt.outcome == OK else attempt.outcome
    number = "" if attempt.number is None else attempt.number
    return [attempt.client, attempt.key, f"{attempt.sent:.6f}", f"{attempt.done:.6f}",
            f"{attempt.latency * 1000:.3f}", outcome, number]


def fault_entry(fault: Any) -> dict[str, object]:
    return {"at": round(fault.at, 6), "kind": KIND_NAMES.get(fault.kind, fault.kind), "target": fault.target,
            "was_leader": fault.was_leader, "pause": round(fault.pause, 6), "back": round(fault.back, 6)}


def invariant_entry(check: Any) -> dict[str, object]:
    parts = [check.title + (f" ({check.note})" if check.note else "")]
    parts.extend(check.problems[:DETAIL_EXAMPLES])
    if len(check.problems) > DETAIL_EXAMPLES:
        parts.append(f"... and {len(check.problems) - DETAIL_EXAMPLES} more")
    return {"name": check.code, "passed": check.passed, "detail": "; ".join(parts)}


def faults_document(
    settings: Any,  # run.ChaosSettings: duration, clients, fault_every
    seed: int,
    phase: Any,  # run.PhaseResult: records, faults, converged_after
    failovers: Sequence[float | None],
    checks: Sequence[Any],  # invariants.Check
) -> dict[str, object]:
    records, converged = phase.records, phase.converged_after
    return {
        "duration": settings.duration,
        "seed": seed,
        "faults": [fault_entry(f) for f in phase.faults],
        "failovers": [None if f is None else round(f, 6) for f in failovers],
        "invariants": [invariant_entry(c) for c in checks],
        "clients": settings.clients,
        "fault_every": settings.fault_every,
        "converged_after": None if converged is None else round(converged, 6),
        "orders": {"acknowledged": len(records.acknowledged), "refused": len(records.refused),
                   "in_doubt": len(records.in_doubt)},
    }


def write(out_dir: Path, attempts: Sequence[Any], document: dict[str, object]) -> list[Path]:
    """Write both files into out_dir (created if needed); returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    attempts_path, faults_path = out_dir / ATTEMPTS_FILE, out_dir / FAULTS_FILE
    with open(attempts_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ATTEMPT_COLUMNS)
        writer.writerows(attempt_row(a) for a in attempts)
    faults_path.write_text(json.dumps(document, indent=1) + "\n")
    return [attempts_path, faults_path]
