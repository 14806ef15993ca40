"""The bench's results as one table with targets and verdicts, plus notes and the profile.
Plain functions of the results: no processes, no I/O."""

from __future__ import annotations

from bench import table
from bench.profile import Profile, render as render_profile
from bench.result import Failover, LoadResult, Results
from bench.table import Row

CACHED_VS_BARE = 0.8
TRADES_PER_SECOND = 1000.0
HISTORY_RATIO = (0.8, 1.25)  # "about 1.0": within the noise of a shared two-core machine
CATCH_UP_SECONDS = 3.0
FAILOVER_SECONDS = 1.0


def _load(result: LoadResult | None, unit: str, median: bool = False) -> str:
    if result is None:
        return "-"
    text = f"{table.rate(result.per_second, unit)}, "
    if median:
        text += f"p50 {table.duration(result.p50)}, "
    text += f"p99 {table.duration(result.p99)}"
    if result.failures:
        text += f" ({result.failures:,} failed)"
    return text


def _per_second(result: LoadResult | None) -> float | None:
    return None if result is None else result.per_second


def rows(results: Results, history: int, connections: int) -> list[Row]:
    r = results
    cached, bare = _per_second(r.cached), _per_second(r.bare)
    vs_bare = table.ratio(cached, bare)
    trades, history_trades = _per_second(r.trades), _per_second(r.history_trades)
    vs_target = table.ratio(trades, TRADES_PER_SECOND)
    vs_empty = table.ratio(history_trades, trades)
    out = [
        Row("cached GET /stocks/<name>", _load(r.cached, " req/s")),
        Row("bare Klein route, same bytes", _load(r.bare, " req/s")),
        Row("cached / bare", "", f"≥ {CACHED_VS_BARE:.1f}×", table.times(vs_bare),
            table.at_least(vs_bare, CACHED_VS_BARE)),
        Row(f"trades (POST /orders), {connections} conn, 3 replicas", _load(r.trades, "/s"),
            f"≥ {TRADES_PER_SECOND:,.0f}/s", table.times(vs_target), table.at_least(trades, TRADES_PER_SECOND)),
        Row("trades at 1 connection (one at a time)", _load(r.trades_alone, "/s", median=True), "(report)"),
        Row(f"  the same trades with TLS off ({connections} conn; not a deployment)", _load(r.trades_plaintext, "/s"),
            "(report)", table.times(table.ratio(trades, _per_second(r.trades_plaintext)))),
        Row(f"GET /orders/<n> (n < {r.lookups_over:,})", _load(r.lookups, " req/s"), "(report)"),
        Row(f"trades with {history:,} orders of history", _load(r.history_trades, "/s"),
            "≈ 1.0× empty", table.times(vs_empty), table.within(vs_empty, *HISTORY_RATIO)),
        Row(f"catch-up of a replica that missed {history:,}", _catch_up(r), f"≤ {CATCH_UP_SECONDS:g} s",
            table.times(table.ratio(r.catch_up, CATCH_UP_SECONDS)), table.at_most(r.catch_up, CATCH_UP_SECONDS)),
        Row(f"  seeding {history:,} orders offline (not measured)", table.duration(r.seeding)),
    ]
    for f in r.failovers:
        out.append(_failover_row(f))
    return out


def _catch_up(r: Results) -> str:
    if r.catch_up is None:
        return "-"
    return f"{table.duration(r.catch_up)} (listening after {table.duration(r.catch_up_listening)})"


def _failover_row(f: Failover) -> Row:
    value = f"{table.duration(f.gap) if f.gap is not None else 'no recovery'}, {f.errors} errors of {f.requests}"
    ok = f.gap is not None and f.gap <= FAILOVER_SECONDS and f.errors == 0
    return Row(f"leader failover, {f.signal_name}", value, f"≤ {FAILOVER_SECONDS:g} s, 0 errors",
               table.times(table.ratio(f.gap, FAILOVER_SECONDS)), table.PASS if ok else table.FAIL)


def notes(results: Results, loader: str) -> list[str]:
    r = results
    lines = [f"loader: {loader}"]
    shares = [(name, res.loader_share) for name, res in
              [("cached GET", r.cached), ("bare", r.bare), ("trades", r.trades),
               ("trades at 1 connection", r.trades_alone), ("lookups", r.lookups),
               ("trades with history", r.history_trades)] if res is not None and res.loader_share is not None]
    if shares:
        lines.append("loader CPU (share of one core): " + ", ".join(f"{n} {s:.0%}" for n, s in shares))
    if r.same_answer:
        lines.append(r.same_answer)
    for f in r.failovers:
        if f.error_kinds:
            lines.append(f"{f.signal_name} errors seen by clients: {', '.join(f.error_kinds)}")
    lines += r.checks
    return lines


def profile_lines(profiles: dict[str, dict[str, Profile | str]]) -> list[str]:
    out: list[str] = []
    for title, processes in profiles.items():
        out += [f"### {title}", "", "```"]
        for name, result in processes.items():
            out += [f"{name}: {result}"] if isinstance(result, str) else render_profile(name, result)
        out += ["```", ""]
    return out
