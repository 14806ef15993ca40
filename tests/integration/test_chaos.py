"""`bazaar chaos`: one short run against a real cluster; every invariant must hold, and --out
writes the run's attempts and faults in the evaluation's formats."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_short_chaos_run_passes_every_invariant(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    run = subprocess.run(
        [sys.executable, "-m", "bazaar", "chaos", "--duration", "20", "--clients", "3",
         "--fault-every", "4", "--seed", "1", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=400,
    )
    out = run.stdout
    assert run.returncode == 0, out[-4000:] + run.stderr[-2000:]
    verdicts = [line for line in out.splitlines() if line[:1] == "I" and line[1:2].isdigit()]
    assert [v.split()[0] for v in verdicts] == ["I1", "I2", "I3", "I4", "I5", "I6"], out
    assert all(v.split()[1] == "PASS" for v in verdicts), out
    assert "ALL INVARIANTS PASS" in out
    assert "Traceback" not in run.stderr
    with open(tmp_path / "out" / "attempts.csv", newline="") as f:
        attempts = list(csv.DictReader(f))
    assert attempts and all(float(a["done"]) >= float(a["sent"]) for a in attempts)
    faults = json.loads((tmp_path / "out" / "faults.json").read_text())
    assert faults["seed"] == 1 and faults["duration"] == 20
    assert len(faults["failovers"]) == sum(f["was_leader"] for f in faults["faults"])
    assert [c["name"] for c in faults["invariants"]] == ["I1", "I2", "I3", "I4", "I5", "I6"]
    acknowledged = sum(a["outcome"] == "ok" for a in attempts)
    assert acknowledged == faults["orders"]["acknowledged"]
