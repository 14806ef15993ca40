"""`bazaar chaos`: one short run against a real cluster; every invariant must hold, and --out
writes the run's attempts and faults in the evaluation's formats.

Seed 738 (with --duration 20 --fault-every 4) makes the first fault one of two replicas, the
leader among them, both down for about 7 s, longer than the front end's 4 s request deadline, so
trades meet a cluster without a majority (504s, then 503s); the second fault hits the leader
and the catalog. Two of the four clients send no key. The classes and lengths come from the
seed alone (bazaar.chaos.faults.Schedule); the test checks that they did."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bazaar.chaos.faults import LEADER_CATALOG, TWO_REPLICAS, fault_classes

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SEED = 738
INVARIANTS = ["I1", "I2", "I3", "I4", "I5", "I6", "I7"]


def test_the_seed_starts_with_two_double_faults():
    assert fault_classes(SEED, 2) == [TWO_REPLICAS, LEADER_CATALOG]


def test_short_chaos_run_passes_every_invariant(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    run = subprocess.run(
        [sys.executable, "-m", "bazaar", "chaos", "--duration", "20", "--clients", "4",
         "--fault-every", "4", "--seed", str(SEED), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=400,
    )
    out = run.stdout
    assert run.returncode == 0, out[-5000:] + run.stderr[-2000:]
    verdicts = [line for line in out.splitlines() if line[:1] == "I" and line[1:2].isdigit()]
    assert [v.split()[0] for v in verdicts] == INVARIANTS, out
    assert all(v.split()[1] == "PASS" for v in verdicts), out
    assert "ALL INVARIANTS PASS" in out
    assert "Traceback" not in run.stderr
    with open(tmp_path / "out" / "attempts.csv", newline="") as f:
        attempts = list(csv.DictReader(f))
    assert attempts and all(float(a["done"]) >= float(a["sent"]) for a in attempts)
    faults = json.loads((tmp_path / "out" / "faults.json").read_text())
    assert faults["seed"] == SEED and faults["duration"] == 20
    assert len(faults["failovers"]) == sum(f["was_leader"] for f in faults["faults"])
    assert [c["name"] for c in faults["invariants"]] == INVARIANTS
    acknowledged = sum(a["outcome"] == "ok" for a in attempts if a["key"])
    assert acknowledged >= faults["orders"]["acknowledged"]

    # The double faults happened, as the seed says, and hit two processes each.
    first, second = faults["faults"][:2]
    assert first["class"] == TWO_REPLICAS and first["was_leader"]
    assert {h["target"] for h in first["hits"]} <= {"order-1", "order-2", "order-3"} and len(first["hits"]) == 2
    assert second["class"] == LEADER_CATALOG and "catalog" in {h["target"] for h in second["hits"]}
    # Without a majority for longer than the request deadline: answers were 503 or 504, never wrong.
    assert first["answers"]["503"] + first["answers"]["504"] > 0, first
    # Keyless clients traded, under keys the front end named.
    keyless = [a for a in attempts if not a["sent_key"]]
    assert faults["keyless_clients"] == 2 and keyless
    assert all(a["key"] == a["header"] and a["key"].startswith("fe-") for a in keyless if a["header"])
