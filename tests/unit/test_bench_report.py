"""The bench's pure parts: wrk's summary line, the table, the verdicts, the profile summary and
the seeded history (written into stores in a temporary folder). No processes, no timing."""

from __future__ import annotations

from collections import Counter

import pytest

from bazaar.catalog.store import read_applied, read_stocks
from bazaar.chaos.invariants import expected_catalog
from bazaar.core.chain import Kind, Record, chained, follows
from bazaar.core.stock import DEFAULT_STOCKS, table_id
from bazaar.order.store import OrderStore, read_entries, read_orders
from bench import profile, report, seed, table, wrk
from bench.cluster import log_count
from bench.result import Failover, LoadResult, Results, combined

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8080/orders
  1 threads and 16 connections
  12345 requests in 10.00s, 2.00MB read
  Non-2xx or 3xx responses: 12
Requests/sec:   1234.50
Transfer/sec:    200.00KB
BENCH-SUMMARY requests=12345 duration_us=10002000 status_errors=12 connect=1 read=2 write=3 timeout=4 p50_us=1500 p99_us=25000 max_us=180000
"""


def test_wrk_summary_line_is_parsed_exactly():
    s = wrk.parse_summary(WRK_OUTPUT)
    assert s == wrk.WrkSummary(requests=12345, seconds=10.002, status_errors=12, socket_errors=10,
                               p50=0.0015, p99=0.025, max=0.18)


def test_wrk_output_without_our_summary_is_none():
    assert wrk.parse_summary("unable to connect to 127.0.0.1:1 Connection refused\n") is None


def test_every_wrk_script_prints_the_summary_and_orders_carry_keys():
    for kind in wrk.SCRIPTS:
        assert "function done(" in wrk.script(kind) and wrk.SUMMARY_TAG in wrk.script(kind)
    assert '["Idempotency-Key"]' in wrk.script("orders")
    argv = wrk.command("wrk", "http://127.0.0.1:1/orders", "/tmp/o.lua", 16, 2.6, ("tag",))
    assert argv[:7] == ["wrk", "-t", "1", "-c", "16", "-d", "3s"]
    assert argv[-3:] == ["http://127.0.0.1:1/orders", "--", "tag"]


def test_load_result_counts_only_successes_per_second():
    r = LoadResult("wrk", seconds=2.0, requests=1000, failures=100, p50=0.001, p99=0.01, loader_cpu=0.5)
    assert r.successes == 900
    assert r.per_second == 450
    assert r.loader_share == 0.25


def test_loads_run_in_turns_combine_conservatively():
    a = LoadResult("wrk", seconds=5.0, requests=300, failures=1, p50=0.002, p99=0.010, loader_cpu=0.2)
    b = LoadResult("wrk", seconds=5.0, requests=100, failures=0, p50=0.006, p99=0.030, loader_cpu=0.3)
    c = combined([a, b])
    assert (c.seconds, c.requests, c.failures, c.loader_cpu) == (10.0, 400, 1, 0.5)
    assert c.p50 == pytest.approx(0.003) and c.p99 == 0.030
    assert c.per_second == pytest.approx(39.9)


@pytest.mark.parametrize("seconds, text", [(None, "-"), (0.0042, "4.2 ms"), (0.25, "250 ms"), (2.345, "2.35 s")])
def test_durations_read_naturally(seconds, text):
    assert table.duration(seconds) == text


def test_ratios_and_verdicts():
    assert table.ratio(800, 1000) == 0.8
    assert table.ratio(1, 0) is None and table.ratio(None, 2) is None
    assert table.times(0.8) == "0.80×" and table.times(None) == "-"
    assert table.at_least(0.8, 0.8) == table.PASS and table.at_least(0.79, 0.8) == table.FAIL
    assert table.times(0.7999) == "0.80×" and table.at_least(0.7999, 0.8) == table.PASS
    assert table.at_most(3.0, 3.0) == table.PASS and table.at_most(None, 3.0) == table.FAIL
    assert table.within(1.3, 0.8, 1.25) == table.FAIL and table.within(0.9, 0.8, 1.25) == table.PASS
    assert table.rate(1234.4) == "1,234/s"


def test_table_lines_up_in_markdown():
    lines = table.render([table.Row("a", "1/s", "≥ 2/s", "0.50×", table.FAIL), table.Row("longer measure", "x")])
    assert lines[0].startswith("| measure")
    assert set(lines[1]) <= {"|", "-"}
    assert len({len(line) for line in lines}) == 1
    assert "| FAIL" in lines[2]


def _load(per_second: float) -> LoadResult:
    return LoadResult("wrk", seconds=1.0, requests=int(per_second), failures=0, p50=0.001, p99=0.002)


def test_report_rows_judge_each_target():
    results = Results(
        cached=_load(900), bare=_load(1000), trades=_load(1200), trades_alone=_load(100), lookups=_load(2000),
        lookups_over=5000, history_trades=_load(600), seeding=1.5, catch_up=2.5, catch_up_listening=0.5,
        failovers=[Failover("SIGKILL", 3, 0.05, 200, 0, ()), Failover("SIGSTOP", 2, 0.7, 180, 2, ("503 x",))],
    )
    rows = {r.measure: r for r in report.rows(results, history=100_000, connections=16)}
    assert rows["cached / bare"].ratio == "0.90×" and rows["cached / bare"].verdict == table.PASS
    assert rows["trades (POST /orders), 16 conn, 3 replicas"].verdict == table.PASS
    history = rows["trades with 100,000 orders of history"]
    assert history.ratio == "0.50×" and history.verdict == table.FAIL
    assert rows["catch-up of a replica that missed 100,000"].verdict == table.PASS
    assert rows["leader failover, SIGKILL"].verdict == table.PASS
    assert rows["leader failover, SIGSTOP"].verdict == table.FAIL  # errors seen by clients
    notes = report.notes(results, "wrk")
    assert "SIGSTOP errors seen by clients: 503 x" in notes


def test_report_of_a_run_that_measured_nothing_has_no_verdict_pass():
    rows = report.rows(Results(), history=10, connections=1)
    assert all(r.verdict in (table.FAIL, table.REPORT) for r in rows)


REACTOR = "<module> (twistd:8);ReactorBase.mainLoop (twisted/internet/base.py:694)"
RAW = f"""\
{REACTOR};EPollReactor.doPoll (twisted/internet/epollreactor.py:227) 5
{REACTOR};render (bazaar/frontend/app.py:9);_parseContentType (twisted/web/http.py:3);__getitem__ (email/headerregistry.py:4) 3
{REACTOR};place_order (bazaar/frontend/app.py:5);place_order (bazaar/frontend/app.py:5);write (/usr/lib/python3/site-packages/grpc/_channel.py:6) 2
Thread._bootstrap (threading.py:1002);_worker (concurrent/futures/thread.py:81) 40
not a sample line
"""


def test_profile_keeps_the_reactor_thread_and_splits_waiting_from_busy():
    p = profile.summarize(RAW)
    assert (p.samples, p.waiting, p.busy) == (10, 5, 5)  # the pool thread is left out
    assert p.busy_by_area == {"email": 3, "grpc": 2}
    assert p.busy_by_function["__getitem__ (email/headerregistry.py)"] == 3
    # A recursive frame counts once per sample.
    assert p.ours_inclusive["place_order (bazaar/frontend/app.py)"] == 2
    assert p.ours_inclusive["render (bazaar/frontend/app.py)"] == 3
    lines = profile.render("front end", p)
    assert lines[0] == "front end: reactor thread busy 50.0% of 10 samples (waiting for events 50.0%)"
    assert "  busy, by area: email 30.0%, grpc 20.0%" in lines
    own = lines[lines.index("  busy, top functions (own time):") + 1:][:3]
    assert [line.split(None, 1) for line in own] == [
        ["share", "function"], ["30.0%", "__getitem__ (email/headerregistry.py)"],
        ["20.0%", "write (/usr/lib/python3/site-packages/grpc/_channel.py)"]]


def test_slowloris_report_has_a_row_per_normal_client():
    from bench import slowloris

    result = {"normal": [(True, Counter({200: 10, "timeout": 1}), [1.0, 2.0, 4.0]), (False, Counter({503: 2}), [])],
              "attack": None, "peak_fds": 7}
    lines = slowloris.report("alone:", result, 2.0)
    assert lines[0] == "alone:" and lines[1].split()[:4] == ["client", "answered", "200/s", "answers"]
    # p99 of [1, 2, 4] ms: 2 + 0.98 * 2
    assert lines[2].split() == ["new", "connection", "per", "request", "10", "5", "200:", "10,", "timeout:", "1",
                                "2.0", "ms", "4.0", "ms"]
    assert lines[3].split() == ["one", "kept-alive", "connection", "2", "0", "503:", "2", "no", "200", "-"]
    assert lines[4] == "  front end: at most 7 file descriptors open"


@pytest.mark.parametrize("file, expected", [
    ("bazaar/order/store.py", "bazaar/order"), ("threading.py", "threading"), ("grpc/_channel.py", "grpc"),
    ("grpc/_cython/x.pyx", "grpc/_cython"), ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap>"),
])
def test_profile_areas(file, expected):
    assert profile.area(file) == expected


def test_seeded_history_is_a_chained_log_of_epoch_1_the_catalog_can_apply():
    records = seed.history(101)
    assert records[0] == Record(0, seed.SEED_EPOCH, Kind.LEADER, -1)
    trades = records[1:]
    assert [r.index for r in records] == list(range(102))
    assert [r.number for r in trades] == list(range(101)) and all(r.is_trade for r in trades)
    assert all(follows(r, prev.number) for prev, r in zip(records, trades))
    assert all(r.epoch == seed.SEED_EPOCH for r in records)
    assert len({r.key for r in trades}) == 101 and all(r.key.startswith("fe-bench-seed-") for r in trades)
    entries = chained(records)
    assert entries[-1].number == 100 and entries[-1].chain != entries[-2].chain
    initial = {s.name: (s.quantity, s.volume) for s in DEFAULT_STOCKS}
    state, unknown = expected_catalog([r.order for r in trades], initial)
    assert not unknown
    # Each buy is sold back by the next order: at most one buy is outstanding.
    assert sum(initial[n][0] - q for n, (q, _) in state.items()) == trades[-1].quantity


def test_seeded_stores_hold_the_history_committed_and_the_catalog_equals_the_log(tmp_path):
    records = seed.history(11)
    seed.seed_log(tmp_path / "order-2", records, DEFAULT_STOCKS)
    seed.copy_log(tmp_path / "order-2", tmp_path / "order-3")
    seed.seed_catalog(tmp_path / "catalog", records, DEFAULT_STOCKS)
    for replica in ("order-2", "order-3"):
        assert [e.record() for e in read_entries(tmp_path / replica)] == records
        store = OrderStore(tmp_path / replica, table_id(DEFAULT_STOCKS))
        try:
            assert (store.epoch, store.committed, store.last_index) == (1, 11, 11)
        finally:
            store.close()
    assert log_count(tmp_path / "order-2") == 11 and log_count(tmp_path / "order-1") == 0
    orders = list(read_orders(tmp_path / "order-2"))
    assert read_applied(tmp_path / "catalog") == 10
    initial = {s.name: (s.quantity, s.volume) for s in DEFAULT_STOCKS}
    state, _ = expected_catalog(orders, initial)
    assert {s.name: (s.quantity, s.volume) for s in read_stocks(tmp_path / "catalog")} == state
    with pytest.raises(seed.SeedError):
        seed.seed_log(tmp_path / "order-2", records, DEFAULT_STOCKS)
    with pytest.raises(seed.SeedError):
        seed.seed_catalog(tmp_path / "catalog", records, DEFAULT_STOCKS)
