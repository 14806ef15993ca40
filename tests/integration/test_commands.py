"""`bazaar up`, `status`, `client`, `dump-orders` and `down` against real daemonized processes."""

import subprocess
import sys

import pytest

from tests.integration.cluster import Cluster

pytestmark = pytest.mark.integration


def bazaar(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bazaar", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_up_status_client_down(tmp_path) -> None:
    layout = Cluster(tmp_path)  # only for its free ports and config file; `up` starts the processes
    config = str(layout.config)
    try:
        up = bazaar("up", "--config", config, cwd=tmp_path)
        assert up.returncode == 0, up.stdout + up.stderr
        leader = f"127.0.0.1:{layout.replica_ports[3]}"
        assert leader in up.stdout

        status = bazaar("status", "--config", config, cwd=tmp_path)
        assert status.returncode == 0, status.stdout + status.stderr
        assert leader in status.stdout and status.stdout.count("running") >= 5

        again = bazaar("up", "--config", config, cwd=tmp_path)
        assert again.returncode != 0 and "running" in again.stdout + again.stderr

        url = f"http://127.0.0.1:{layout.frontend_port}"
        client = bazaar("client", "--url", url, "-n", "30", "-p", "1", "--seed", "7", cwd=tmp_path)
        assert client.returncode == 0 and "ALL ORDERS VERIFIED" in client.stdout, client.stdout

        dumps = [bazaar("dump-orders", "--config", config, "--id", str(i), cwd=tmp_path).stdout for i in (1, 2, 3)]
        assert dumps[0] and dumps[0] == dumps[1] == dumps[2]
    finally:
        down = bazaar("down", "--config", config, cwd=tmp_path)
    assert down.returncode == 0, down.stdout + down.stderr
    stopped = bazaar("status", "--config", config, cwd=tmp_path)
    assert stopped.returncode == 3 and "running" not in stopped.stdout.replace("not running", "")
