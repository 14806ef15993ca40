"""`bazaar up`, `status`, `client`, `dump-orders` and `down` against real daemonized processes."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.cluster import Cluster, wait_for

pytestmark = pytest.mark.integration


def bazaar(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bazaar", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_up_status_client_down(tmp_path) -> None:
    # Only for its free ports and config file (two front ends); `up` starts the processes.
    layout = Cluster(tmp_path, frontends=2)
    config = str(layout.config)
    names = ["catalog", "order-1", "order-2", "order-3", "frontend", "frontend-2"]
    try:
        up = bazaar("up", "--config", config, cwd=tmp_path)
        assert up.returncode == 0, up.stdout + up.stderr
        leader = f"127.0.0.1:{layout.replica_ports[3]}"
        assert leader in up.stdout

        status = bazaar("status", "--config", config, cwd=tmp_path)
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"leader: replica 3 at {leader}" in status.stdout

        again = bazaar("up", "--config", config, cwd=tmp_path)
        assert again.returncode != 0 and "running" in again.stdout + again.stderr

        # No --url: the configuration's first front end.
        client = bazaar("client", "--config", config, "-n", "30", "-p", "1", "--seed", "7", cwd=tmp_path)
        assert client.returncode == 0 and "ALL ORDERS VERIFIED" in client.stdout, client.stdout
        url = f"http://127.0.0.1:{layout.frontend_ports['frontend-2']}"
        client = bazaar("client", "--url", url, "-n", "10", "-p", "1", "--seed", "8", cwd=tmp_path)
        assert client.returncode == 0 and "ALL ORDERS VERIFIED" in client.stdout, client.stdout

        dumps = [bazaar("dump-orders", "--config", config, "--id", str(i), cwd=tmp_path).stdout for i in (1, 2, 3)]
        assert dumps[0] and dumps[0] == dumps[1] == dumps[2]
        trades = sum(1 for line in dumps[0].splitlines() if '"number"' in line)

        def settled():  # the followers (entries and commit point) and the catalog have caught up
            document = json.loads(bazaar("status", "--json", "--config", config, cwd=tmp_path).stdout)
            rows = {row["name"]: row for row in document["processes"]}
            agreed = len({rows[f"order-{i}"]["committed"] for i in (1, 2, 3)}) == 1
            return all(rows[n]["lag"] == 0 for n in names[:4]) and agreed and document

        document = wait_for(settled, deadline=20, what="every replica and the catalog to catch up")
        assert document["leader"] == {"id": 3, "epoch": document["leader"]["epoch"], "address": leader}
        rows = {row["name"]: row for row in document["processes"]}
        assert list(rows) == names
        for name, row in rows.items():
            assert row["running"] is True and isinstance(row["pid"], int), row
            assert row["metrics"] == f"http://127.0.0.1:{layout.metrics_ports[name]}/metrics"
        assert [rows[f"order-{i}"]["role"] for i in (1, 2, 3)] == ["follower", "follower", "leader"]
        assert len({rows[f"order-{i}"]["epoch"] for i in (1, 2, 3)}) == 1
        assert len({(rows[f"order-{i}"]["last"], rows[f"order-{i}"]["committed"]) for i in (1, 2, 3)}) == 1
        assert rows["catalog"]["role"] == "catalog" and rows["catalog"]["applied_through"] == trades - 1
        for name in ("frontend", "frontend-2"):
            assert (rows[name]["role"], rows[name]["ready"], rows[name]["uses_leader"]) == ("frontend", True, 3)
    finally:
        down = bazaar("down", "--config", config, cwd=tmp_path)
    assert down.returncode == 0, down.stdout + down.stderr
    stopped = bazaar("status", "--json", "--config", config, cwd=tmp_path)
    assert stopped.returncode == 3
    document = json.loads(stopped.stdout)
    assert document["leader"] is None and not any(row["running"] for row in document["processes"])


def test_a_demo_whose_reader_goes_away_still_stops_its_cluster(tmp_path) -> None:
    demo = subprocess.Popen([sys.executable, "-m", "bazaar", "demo", "-n", "20", "-p", "0.5"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first = demo.stdout.readline()
        assert first.startswith("demo directory: "), first
        workdir = first.removeprefix("demo directory: ").strip()
        for _ in range(20):  # as `bazaar demo | head` reads: until the cluster runs
            if demo.stdout.readline().startswith("the cluster is up"):
                break
        demo.stdout.close()
        demo.wait(120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()

    def ours(pid: str) -> bool:
        try:
            return f"--pidfile={workdir}".encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    left = [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and ours(p.name)]
    for pid in left:  # leave nothing behind, even when the check fails
        os.kill(int(pid), signal.SIGKILL)
    assert left == [], "the demo left processes running"
