"""`bazaar load` on its own clusters (cache on, then off): the files agree with each other and
with what was asked, nothing failed, and no process of its clusters outlives it."""

import csv
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue  # gone meanwhile
            if text in command:
                found.append(f"{entry.name}: {command}")
    return found


def test_load_on_its_own_clusters(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    run = subprocess.run(
        [sys.executable, "-m", "bazaar", "load", "--clients", "2", "--requests", "10",
         "--p", "0,0.5", "--cache", "both", "--out", str(out), "--seed", "3"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Traceback" not in run.stderr

    # Its clusters are gone, directory and processes.
    directory = re.search(r"^cluster directory: (\S+)$", run.stderr, re.M).group(1)
    assert not Path(directory).exists()
    assert processes_mentioning(directory) == []

    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"] == {"clients": 2, "requests": 10, "p": [0.0, 0.5], "cache": ["on", "off"],
                                   "url": None, "seed": 3}
    runs = summary["runs"]
    assert [(r["cache"], r["p"]) for r in runs] == [("on", 0.0), ("on", 0.5), ("off", 0.0), ("off", 0.5)]

    rows = list(csv.DictReader((out / "requests.csv").open()))
    per_run = Counter((row["cache"], float(row["p"])) for row in rows)
    assert all(row["outcome"] == "ok" for row in rows), [row for row in rows if row["outcome"] != "ok"][:5]
    for r in runs:
        assert r["errors"] == 0
        assert per_run[(r["cache"], r["p"])] == r["requests"] == sum(t["count"] for t in r["types"].values())
        assert r["types"]["lookup"]["count"] == 2 * 10
        assert r["types"]["query"]["count"] <= r["types"]["trade"]["count"]
        assert r["throughput_rps"] > 0
        if r["p"] == 0.0:
            assert r["types"]["trade"]["count"] == 0
        else:
            assert r["types"]["trade"]["count"] > 0 and r["types"]["query"]["count"] > 0
        if r["cache"] == "on":
            report = r["cache_report"]
            assert 0 <= report["hit_rate"] <= 1
            assert report["hits"] + report["misses"] == r["types"]["lookup"]["count"]  # each asks it once
        else:
            assert r["cache_report"] is None

    events = json.loads((out / "cache-events.json").read_text())["runs"]
    assert [e["p"] for e in events] == [0.0, 0.5]
    assert events[0]["names_at_start"] == []  # a fresh front end
    assert events[0]["events"] and events[0]["capacity"] == 8
    assert all(e["kind"] in ("insert", "evict", "invalidate") and e["t"] >= 0
               for run_events in events for e in run_events["events"])

    # The same seed sends the same plan with the cache on and off.
    assert [r["requests"] for r in runs[:2]] == [r["requests"] for r in runs[2:]]

