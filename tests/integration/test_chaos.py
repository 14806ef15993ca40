"""`bazaar chaos`: one short run against a real cluster; every invariant must hold."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_short_chaos_run_passes_every_invariant():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    run = subprocess.run(
        [sys.executable, "-m", "bazaar.cli", "chaos", "--duration", "20", "--clients", "3",
         "--fault-every", "4", "--seed", "1"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=400,
    )
    out = run.stdout
    assert run.returncode == 0, out[-4000:] + run.stderr[-2000:]
    verdicts = [line for line in out.splitlines() if line[:1] == "I" and line[1:2].isdigit()]
    assert [v.split()[0] for v in verdicts] == ["I1", "I2", "I3", "I4", "I5", "I6"], out
    assert all(v.split()[1] == "PASS" for v in verdicts), out
    assert "ALL INVARIANTS PASS" in out
    assert "Traceback" not in run.stderr
