"""The front end's stock cache: LRU order, counters, and fills voided by invalidation."""

import pytest

from bazaar.core.lru import LRUCache


def filled(cache, name, value):
    assert cache.complete_fill(name, cache.begin_fill(name), value)


@pytest.mark.parametrize("capacity", [0, -1, 1.5, "3", True, None])
def test_capacity_must_be_a_positive_whole_number(capacity):
    with pytest.raises(ValueError):
        LRUCache(capacity)


def test_miss_then_fill_then_hit():
    cache = LRUCache(2)
    assert cache.get("tesla") is None
    filled(cache, "tesla", 1)
    assert cache.get("tesla") == 1
    assert (cache.hits, cache.misses, cache.evictions) == (1, 1, 0)


def test_least_recently_used_is_evicted_first():
    cache = LRUCache(2)
    filled(cache, "a", 1)
    filled(cache, "b", 2)
    cache.get("a")  # b is now the least recently used
    filled(cache, "c", 3)
    assert "b" not in cache
    assert cache.get("a") == 1 and cache.get("c") == 3
    assert cache.evictions == 1
    assert len(cache) == 2


def test_refilling_a_name_refreshes_it_and_replaces_the_value():
    cache = LRUCache(2)
    filled(cache, "a", 1)
    filled(cache, "b", 2)
    filled(cache, "a", 10)  # a becomes the most recent; b goes next
    filled(cache, "c", 3)
    assert "b" not in cache
    assert cache.get("a") == 10
    assert len(cache) == 2


def test_capacity_one_keeps_only_the_last_fill():
    cache = LRUCache(1)
    filled(cache, "a", 1)
    filled(cache, "b", 2)
    assert "a" not in cache and cache.get("b") == 2
    assert cache.evictions == 1


def test_contains_does_not_count_or_refresh():
    cache = LRUCache(2)
    filled(cache, "a", 1)
    filled(cache, "b", 2)
    assert "a" in cache and "zzz" not in cache
    filled(cache, "c", 3)  # a was not refreshed by `in`, so it goes
    assert "a" not in cache
    assert (cache.hits, cache.misses) == (0, 0)


def test_invalidate_drops_the_entry():
    cache = LRUCache(2)
    filled(cache, "a", 1)
    cache.invalidate("a")
    assert cache.get("a") is None
    assert len(cache) == 0


def test_invalidating_an_unknown_name_is_harmless():
    cache = LRUCache(2)
    cache.invalidate("nobody")
    filled(cache, "nobody", 1)
    assert cache.get("nobody") == 1


def test_fill_begun_before_an_invalidation_is_not_stored():
    """The stale-refill race: the lookup's value may predate the trade that invalidated it."""
    cache = LRUCache(2)
    token = cache.begin_fill("tesla")
    cache.invalidate("tesla")
    assert not cache.complete_fill("tesla", token, "old quantity")
    assert "tesla" not in cache


def test_invalidation_voids_every_open_fill_of_that_name_only():
    cache = LRUCache(3)
    first = cache.begin_fill("tesla")
    second = cache.begin_fill("tesla")
    other = cache.begin_fill("ford")
    cache.invalidate("tesla")
    assert not cache.complete_fill("tesla", first, 1)
    assert not cache.complete_fill("tesla", second, 2)
    assert cache.complete_fill("ford", other, 3)
    assert "tesla" not in cache and cache.get("ford") == 3


def test_fill_begun_after_an_invalidation_is_stored():
    cache = LRUCache(2)
    cache.invalidate("tesla")
    token = cache.begin_fill("tesla")
    assert cache.complete_fill("tesla", token, "new quantity")
    assert cache.get("tesla") == "new quantity"


def test_concurrent_fills_without_invalidation_both_store():
    cache = LRUCache(2)
    first = cache.begin_fill("a")
    second = cache.begin_fill("a")
    assert cache.complete_fill("a", first, 1)
    assert cache.complete_fill("a", second, 2)
    assert cache.get("a") == 2 and len(cache) == 1


def test_a_token_completes_at_most_once():
    cache = LRUCache(2)
    token = cache.begin_fill("a")
    assert cache.complete_fill("a", token, 1)
    cache.invalidate("a")
    assert not cache.complete_fill("a", token, 2)
    assert "a" not in cache


def test_a_token_only_fills_its_own_name():
    cache = LRUCache(2)
    token = cache.begin_fill("a")
    assert not cache.complete_fill("b", token, 1)
    assert "b" not in cache
    assert cache.complete_fill("a", token, 1)


def test_abandoned_fill_stores_nothing_and_is_forgotten():
    cache = LRUCache(2)
    token = cache.begin_fill("nope")
    cache.abandon_fill("nope", token)
    assert not cache.complete_fill("nope", token, 1)
    assert "nope" not in cache
    assert cache.open_fills() == 0


def test_closed_and_voided_fills_leave_no_state_behind():
    """Made-up names must not grow memory: only open fills are remembered."""
    cache = LRUCache(2)
    for i in range(100):
        name = f"made-up-{i}"
        token = cache.begin_fill(name)
        if i % 3 == 0:
            cache.invalidate(name)
        if i % 2:
            cache.abandon_fill(name, token)
        else:
            cache.complete_fill(name, token, i)
        cache.invalidate(f"never-seen-{i}")
    assert cache.open_fills() == 0
    assert len(cache) == 2
    assert cache._open_fills == {}


def test_eviction_counts_each_entry_pushed_out():
    cache = LRUCache(2)
    for i in range(5):
        filled(cache, i, i)
    assert cache.evictions == 3
    assert [i for i in range(5) if i in cache] == [3, 4]


def test_inserts_evictions_and_invalidations_are_logged_in_order_with_times():
    now = [0.0]
    cache = LRUCache(2, now=lambda: now[0])

    def fill(name):
        now[0] += 1
        cache.complete_fill(name, cache.begin_fill(name), name.upper())

    fill("a")
    fill("b")
    fill("a")  # a refresh, not an insert
    fill("c")  # evicts b, the least recently used
    now[0] += 1
    cache.invalidate("a")
    cache.invalidate("never cached")  # changes nothing, logs nothing
    assert [(e.seq, e.time, e.kind, e.name) for e in cache.events()] == [
        (0, 1.0, "insert", "a"),
        (1, 2.0, "insert", "b"),
        (2, 4.0, "insert", "c"),
        (3, 4.0, "evict", "b"),
        (4, 5.0, "invalidate", "a"),
    ]
    assert [e.seq for e in cache.events(since=2)] == [3, 4]
    assert cache.names() == ["c"]


def test_the_event_log_is_bounded():
    from bazaar.core.lru import EVENTS_KEPT

    cache = LRUCache(1)
    for i in range(EVENTS_KEPT):
        cache.complete_fill(i, cache.begin_fill(i), i)
    events = cache.events()
    assert len(events) == EVENTS_KEPT
    assert events[-1].seq == 2 * EVENTS_KEPT - 2  # every fill after the first: insert + evict
