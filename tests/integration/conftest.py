from pathlib import Path
from typing import Iterator

import pytest

from bazaar.chaos import hosts
from tests.integration.cluster import Cluster, running


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running(tmp_path) as c:
        yield c


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator:
    made: list[Cluster] = []

    def make(**kwargs) -> Cluster:
        c = Cluster(tmp_path / f"c{len(made)}", **kwargs)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.stop_all()


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster for a module whose tests change no state (each test checks that)."""
    with running(tmp_path_factory.mktemp("cluster")) as c:
        yield c


@pytest.fixture
def test_hosts_available() -> Iterator[None]:
    """Skips, with the reason, unless test hosts (network namespaces) can be made here; after
    the test, removes the hosts of any run whose owner is gone (one killed by a timeout)."""
    try:
        hosts.check_available()
    except hosts.HostsUnavailable as e:
        pytest.skip(f"test hosts unavailable: {e}")
    yield
    hosts.remove_leftovers()
