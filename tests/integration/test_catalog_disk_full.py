"""A catalog whose disk fills up: it stops serving and exits with a failure status, trading goes
on meanwhile (the log decides, the catalog learns), and once restarted with room it learns
every trade, none half-applied. Its data directory is a small tmpfs the test mounts (root)."""

import errno
import signal
import subprocess

import pytest

from bazaar.reactor.fatal import EXIT_STATUS
from tests.integration.cluster import Cluster, wait_for

pytestmark = pytest.mark.integration

TMPFS_SIZE = "16m"
MAX_TRADES = 200


def fill(directory) -> None:
    """Write a file until the file system is full (bounded by its size)."""
    with open(directory / "filler", "wb", buffering=0) as f:
        for _ in range(10_000):
            try:
                f.write(b"\0" * 4096)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                return
    raise AssertionError("the tmpfs never filled up")


def test_a_catalog_whose_disk_is_full_stops_and_learns_everything_after_a_restart(cluster_factory) -> None:
    cluster: Cluster = cluster_factory()
    catalog_dir = cluster.root / "data" / "catalog"
    catalog_dir.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(catalog_dir)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the catalog (needs root): {mounted.stderr.strip()}")
    try:
        cluster.start_all()
        first = cluster.post_order("ford", 1, "buy")
        assert first.status == 200, first
        before = cluster.stock("ford")["quantity"]
        fill(catalog_dir)
        catalog = cluster.processes["catalog"]
        traded = 0
        while catalog.poll() is None and traded < MAX_TRADES:
            r = cluster.post_order("ford", 1, "buy")
            assert r.status == 200, f"trading goes on while the catalog fails: {r}"
            traded += 1
        wait_for(lambda: catalog.poll() is not None, deadline=10, what="the catalog to exit")
        assert catalog.returncode == EXIT_STATUS, cluster.log("catalog")[-2000:]
        assert "not serving, and stopping for a restart" in cluster.log("catalog")
        (catalog_dir / "filler").unlink()
        cluster.start("catalog")
        wait_for(lambda: cluster.stock("ford")["quantity"] == before - traded, deadline=20,
                 what="the restarted catalog to learn every trade")
    finally:
        cluster.signal("catalog", signal.SIGCONT)
        cluster.stop_all()
        subprocess.run(["umount", str(catalog_dir)], check=False)
