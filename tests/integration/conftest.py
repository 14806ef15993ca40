from pathlib import Path
from typing import Iterator

import pytest

from tests.integration.cluster import Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        c.start_all()
        yield c
    finally:
        c.stop_all()


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
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start_all()
        yield c
    finally:
        c.stop_all()
