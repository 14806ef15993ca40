"""The bench's results as tables with targets and verdicts (the targets, then the scale
section), plus notes, the profile and the same numbers as JSON. Plain functions of the
results: no processes, no I/O.

Every ratio is of two loads run in turns in the same run (bench/phases.py), never of a number
against one measured elsewhere.
"""

from __future__ import annotations

from typing import Any

from bazaar import tables
from bench import table
from bench.keys import BATCH, REPEATS, KeyCost
from bench.profile import Profile, render as render_profile
from bench.result import ROLES, CallFloor, Failover, HistoryLevel, LoadResult, Pair, Results, Settings, TradeCpu
from bench.table import Row

CACHED_VS_BARE = 0.9
LOOKUPS_VS_BARE = 0.8
TRADES_VS_BARE = {16: 0.3, 64: 0.5}  # by connections: trades / the bare POST route
P99_CONNECTIONS, TRADES_P99 = 64, 0.050
ABSOLUTE_CONNECTIONS, TRADES_PER_SECOND = 16, 1000.0  # the first target, kept beside the ratios
HISTORY_RATIO = (0.9, 1.1)  # within 10% of the empty cluster's, in the same turns
CATCH_UP_SECONDS = {100_000: 3.0, 1_000_000: 10.0}  # by missed orders
RESIDENT_RATIO = 1.2  # no memory per order: each process within 20% of its empty-history self
KEY_COST_RATIO = 1.5  # a B-tree gets deeper with history; a cost per order would be 1000s×
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


def _pair_rows(pair: Pair | None, measured: str, baseline: str, unit: str, ratio: str, target: float) -> list[Row]:
    """The Bazaar load, its baseline, and their ratio judged against `target`."""
    vs = None if pair is None else pair.ratio
    return [
        Row(measured, _load(pair and pair.measured, unit)),
        Row(f"  {baseline}", _load(pair and pair.baseline, unit)),
        Row(f"  {ratio}", "", f"≥ {target:.1f}× bare", table.times(vs), table.at_least(vs, target)),
    ]


def rows(results: Results, settings: Settings) -> list[Row]:
    """The targets: each Bazaar figure beside its baseline, the ratio and a verdict."""
    r = results
    n = settings.connections
    numbers = r.lookup_numbers
    cycled = f"{len(numbers):,} orders {numbers.start}-{numbers.stop - 1}" if numbers else "no orders"
    out = [
        *_pair_rows(r.cached, f"cached GET /stocks/<name>, {n} conn", "bare Klein GET route, same bytes", " req/s",
                    "cached GET / bare GET", CACHED_VS_BARE),
        *_pair_rows(r.lookups, f"GET /orders/<n>, {n} conn, n cycling through {cycled}",
                    "bare Klein GET /orders route, same bytes", " req/s", "order lookups / bare GET", LOOKUPS_VS_BARE),
    ]
    for c, target in TRADES_VS_BARE.items():
        out += _pair_rows(r.trades.get(c), f"trades (POST /orders), {c} conn, 3 replicas, mutual TLS",
                          "bare Klein POST /orders, parses the same body", "/s", f"trades / bare POST, {c} conn",
                          target)
    at_p99 = r.trades.get(P99_CONNECTIONS)
    p99 = None if at_p99 is None else at_p99.measured.p99
    p99_ratio = table.ratio(p99, TRADES_P99)
    out.append(Row(f"trades p99 at {P99_CONNECTIONS} conn", table.duration(p99), f"≤ {table.duration(TRADES_P99)}",
                   table.times(p99_ratio), table.at_most(p99_ratio, 1.0)))
    absolute = r.trades.get(ABSOLUTE_CONNECTIONS)
    trades = None if absolute is None else absolute.measured.per_second
    out.append(Row(f"trades at {ABSOLUTE_CONNECTIONS} conn, absolute", table.rate(trades),
                   f"≥ {TRADES_PER_SECOND:,.0f}/s", table.times(table.ratio(trades, TRADES_PER_SECOND)),
                   table.at_least(trades, TRADES_PER_SECOND)))
    alone = r.trades.get(1)
    out.append(Row("trades at 1 connection (one at a time)", _load(alone and alone.measured, "/s", median=True),
                   "(report)"))
    with_tls = r.trades.get(r.plaintext_connections)
    out.append(Row(f"trades with TLS off, {r.plaintext_connections} conn (not a deployment)",
                   _load(r.trades_plaintext, "/s"), "(report)",
                   table.times(table.ratio(_per_second(with_tls and with_tls.measured),
                                           _per_second(r.trades_plaintext)))))
    largest = r.largest_history()
    if largest is not None:
        out.append(_history_row(largest))
    for missed, limit in CATCH_UP_SECONDS.items():
        level = r.at_history(missed)
        if level is not None:
            out.append(_catch_up_row(level, limit))
        else:
            biggest = f"{largest.orders:,}" if largest else "none"
            out.append(Row(f"catch-up of {missed:,} missed orders", f"not measured (largest history: {biggest})",
                           f"≤ {limit:g} s"))
    out += [_failover_row(f) for f in r.failovers]
    return out


def _history_vs_empty(level: HistoryLevel) -> float | None:
    return table.ratio(_per_second(level.trades), _per_second(level.empty))


def _history_row(level: HistoryLevel) -> Row:
    vs = _history_vs_empty(level)
    return Row(f"trades on {level.orders:,} orders of history / empty, same turns", _load(level.trades, "/s"),
               f"{HISTORY_RATIO[0]:.1f}-{HISTORY_RATIO[1]:.1f}× empty", table.times(vs),
               table.within(vs, *HISTORY_RATIO))


def _catch_up(level: HistoryLevel) -> str:
    if level.catch_up is None:
        return "-"
    return f"{table.duration(level.catch_up)} (listening after {table.duration(level.catch_up_listening)})"


def _catch_up_row(level: HistoryLevel, limit: float) -> Row:
    return Row(f"catch-up of a replica that missed {level.orders:,}", _catch_up(level), f"≤ {limit:g} s",
               table.times(table.ratio(level.catch_up, limit)), table.at_most(level.catch_up, limit))


def _failover_row(f: Failover) -> Row:
    value = f"{table.duration(f.gap) if f.gap is not None else 'no recovery'}, {f.errors} errors of {f.requests}"
    ok = f.gap is not None and f.gap <= FAILOVER_SECONDS and f.errors == 0
    return Row(f"leader failover, {f.signal_name}", value, f"≤ {FAILOVER_SECONDS:g} s, 0 errors",
               table.times(table.ratio(f.gap, FAILOVER_SECONDS)), table.PASS if ok else table.FAIL)


# -- the scale section ---------------------------------------------------------------------------


def scale_lines(results: Results, trade_connections: int) -> list[str]:
    """The scale section's tables, each under a title saying what its loads were."""
    r = results
    out = ["### Trades against connections (each load in turns with the bare Klein POST route)", "",
           *tables.table(("connections", "trades/s", "p50", "p99", "bare POST/s", "bare p99", "trades / bare",
                          "target", "verdict"), [_connections_row(c, p) for c, p in sorted(r.trades.items())],
                         markdown=True)]
    if r.trade_cpu:
        out += ["", "### CPU per trade by process (user + system, from /proc, over the trade loads above; "
                "orders per batch: the front end's calls to the leader)", "",
                *tables.table(("connections", *ROLES, "all", "orders per batch"),
                              [_cpu_row(c, cpu) for c, cpu in sorted(r.trade_cpu.items())], markdown=True)]
    if not r.history:
        return out
    out += ["", f"### Trades against history ({trade_connections} conn, each load in turns with an empty cluster "
            "started beside the seeded one; every trade has its own Idempotency-Key)", "",
            *tables.table(("history", "trades/s", "p99", "empty cluster, same turns", "history / empty", "target",
                           "verdict"), [_history_cells(level) for level in r.history], markdown=True)]
    out += ["", "### Catch-up against missed orders (a replica started empty while the others hold them)", "",
            *tables.table(("missed orders", "catch-up", "listening after", "target", "ratio", "verdict"),
                          [_catch_up_cells(level) for level in r.history], markdown=True)]
    out += ["", "### Resident memory (VmRSS) of every process against history, after the same trade loads "
            "(0: the empty cluster beside the largest history; order-1: the replica that caught up)", "",
            *resident_table(r.history)]
    out += ["", "### Idempotency-key lookups against history (the log's own OrderStore calls on the seeded log "
            f"and on an empty one, in turns, in the bench's process: best of {REPEATS})", "", *key_table(r.history)]
    return out


def _connections_row(connections: int, pair: Pair) -> list[str]:
    target = TRADES_VS_BARE.get(connections)
    m, b = pair.measured, pair.baseline
    return [str(connections), table.rate(m.per_second, ""), table.duration(m.p50), table.duration(m.p99),
            table.rate(b.per_second, ""), table.duration(b.p99), table.times(pair.ratio),
            "" if target is None else f"≥ {target:.1f}×",
            table.REPORT if target is None else table.at_least(pair.ratio, target)]


def _cpu_row(connections: int, cpu: TradeCpu) -> list[str]:
    per_batch = cpu.orders_per_batch
    return [str(connections), *(table.micros(cpu.per_trade(role)) for role in (*ROLES, "all")),
            "-" if per_batch is None else f"{per_batch:.1f}"]


def _history_cells(level: HistoryLevel) -> list[str]:
    vs = _history_vs_empty(level)
    return [f"{level.orders:,}", table.rate(_per_second(level.trades), ""),
            table.duration(level.trades and level.trades.p99), table.rate(_per_second(level.empty), ""),
            table.times(vs), f"{HISTORY_RATIO[0]:.1f}-{HISTORY_RATIO[1]:.1f}×", table.within(vs, *HISTORY_RATIO)]


def _catch_up_cells(level: HistoryLevel) -> list[str]:
    limit = CATCH_UP_SECONDS.get(level.orders)
    return [f"{level.orders:,}", table.duration(level.catch_up), table.duration(level.catch_up_listening),
            "" if limit is None else f"≤ {limit:g} s",
            "" if limit is None else table.times(table.ratio(level.catch_up, limit)),
            table.REPORT if limit is None else table.at_most(level.catch_up, limit)]


def resident_table(levels: list[HistoryLevel]) -> list[str]:
    """A row per process: its memory on an empty history and on each seeded one, the largest
    against the empty one, and whether that is within RESIDENT_RATIO."""
    largest = levels[-1]
    names = list(dict.fromkeys([*largest.empty_resident, *(n for level in levels for n in level.resident)]))
    body = []
    for name in names:
        empty, last = largest.empty_resident.get(name), largest.resident.get(name)
        vs = table.ratio(last, empty)
        body.append([name, table.mebibytes(empty), *(table.mebibytes(level.resident.get(name)) for level in levels),
                     table.times(vs), f"≤ {RESIDENT_RATIO:.1f}×", table.at_most(vs, RESIDENT_RATIO)])
    header = ("process", "0", *(f"{level.orders:,}" for level in levels), f"{largest.orders:,} / 0", "target",
              "verdict")
    return tables.table(header, body, markdown=True)


def key_ratios(level: HistoryLevel) -> tuple[float | None, float | None]:
    """(a lookup of a new key, a batch's per key), each on the seeded log / on the empty one."""
    k, e = level.keys, level.empty_keys
    if k is None or e is None:
        return None, None
    return table.ratio(k.new, e.new), table.ratio(k.batch, e.batch)


def key_table(levels: list[HistoryLevel]) -> list[str]:
    """A row per history: each lookup's cost on the seeded log beside the same on an empty log
    timed in the same turns, their ratios, and whether both are within KEY_COST_RATIO."""
    body = []
    for level in levels:
        k, e = level.keys, level.empty_keys
        new, batch = key_ratios(level)
        verdicts = [table.at_most(x, KEY_COST_RATIO) for x in (new, batch)]
        body.append([f"{level.orders:,}", table.micros(k and k.new), table.micros(e and e.new), table.times(new),
                     table.micros(k and k.batch), table.micros(e and e.batch), table.times(batch),
                     table.micros(k and k.held), f"≤ {KEY_COST_RATIO:.1f}× each", table.worst(verdicts)])
    return tables.table(("history", "new key (leader, each trade)", "empty log", "ratio",
                         f"batch of {BATCH} new (follower), per key", "empty log", "ratio", "held key (a retry)",
                         "target", "verdict"), body, markdown=True)


# -- notes, profile, JSON ------------------------------------------------------------------------


def notes(results: Results, loader: str) -> list[str]:
    r = results
    lines = [f"loader: {loader}"]
    loads: list[tuple[str, LoadResult | None]] = []
    for name, pair in (("cached GET", r.cached), ("lookups", r.lookups)):
        loads += [(name, pair and pair.measured), (f"bare route of {name}", pair and pair.baseline)]
    for c, pair in sorted(r.trades.items()):
        loads += [(f"trades {c}", pair.measured), (f"bare POST {c}", pair.baseline)]
    loads += [(f"trades on {level.orders:,}", level.trades) for level in r.history]
    shares = [(name, res.loader_share) for name, res in loads if res is not None and res.loader_share is not None]
    if shares:
        lines.append("loader CPU (share of one core): " + ", ".join(f"{n} {s:.0%}" for n, s in shares))
    lines += r.same_answer
    for f in r.failovers:
        if f.error_kinds:
            lines.append(f"{f.signal_name} errors seen by clients: {', '.join(f.error_kinds)}")
    lines += r.checks
    if isinstance(r.call_floor, CallFloor):
        lines.append(f"one internal call with no Bazaar code (bench/call_floor.py, the best turn): "
                     f"{table.micros(r.call_floor.direct)} answered in the server's handler thread, "
                     f"{table.micros(r.call_floor.hop)} after a hop into its reactor thread, as every Bazaar "
                     "handler does; a trade's round holds two such calls one after the other")
    elif r.call_floor is not None:
        lines.append(f"one internal call with no Bazaar code: {r.call_floor}")
    return lines


def profile_lines(profiles: dict[str, dict[str, Profile | str]]) -> list[str]:
    out: list[str] = []
    for title, processes in profiles.items():
        out += [f"### {title}", "", "```"]
        for name, result in processes.items():
            out += [f"{name}: {result}"] if isinstance(result, str) else render_profile(name, result)
        out += ["```", ""]
    return out


def _load_json(result: LoadResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"per_second": result.per_second, "requests": result.requests, "failures": result.failures,
            "seconds": result.seconds, "p50": result.p50, "p99": result.p99}


def _pair_json(pair: Pair | None) -> dict[str, Any] | None:
    if pair is None:
        return None
    return {"measured": _load_json(pair.measured), "baseline": _load_json(pair.baseline), "ratio": pair.ratio}


def _keys_json(cost: KeyCost | None) -> dict[str, Any] | None:
    return None if cost is None else {"new": cost.new, "held": cost.held, "batch": cost.batch}


def as_json(results: Results, settings: Settings) -> dict[str, Any]:
    """The numbers of the tables, in seconds, bytes and per second (for plots)."""
    r = results
    return {
        "settings": {"seconds": settings.seconds, "connections": settings.connections,
                     "history": settings.history, "curve": list(settings.curve)},
        "cached": _pair_json(r.cached),
        "lookups": {**(_pair_json(r.lookups) or {}), "numbers": [r.lookup_numbers.start, r.lookup_numbers.stop]},
        "trades": [{"connections": c, **(_pair_json(p) or {})} for c, p in sorted(r.trades.items())],
        "trade_cpu": [{"connections": c, "seconds": cpu.seconds, "trades": cpu.trades, "batches": cpu.batches,
                       "orders": cpu.orders} for c, cpu in sorted(r.trade_cpu.items())],
        "trades_plaintext": {"connections": r.plaintext_connections, **(_load_json(r.trades_plaintext) or {})},
        "history": [{
            "orders": level.orders, "seeding": level.seeding, "catch_up": level.catch_up,
            "catch_up_listening": level.catch_up_listening, "trades": _load_json(level.trades),
            "empty": _load_json(level.empty), "resident": level.resident, "empty_resident": level.empty_resident,
            "keys": _keys_json(level.keys), "empty_keys": _keys_json(level.empty_keys),
        } for level in r.history],
        "call_floor": ({"direct": r.call_floor.direct, "hop": r.call_floor.hop}
                       if isinstance(r.call_floor, CallFloor) else None),
        "failovers": [{"signal": f.signal_name, "gap": f.gap, "requests": f.requests, "errors": f.errors}
                      for f in r.failovers],
    }
