"""The bench's pure parts: wrk's summary line, the table, the verdicts, the profile summary and
the seeded history (written into stores in a temporary folder). No processes, no timing."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from bazaar.catalog.store import read_applied, read_stocks
from bazaar.chaos.invariants import expected_catalog
from bazaar.core.chain import Kind, Record, chained, follows
from bazaar.core.stock import DEFAULT_STOCKS, table_id
from bazaar.order.store import OrderStore, read_entries, read_orders
from bench import keys, profile, report, seed, table, wrk
from bench.cluster import cpu_seconds, log_count, metric_sum, parse_vm_rss
from bench.keys import KeyCost
from bench.result import CallFloor, Failover, HistoryLevel, LoadResult, Pair, Results, Settings, TradeCpu, combined

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


def test_lookups_cycle_through_a_fixed_range_of_orders():
    assert wrk.arguments("lookups", "tag", range(5, 1005)) == ("5", "1000")
    assert wrk.arguments("orders", "tag", range(1)) == ("tag",) and wrk.arguments("get", "tag", range(1)) == ()
    lua = wrk.script("lookups")
    assert "first + sent % count" in lua and "math.random" not in lua
    from bench import pyload

    paths = [pyload.request_for("lookups", "", sent, "t", range(10, 13))[1] for sent in range(7)]
    assert paths == ["/orders/10", "/orders/11", "/orders/12", "/orders/10", "/orders/11", "/orders/12", "/orders/10"]


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


def _load(per_second: float, p99: float = 0.002) -> LoadResult:
    return LoadResult("wrk", seconds=1.0, requests=int(per_second), failures=0, p50=0.001, p99=p99)


SETTINGS = Settings(seconds=10.0, connections=16, history=100_000, profile_seconds=0.0)


def _level(orders: int, trades: float, empty: float, catch_up: float, rss: int) -> HistoryLevel:
    mib = 2 ** 20
    return HistoryLevel(
        orders, seeding=1.0, catch_up=catch_up, catch_up_listening=0.5, trades=_load(trades), empty=_load(empty),
        resident={"catalog": 50 * mib, "order-1": rss * mib}, empty_resident={"catalog": 50 * mib, "order-1": 60 * mib},
        keys=KeyCost(new=6e-6, held=15e-6, batch=1.2e-6), empty_keys=KeyCost(new=5e-6, held=None, batch=0.6e-6),
    )


def _results() -> Results:
    return Results(
        cached=Pair(_load(900), _load(1000)), lookups=Pair(_load(700), _load(1000)), lookup_numbers=range(1000),
        trades={1: Pair(_load(100), _load(900)), 16: Pair(_load(1200), _load(4000)),
                64: Pair(_load(2000, p99=0.0549), _load(4500))},
        trade_cpu={16: TradeCpu({"front end": 0.36, "leader": 0.48, "busier follower": 0.24, "other follower": 0.12,
                                 "catalog": 0.0}, 1200, 150.0, 1200.0),
                   64: TradeCpu({"front end": 0.4}, 0, 0.0, 0.0)},  # no trade answered: no cost per trade
        trades_plaintext=_load(2500), plaintext_connections=64,
        history=[_level(10_000, 1950, 2000, 0.4, 61), _level(100_000, 1500, 2000, 2.5, 80)],
        failovers=[Failover("SIGKILL", 3, 0.05, 200, 0, ()), Failover("SIGSTOP", 2, 0.7, 180, 2, ("503 x",))],
    )


def test_pairs_and_the_histories_a_run_measures():
    assert Pair(_load(500), _load(1000)).ratio == 0.5
    assert Pair(_load(500), _load(0)).ratio is None
    assert SETTINGS.histories == [10_000, 100_000]
    assert Settings(3.0, 16, 10_000, 0.0).histories == [10_000]
    assert Settings(3.0, 16, 1_000_000, 0.0).histories == [10_000, 100_000, 1_000_000]
    assert Settings(3.0, 16, 50_000, 0.0).histories == [10_000, 50_000]


def test_report_rows_judge_each_target_as_a_ratio_to_its_baseline():
    rows = {r.measure.strip(): r for r in report.rows(_results(), SETTINGS)}
    assert rows["cached GET / bare GET"].ratio == "0.90×" and rows["cached GET / bare GET"].verdict == table.PASS
    assert rows["order lookups / bare GET"].ratio == "0.70×" and rows["order lookups / bare GET"].verdict == table.FAIL
    assert "cycling through 1,000 orders 0-999" in next(m for m in rows if m.startswith("GET /orders/<n>"))
    at_16, at_64 = rows["trades / bare POST, 16 conn"], rows["trades / bare POST, 64 conn"]
    assert (at_16.ratio, at_16.verdict, at_64.ratio, at_64.verdict) == ("0.30×", table.PASS, "0.44×", table.FAIL)
    # 54.9 ms shows as "55 ms" and is judged so, though it rounds to 0.05 s.
    p99 = rows["trades p99 at 64 conn"]
    assert (p99.value, p99.ratio, p99.verdict) == ("55 ms", "1.10×", table.FAIL)
    assert rows["trades at 16 conn, absolute"].verdict == table.PASS
    assert rows["trades with TLS off, 64 conn (not a deployment)"].ratio == "0.80×"
    history = rows["trades on 100,000 orders of history / empty, same turns"]
    assert history.ratio == "0.75×" and history.verdict == table.FAIL
    assert rows["catch-up of a replica that missed 100,000"].verdict == table.PASS
    missing = rows["catch-up of 1,000,000 missed orders"]
    assert missing.value == "not measured (largest history: 100,000)" and missing.verdict == table.REPORT
    assert rows["leader failover, SIGKILL"].verdict == table.PASS
    assert rows["leader failover, SIGSTOP"].verdict == table.FAIL  # errors seen by clients
    notes = report.notes(_results(), "wrk")
    assert "SIGSTOP errors seen by clients: 503 x" in notes


def test_report_of_a_run_that_measured_nothing_has_no_verdict_pass():
    rows = report.rows(Results(), Settings(1.0, 1, 10, 0.0))
    assert all(r.verdict in (table.FAIL, table.REPORT) for r in rows)
    assert report.scale_lines(Results(), 64)[0].startswith("### Trades against connections")
    # A run that stopped inside a history: its half-measured level is drawn with dashes.
    partial = Results(history=[HistoryLevel(10_000, seeding=1.0)])
    lines = report.scale_lines(partial, 64) + [f"{r}" for r in report.rows(partial, SETTINGS)]
    assert any(line.startswith("| 10,000") and "| -" in line for line in lines)
    assert json.dumps(report.as_json(partial, SETTINGS))


def _cells(lines: list[str]) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("|")][2:]


def test_scale_tables_have_a_ratio_and_a_verdict_for_each_target():
    lines = report.scale_lines(_results(), 64)
    titles = [line for line in lines if line.startswith("### ")]
    assert [t.split(" (")[0] for t in titles] == [
        "### Trades against connections", "### CPU per trade by process", "### Trades against history",
        "### Catch-up against missed orders", "### Resident memory", "### Idempotency-key lookups against history"]
    tables_at = [lines.index(t) for t in titles] + [len(lines)]
    connections, cpu, history, catch_up, memory, key = (
        _cells(lines[a:b]) for a, b in zip(tables_at, tables_at[1:]))
    assert cpu == [["16", "300.0 µs", "400.0 µs", "200.0 µs", "100.0 µs", "0.0 µs", "1000.0 µs", "8.0"],
                   ["64", "-", "-", "-", "-", "-", "-", "-"]]
    assert [row[0] for row in connections] == ["1", "16", "64"]
    assert connections[0][-2:] == ["", ""] and connections[1][-3:] == ["0.30×", "≥ 0.3×", table.PASS]
    assert [row[4:] for row in history] == [["0.97×", "0.9-1.1×", table.PASS], ["0.75×", "0.9-1.1×", table.FAIL]]
    assert catch_up[0][-1] == "" and catch_up[1][-3:] == ["≤ 3 s", "0.83×", table.PASS]
    assert memory == [["catalog", "50 MiB", "50 MiB", "50 MiB", "1.00×", "≤ 1.2×", table.PASS],
                      ["order-1", "60 MiB", "61 MiB", "80 MiB", "1.33×", "≤ 1.2×", table.FAIL]]
    # A batch twice as dear per key as on an empty log fails, though a single lookup does not.
    assert key[1] == ["100,000", "6.0 µs", "5.0 µs", "1.20×", "1.2 µs", "0.6 µs", "2.00×", "15.0 µs", "≤ 1.5× each",
                      table.FAIL]


def test_the_json_has_every_number_of_the_tables():
    data = json.loads(json.dumps(report.as_json(_results(), SETTINGS)))
    assert [t["connections"] for t in data["trades"]] == [1, 16, 64]
    assert data["trades"][1]["ratio"] == 0.3 and data["trades"][2]["measured"]["p99"] == 0.0549
    assert data["lookups"]["numbers"] == [0, 1000]
    assert data["trade_cpu"][0]["connections"] == 16 and data["trade_cpu"][0]["seconds"]["leader"] == 0.48
    assert [h["orders"] for h in data["history"]] == [10_000, 100_000]
    assert data["history"][1]["resident"]["order-1"] == 80 * 2 ** 20 and data["history"][0]["keys"]["held"] == 15e-6


def test_what_one_internal_call_costs_is_a_note_and_in_the_json_or_why_it_is_not():
    measured = Results(call_floor=CallFloor(direct=0.00072, hop=0.000875))
    note = report.notes(measured, "wrk")[-1]
    assert "720.0 µs answered in the server's handler thread, 875.0 µs after a hop into its reactor" in note
    assert report.as_json(measured, SETTINGS)["call_floor"] == {"direct": 0.00072, "hop": 0.000875}
    failed = Results(call_floor="not measured: bench/call_floor.py failed (exit status 1)")
    assert report.notes(failed, "wrk")[-1] == \
        "one internal call with no Bazaar code: not measured: bench/call_floor.py failed (exit status 1)"
    assert report.as_json(failed, SETTINGS)["call_floor"] is None
    assert not any("internal call" in n for n in report.notes(Results(), "wrk"))


def test_units_and_combined_verdicts():
    assert table.micros(6.25e-6) == "6.2 µs" and table.micros(None) == "-"
    assert table.mebibytes(3 * 2 ** 20) == "3 MiB" and table.mebibytes(None) == "-"
    assert table.worst([table.PASS, table.FAIL]) == table.FAIL and table.worst([table.PASS]) == table.PASS
    assert table.worst([table.REPORT]) == table.REPORT


def test_resident_memory_and_metrics_are_parsed(tmp_path):
    status = "Name:\ttwistd\nVmPeak:\t  300000 kB\nVmRSS:\t   61440 kB\nThreads:\t9\n"
    assert parse_vm_rss(status) == 60 * 2 ** 20
    assert parse_vm_rss("Name:\tkthreadd\n") is None
    # A /proc of one process: utime and stime are fields 14 and 15 of its stat (300 ticks in
    # all); the command may hold ") (".
    (tmp_path / "stat").write_text("cpu  1 2 3\nbtime 1700000000\n")
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "stat").write_text(
        "4242 (twistd) (x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 100 0 0 0 0\n")
    assert cpu_seconds(4242, proc=str(tmp_path)) == 300 / os.sysconf("SC_CLK_TCK")
    assert cpu_seconds(4243, proc=str(tmp_path)) is None  # gone
    text = ('# TYPE bazaar_grpc_server_calls_total counter\n'
            'bazaar_grpc_server_calls_total{service="bazaar.v1.OrderService",method="Lookup",code="OK"} 12.0\n'
            'bazaar_grpc_server_calls_total{service="bazaar.v1.OrderService",method="Lookup",code="NOT_FOUND"} 3.0\n'
            'bazaar_grpc_server_calls_total{service="bazaar.v1.OrderService",method="Request",code="OK"} 7.0\n')
    assert metric_sum(text, "bazaar_grpc_server_calls_total", {"method": "Lookup"}) == 15
    assert metric_sum(text, "bazaar_grpc_server_calls_total", {}) == 22
    assert metric_sum("", "x", {}) == 0


def test_turns_alternate_the_loads_and_combine_each():
    from bench.phases import in_turns

    ran = []

    def run(name: str, per_second: int):
        def go(seconds: float) -> LoadResult:
            ran.append((name, seconds))
            return LoadResult("wrk", seconds, int(per_second * seconds), 0, 0.001, 0.002)
        return go

    a, b = in_turns([run("a", 100), run("b", 300)], 10.0)
    assert ran == [("a", 5.0), ("b", 5.0), ("a", 5.0), ("b", 5.0)]
    assert (a.per_second, b.per_second, a.seconds) == (100, 300, 10.0)


def test_the_bare_routes_answers_are_compared_byte_for_byte_numbers_aside_for_trades():
    from bench.phases import compare

    real = (200, {"Content-Type": "application/json", "Date": "x", "Idempotency-Key": "k"},
            b'{"data": {"transaction_number": 1234}}')
    bare = (200, {"content-type": "application/json", "Date": "y", "Idempotency-Key": "k"},
            b'{"data": {"transaction_number": 0}}')
    assert compare("POST /orders", bare, real, numbers=True).startswith("POST /orders: the bare route answers the same")
    assert compare("POST /orders", bare, real).startswith("WARNING: POST /orders")
    assert compare("GET", (200, {}, b"a"), (200, {"X": "1"}, b"a")).startswith("WARNING")


def test_the_curve_option_takes_connection_counts():
    from bench.main import parser

    assert parser().parse_args(["--curve", "64,1,16,16"]).curve == (1, 16, 64)
    assert parser().parse_args([]).curve == (1, 4, 16, 64, 256)
    with pytest.raises(SystemExit):
        parser().parse_args(["--curve", "0,4"])


def test_key_lookups_are_timed_on_a_seeded_log(tmp_path):
    assert keys.held_keys(0, 10) == [] and keys.held_keys(100, 4) == [f"fe-bench-seed-{n}" for n in (0, 25, 50, 75)]
    assert not set(keys.new_keys(5, "t")) & set(keys.held_keys(5, 5))
    seed.seed_log(tmp_path / "empty", seed.history(0), DEFAULT_STOCKS)
    seed.seed_log(tmp_path / "some", seed.history(50), DEFAULT_STOCKS)
    empty, some = keys.measure([(tmp_path / "empty", 0), (tmp_path / "some", 50)], DEFAULT_STOCKS, repeats=2)
    assert empty.held is None and some.held is not None
    assert all(x > 0 for x in (empty.new, empty.batch, some.new, some.batch, some.held))


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
