"""DELETE /cache on the internal listener: a new leader's push that drops every cached stock."""

from __future__ import annotations

from bazaar.core.lru import LRUCache
from tests.unit.test_frontend_routes import World


def test_delete_cache_drops_every_entry():
    world = World()
    for name in ("tesla", "ford"):
        assert world.call("GET", f"/stocks/{name}").code == 200
    assert world.cache.names() == ["tesla", "ford"]
    reply = world.call("DELETE", "/cache", internal=True)
    assert (reply.code, reply.json) == (200, {"data": {}})
    assert world.cache.names() == []
    assert [e.kind for e in world.cache.events()][-2:] == ["invalidate", "invalidate"]


def test_dropping_everything_voids_the_fills_under_way():
    cache: LRUCache[int] = LRUCache(4)
    token = cache.begin_fill("tesla")  # a lookup that read the catalog before the drop
    cache.invalidate_all()
    assert cache.complete_fill("tesla", token, 1) is False and "tesla" not in cache
    assert cache.open_fills() == 0
