"""GET /healthz and GET /readyz: up, and ready to trade (a leader with a majority, a catalog)."""

from __future__ import annotations

import pytest

from bazaar.frontend.readiness import KEEP
from tests.unit.test_frontend_routes import World


@pytest.fixture
def world() -> World:
    return World()


def readyz(world: World):
    world.run(KEEP)  # the answer before this one no longer serves
    d = world.start("GET", "/readyz")
    world.run(0.1)
    return world.finish(d)


def test_healthz_is_up_and_asks_no_backend(world):
    world.catalog.down = True
    for replica in world.replicas.values():
        replica.up = False
    reply = world.call("GET", "/healthz")
    assert (reply.code, reply.json) == (200, {"data": {"status": "up"}})
    assert world.catalog.asked == [] and all(r.probes == 0 for r in world.replicas.values())


def test_ready_names_the_leader(world):
    reply = readyz(world)
    assert (reply.code, reply.json) == (200, {"data": {"ready": True, "leader": 3, "missing": []}})


def test_a_catalog_that_does_not_answer_is_missing(world):
    world.catalog.down = True
    reply = readyz(world)
    assert reply.code == 503
    assert reply.json == {"error": {"code": 503, "message": "not ready: the catalog does not answer",
                                    "missing": ["catalog"]}}


def test_a_leader_that_lost_its_majority_is_missing_until_one_leads_again(world):
    assert readyz(world).code == 200
    world.replicas[3].leads = False  # it stepped down: no majority answered within its lease
    reply = readyz(world)
    assert reply.code == 503 and reply.json["error"]["missing"] == ["leader"]
    assert reply.json["error"]["message"] == "not ready: no order leader with a majority"
    assert world.leaders.current is None, "the leader that no longer leads was given up on"
    reply = readyz(world)  # this check selects again, as a request would: 3 accepts
    assert (reply.code, reply.json["data"]["leader"]) == (200, 3)
    assert world.leaders.selections == 2


def test_with_no_replica_up_both_can_be_missing(world):
    world.catalog.down = True
    for replica in world.replicas.values():
        replica.up = False
    d = world.start("GET", "/readyz")
    world.run(3)
    reply = world.finish(d)
    assert reply.code == 503 and reply.json["error"]["missing"] == ["leader", "catalog"]
    assert reply.json["error"]["message"] == "not ready: no order leader with a majority; the catalog does not answer"


def test_checks_at_once_share_one_question_and_its_answer_serves_a_moment():
    world = World()
    assert readyz(world).code == 200
    world.run(KEEP)
    leader, before = world.replicas[3], world.replicas[3].probes
    pending = [world.start("GET", "/readyz") for _ in range(100)]
    world.run(0.1)
    assert all(world.finish(d).code == 200 for d in pending)
    assert leader.probes - before == 1, "100 checks at once: one Describe"
    assert world.call("GET", "/readyz").code == 200
    assert leader.probes - before == 1, "and one just after is answered from it"


def test_a_leader_that_does_not_answer_in_time_is_not_ready_but_not_given_up():
    world = World()
    assert readyz(world).code == 200
    world.replicas[3].hang_probes = True  # busy: its Describe does not come back in time
    world.run(KEEP)
    d = world.start("GET", "/readyz")
    world.run(3)
    reply = world.finish(d)
    assert reply.code == 503 and reply.json["error"]["missing"] == ["leader"]
    assert world.leaders.current is not None and world.leaders.selections == 1, "no selection for a slow answer"


def test_an_unexpected_error_asking_the_catalog_is_a_503_not_a_500(world):
    def broken():
        raise RuntimeError("no channel")

    world.catalog.probe = broken
    reply = readyz(world)
    assert reply.code == 503 and reply.json["error"]["missing"] == ["catalog"]
