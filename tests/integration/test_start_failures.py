"""A process whose start fails exits, non-zero, for systemd (Restart=on-failure) or compose
(restart: on-failure) to act on, rather than hang: run as the unit and the image run it."""

from __future__ import annotations

import socket
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from bazaar.chaos.processes import free_ports
from bazaar.config import load_config
from tests.integration.cluster import twistd

pytestmark = pytest.mark.integration

EXIT_DEADLINE = 20.0


def started(config: Path, *plugin: str) -> int | None:
    """The exit status of `twistd -n <plugin>` within EXIT_DEADLINE; None if it still runs."""
    process = subprocess.Popen([twistd(), "-n", "--pidfile=", *plugin, "--config", str(config)],
                               cwd=config.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return process.wait(EXIT_DEADLINE)
    except subprocess.TimeoutExpired:
        return None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("plugin, taken", [
    # gRPC binds in startService, after the group committer's writer thread started.
    (["bazaar-catalog"], "the catalog's gRPC port"),
    (["bazaar-order", "--id", "1"], "the replica's gRPC port"),
    # Twisted binds the metrics port before any service starts.
    (["bazaar-catalog"], "the catalog's metrics port"),
])
def test_a_process_whose_port_is_taken_exits_non_zero(tmp_path: Path, plugin: list[str], taken: str) -> None:
    with closing(socket.socket()) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        held = holder.getsockname()[1]
        catalog, replica_1, replica_2 = free_ports(3)
        if "metrics" in taken:
            catalog_table = f'address = "127.0.0.1:{catalog}"\nmetrics = "127.0.0.1:{held}"'
        else:
            catalog_table = f'address = "127.0.0.1:{held if "catalog" in taken else catalog}"'
        replica = held if "replica" in taken else replica_1
        config = tmp_path / "bazaar.toml"
        config.write_text(f'data_dir = "data"\n[tls]\ninsecure = true\n[catalog]\n{catalog_table}\n'
                          f'[replicas]\n1 = "127.0.0.1:{replica}"\n2 = "127.0.0.1:{replica_2}"\n')
        load_config(config)  # it parses: only the port is taken
        code = started(config, *plugin)
    assert code not in (None, 0), f"{' '.join(plugin)} with {taken} taken: still running {EXIT_DEADLINE:g} s on"
