"""`bazaar load`'s results: the summaries, the three files, the table and the progress bar."""

import csv
import io
import json

import pytest

from bazaar.evaluation.files import CSV_HEADER, write_all
from bazaar.evaluation.progress import Progress, requests_text
from bazaar.evaluation.results import (
    RequestRecord, RunResult, cache_report, fresh_events, relative_events, run_summary,
)
from bazaar.evaluation.table import run_line, summary_table

SETTINGS = {"clients": 2, "requests": 3, "p": [0.0, 0.5], "cache": ["on", "off"], "url": None, "seed": 1}
BEFORE = {"enabled": True, "capacity": 8, "hits": 10, "misses": 5, "evictions": 1, "names": ["ford", "tesla"]}
AFTER = {**BEFORE, "hits": 19, "misses": 6, "evictions": 3}


def record(cache="on", p=0.5, type_="lookup", latency=1.0, outcome="ok", status=200, client=0, start=0.0):
    return RequestRecord(cache, p, client, type_, start, latency, status, outcome)


def cache_on_run():
    requests = [record(latency=float(i), start=i / 10) for i in range(1, 5)]
    requests += [record(type_="trade", latency=10.0), record(type_="trade", latency=20.0, status=0, outcome="timeout")]
    return RunResult("on", 0.5, 2.0, requests, BEFORE, AFTER,
                     [{"t": 0.01, "kind": "insert", "name": "apple"}])


def cache_off_run():
    return RunResult("off", 0.0, 0.5, [record(cache="off", p=0.0, client=1, status=404)])


def test_run_summary():
    s = run_summary(cache_on_run())
    assert (s["cache"], s["p"], s["duration_s"], s["requests"], s["errors"]) == ("on", 0.5, 2.0, 6, 1)
    assert s["throughput_rps"] == pytest.approx(3.0)
    assert s["cache_report"] == {"hits": 9, "misses": 1, "evictions": 2, "hit_rate": pytest.approx(0.9)}
    lookup, trade, query = (s["types"][t] for t in ("lookup", "trade", "query"))
    assert (lookup["count"], lookup["errors"], lookup["p50_ms"], lookup["max_ms"]) == (4, 0, 2.5, 4.0)
    assert (trade["count"], trade["errors"], trade["mean_ms"]) == (2, 1, 15.0)
    assert query == {"count": 0, "errors": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None,
                     "mean_ms": None, "max_ms": None}


def test_no_cache_report_when_the_cache_is_off():
    assert run_summary(cache_off_run())["cache_report"] is None
    assert cache_report(None, None) is None


def test_files(tmp_path):
    paths = write_all(tmp_path, SETTINGS, [cache_on_run(), cache_off_run()])
    assert [p.name for p in paths] == ["requests.csv", "summary.json", "cache-events.json"]

    rows = list(csv.reader(paths[0].open()))
    assert tuple(rows[0]) == CSV_HEADER
    assert len(rows) == 1 + 6 + 1
    assert rows[1] == ["on", "0.5", "0", "lookup", "0.100000", "1.000", "200", "ok"]
    assert rows[6][6:] == ["0", "timeout"]
    assert rows[7][:3] == ["off", "0.0", "1"]

    summary = json.loads(paths[1].read_text())
    assert summary["settings"] == SETTINGS
    assert [(r["cache"], r["p"], r["requests"]) for r in summary["runs"]] == [("on", 0.5, 6), ("off", 0.0, 1)]
    assert summary["runs"][1]["cache_report"] is None

    events = json.loads(paths[2].read_text())
    assert events == {"runs": [{"p": 0.5, "capacity": 8, "names_at_start": ["ford", "tesla"],
                                "events": [{"t": 0.01, "kind": "insert", "name": "apple"}]}]}


def test_an_outcome_with_a_comma_survives_the_csv(tmp_path):
    run = RunResult("off", 0.0, 1.0, [record(cache="off", status=500, outcome='500 oops, "bad"')])
    paths = write_all(tmp_path, SETTINGS, [run])
    assert list(csv.reader(paths[0].open()))[1][-1] == '500 oops, "bad"'


def test_events_relative_to_the_run_start():
    events = [{"seq": 3, "time": 1000.25, "kind": "evict", "name": "ford"}]
    assert relative_events(events, 1000.0) == [{"t": 0.25, "kind": "evict", "name": "ford"}]


def test_fresh_events_advance_the_cursor_and_count_a_gap():
    events = [{"seq": s, "time": 0.0, "kind": "insert", "name": "x"} for s in (4, 5, 7, 8)]
    assert fresh_events(events, 3) == (events, 8, 0)
    assert fresh_events(events[2:], 5) == (events[2:], 8, 1)  # seq 6 fell out of the log
    assert fresh_events(events, 8) == ([], 8, 0)
    assert fresh_events(events, -1)[1:] == (8, 0)  # the first read: nothing before counts as lost


def test_table_and_run_line():
    summaries = [run_summary(cache_on_run()), run_summary(cache_off_run())]
    lines = summary_table({"runs": summaries})
    assert len(lines) == 2 + 2 * 3 + 3 + 2
    trade = next(line for line in lines if line.split()[:3] == ["on", "0.5", "trade"])
    assert trade.split() == ["on", "0.5", "trade", "2", "15.00", "19.50", "19.90", "15.00", "1"]
    query_off = next(line for line in lines if line.split()[:3] == ["off", "0", "query"])
    assert query_off.split()[3:] == ["0", "-", "-", "-", "-", "0"]
    assert lines[-2].split() == ["on", "0.5", "6", "2.00", "3.0", "1", "0.900"]
    assert lines[-1].split()[-1] == "-"
    assert run_line(summaries[0]) == "cache=on p=0.5: 6 requests in 2.00 s, 3.0 req/s, 1 errors, hit rate 0.900"


def test_the_text_beside_the_bar():
    assert requests_text(1234, 380.4) == " 1234 req 380 req/s"
    assert requests_text(0, None) == " 0 req"
    assert requests_text(None, None) == ""


def test_progress_on_a_terminal_redraws_in_place_and_keeps_lines_above():
    stream, now = io.StringIO(), [0.0]
    progress = Progress(stream, 10, live=True, clock=lambda: now[0])
    progress.draw()  # nothing to show yet
    assert stream.getvalue() == ""
    progress.start_run("p=0 cache=on")
    for _ in range(4):
        progress.request_done()
    progress.iterations_done(5)
    assert stream.getvalue() == ""  # drawn by draw() only
    now[0] = 2.0
    progress.draw()
    bar = stream.getvalue()
    assert bar.startswith("\r") and "\n" not in bar
    assert " 50%|" in bar and bar.endswith("| on p=0 cache=on 4 req 2 req/s")
    assert bar.count("#") == 10  # half of the 20 wide bar
    progress.say("a line")
    after_say = stream.getvalue()[len(bar):]
    cleared, _, redrawn = after_say.partition("a line\n")
    assert cleared.strip(" \r") == "" and " " * len(bar.strip("\r")) in cleared  # the bar erased first
    assert redrawn == bar  # then drawn again below the line
    progress.clear()
    erased = stream.getvalue()[len(bar) + len(after_say):]
    assert erased.strip(" \r") == "" and " " * len(bar.strip("\r")) in erased
    progress.draw()  # cleared for good
    assert stream.getvalue().endswith(erased)


def test_progress_elsewhere_writes_only_lines():
    stream = io.StringIO()
    progress = Progress(stream, 10, live=False)
    progress.start_run("p=0 cache=on")
    progress.iterations_done(4)
    progress.draw()
    progress.say("a line")
    progress.clear()
    assert stream.getvalue() == "a line\n"
    assert progress.fraction == 0.4
