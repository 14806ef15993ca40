"""Sentences about the measurements, worded from the numbers, so they stay true when the data is
made again: each says "rises", "falls" or "stays within noise" as the data says, and names the
values it compares. Plain functions of the parsed inputs (inputs.py); no I/O.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from bazaar.evaluation.stats import percentile
from bazaar.evaluation.inputs import ChaosData, LoadData, LoadRun

NOISE = 0.10  # two latencies closer than this (relative to the smaller) are "within noise"
HIT_RATE_NOISE = 0.02  # two hit rates closer than 2 percentage points are "about the same"


def ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def pct(rate: float) -> str:
    return f"{rate * 100:.0f}%"


def change(before: float, after: float, noise: float = NOISE) -> str:
    """'rises', 'falls' or 'stays' from before to after, with a relative noise band."""
    low = min(before, after)
    if abs(after - before) <= noise * low or (low == 0 and before == after):
        return "stays"
    return "rises" if after > before else "falls"


def hit_rate_change(before: float, after: float) -> str:
    if abs(after - before) <= HIT_RATE_NOISE:
        return "stays"
    return "rises" if after > before else "falls"


def _moves(before: float, after: float, p0: float, p1: float, noise: float = NOISE) -> str:
    """'rises from X at p=a to Y at p=b', or 'stays within noise (X at p=a, Y at p=b)'."""
    verb = change(before, after, noise)
    if verb == "stays":
        return f"stays within noise ({ms(before)} at p={p0:g}, {ms(after)} at p={p1:g})"
    return f"{verb} from {ms(before)} at p={p0:g} to {ms(after)} at p={p1:g}"


def _span(runs: Sequence[LoadRun], kind: str) -> tuple[LoadRun, LoadRun] | None:
    """The runs at the lowest and highest p that made requests of this kind (two distinct p)."""
    with_kind = sorted((r for r in runs if r.stats(kind)), key=lambda r: r.p)
    return (with_kind[0], with_kind[-1]) if len(with_kind) >= 2 else None


def _p50(run: LoadRun, kind: str) -> float:
    return run.stats(kind).p50_ms  # type: ignore[union-attr,return-value]


# ---- the load runs --------------------------------------------------------------------------------


def cache_effect_on_lookups(load: LoadData) -> list[str]:
    pairs = [(p, load.run("on", p), load.run("off", p)) for p in load.ps("on")]
    pairs = [(p, on, off) for p, on, off in pairs if on and off and on.stats("lookup") and off.stats("lookup")]
    if not pairs:
        return []
    p, on, off = pairs[0]
    a, b = _p50(off, "lookup"), _p50(on, "lookup")
    verb = change(a, b)
    if verb == "falls":
        first = f"Caching cut lookup p50 from {ms(a)} to {ms(b)} at p={p:g} ({a / b:.1f}× faster)."
    elif verb == "rises":
        first = f"Caching made lookups slower at p={p:g}: p50 {ms(a)} without the cache, {ms(b)} with it."
    else:
        first = (f"Caching made no clear difference to lookup p50 at p={p:g}: {ms(a)} without the cache, "
                 f"{ms(b)} with it (within {NOISE:.0%}).")
    out = [first]
    if len(pairs) > 1:
        faster = [q for q, on_, off_ in pairs if change(_p50(off_, "lookup"), _p50(on_, "lookup")) == "falls"]
        if len(faster) == len(pairs):
            out.append(f"Lookups were faster with the cache at every p measured ({len(pairs)} values).")
        else:
            listed = ", ".join(f"{q:g}" for q in faster) or "none"
            out.append(f"Lookups were clearly faster with the cache at {len(faster)} of {len(pairs)} values of p "
                       f"(p = {listed}).")
    return out


def lookups_against_p(load: LoadData) -> list[str]:
    out = []
    on_runs = [r for r in load.runs if r.cache == "on"]
    span = _span(on_runs, "lookup")
    if span:
        lo, hi = span
        text = f"With the cache on, lookup p50 {_moves(_p50(lo, 'lookup'), _p50(hi, 'lookup'), lo.p, hi.p)}"
        if lo.hit_rate is not None and hi.hit_rate is not None:
            a, b = lo.hit_rate, hi.hit_rate
            rate = hit_rate_change(a, b)
            latency = change(_p50(lo, "lookup"), _p50(hi, "lookup"))
            rate_words = (f"stayed about the same ({pct(a)} to {pct(b)})" if rate == "stays"
                          else f"{'fell' if rate == 'falls' else 'rose'} from {pct(a)} to {pct(b)}")
            if rate == "falls" and latency == "rises":
                text += (f", because more trades invalidate cached entries: the hit rate {rate_words}, so more "
                         "lookups had to ask the catalog")
            elif rate == "falls":
                text += (f"; the hit rate {rate_words} as more trades invalidate cached entries, "
                         "but that did not show as slower lookups")
            else:
                text += f"; the hit rate {rate_words}"
        out.append(text + ".")
    span = _span([r for r in load.runs if r.cache == "off"], "lookup")
    if span:
        lo, hi = span
        out.append(f"Without the cache, lookup p50 {_moves(_p50(lo, 'lookup'), _p50(hi, 'lookup'), lo.p, hi.p)}.")
    return out


def trades_against_p(load: LoadData) -> list[str]:
    parts = []
    for cache in ("on", "off"):
        span = _span([r for r in load.runs if r.cache == cache], "trade")
        if span:
            lo, hi = span
            parts.append(f"with the cache {cache} it {_moves(_p50(lo, 'trade'), _p50(hi, 'trade'), lo.p, hi.p)}")
    out = [f"Trade p50 (POST /orders): {'; '.join(parts)}."] if parts else []
    common = [p for p in load.ps("on") if (r := load.run("on", p)) and r.stats("trade")
              and (s := load.run("off", p)) and s.stats("trade")]
    if common:
        p = common[-1]
        on, off = _p50(load.run("on", p), "trade"), _p50(load.run("off", p), "trade")  # type: ignore[arg-type]
        verb = change(off, on)
        words = {"stays": "about as fast as", "rises": "slower than", "falls": "faster than"}[verb]
        out.append(f"At p={p:g} a trade with the cache on was {words} with it off (p50 {ms(on)} vs {ms(off)}).")
    return out


def queries_by_cache(load: LoadData) -> list[str]:
    common = [p for p in load.ps("on") if (r := load.run("on", p)) and r.stats("query")
              and (s := load.run("off", p)) and s.stats("query")]
    if not common:
        return []
    p = common[-1]
    on, off = _p50(load.run("on", p), "query"), _p50(load.run("off", p), "query")  # type: ignore[arg-type]
    words = {"stays": "took about as long with the cache on as with it off",
             "rises": "were slower with the cache on than with it off",
             "falls": "were faster with the cache on than with it off"}[change(off, on)]
    return [f"Order queries (GET /orders/<number>, never cached) at p={p:g} {words} "
            f"(p50 {ms(on)} on vs {ms(off)} off)."]


def throughput(load: LoadData) -> list[str]:
    best = max(load.runs, key=lambda r: r.throughput_rps)
    out = [f"The highest throughput was {best.throughput_rps:.0f} requests/s (cache {best.cache}, p={best.p:g})."]
    errors = sum(r.errors for r in load.runs)
    requests = sum(r.requests for r in load.runs)
    if errors == 0:
        out.append(f"No request failed: all {requests} requests got the expected answer.")
    else:
        kinds = ", ".join(f"{n} {kind} {outcome!r}" for (kind, outcome), n in load.failures.most_common(5))
        out.append(f"{errors} of {requests} requests failed" + (f" ({kinds})." if kinds else "."))
    return out


def load_observations(load: LoadData) -> list[str]:
    return (cache_effect_on_lookups(load) + lookups_against_p(load) + trades_against_p(load)
            + queries_by_cache(load) + throughput(load))


# ---- the chaos run ---------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _were(n: int) -> str:
    return "was" if n == 1 else "were"


ERROR_MARGIN = 1.0  # seconds after a process is back during which an error is still its fault's


def _errors_by_fault(chaos: ChaosData) -> str:
    """Which fault each error came during: sent between its start and shortly after it ended."""
    during: Counter[str] = Counter()
    for attempt in (a for a in chaos.attempts if not a.ok):
        fault = next((f for f in chaos.faults if f.at <= attempt.sent <= f.back + ERROR_MARGIN), None)
        if fault is None:
            during["no fault"] += 1
        else:
            role = "the leader" if fault.was_leader else "not the leader"
            during[f"the {fault.kind} of {fault.target} ({role}) at {fault.at:.1f} s"] += 1
    parts = [f"{n} during {what}" if what != "no fault" else f"{n} with no fault under way"
             for what, n in during.most_common()]
    in_leader_faults = sum(n for what, n in during.items() if "(the leader)" in what)
    return (f"Of these errors, {', '.join(parts)}; {in_leader_faults} came during a fault of the leader "
            f"(counting up to {ERROR_MARGIN:g} s after the process was back).")


def chaos_observations(chaos: ChaosData) -> list[str]:
    faults, leader = len(chaos.faults), sum(1 for f in chaos.faults if f.was_leader)
    kinds = Counter(f.kind for f in chaos.faults)
    failed = Counter(a.outcome for a in chaos.attempts if not a.ok)
    how = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    head = f"During {faults} faults ({how}; {leader} of them of the leader)" if faults else "With no fault injected"
    total = len(chaos.attempts)
    if failed:
        listed = ", ".join(f"{n} {outcome!r}" for outcome, n in failed.most_common())
        # A 4xx is a definite refusal and a 503 a definite "not executed"; anything else (504,
        # no answer) left the trade in doubt, to be settled by a retry under its key.
        refused = sum(n for outcome, n in failed.items() if outcome[:1] == "4")
        unavailable = sum(n for outcome, n in failed.items() if outcome.startswith("503"))
        doubtful = sum(failed.values()) - refused - unavailable
        after = [f"{_count(doubtful, 'answer')} left the trade in doubt (a retry under the same "
                 "Idempotency-Key settles it)"] if doubtful else []
        after += [f"{_count(unavailable, 'answer')} {'was a 503' if unavailable == 1 else 'were 503s'}: "
                  "nothing executed"] if unavailable else []
        after += [f"{_count(refused, 'answer')} {_were(refused)} definite refusals (4xx)"] if refused else []
        out = [f"{head} the clients saw {_count(sum(failed.values()), 'error')} in {total} POST /orders attempts: "
               f"{listed}; " + " and ".join(after) + "."]
        out.append(_errors_by_fault(chaos))
    else:
        out = [f"{head} the clients saw no error in {total} POST /orders attempts."]
    measured = [f for f in chaos.failovers if f is not None]
    if measured:
        out.append(f"After a fault of the leader the next successful trade came within {_seconds(percentile(measured, 50))}"
                   f" (p50), {_seconds(percentile(measured, 99))} (p99); the worst failover was "
                   f"{_seconds(max(measured))}.")
    if len(measured) < len(chaos.failovers):
        out.append(f"{len(chaos.failovers) - len(measured)} leader faults saw no later successful trade.")
    if not chaos.failovers:
        out.append("No fault hit the leader, so no failover was measured.")
    by_name = {c.name: c for c in chaos.invariants}
    i5 = by_name.get("I5")
    if i5 is None:
        out.append("Whether all replica logs ended identical was not checked (no invariant I5).")
    else:
        out.append(f"All replica logs ended identical: {'yes' if i5.passed else 'no'} (invariant I5"
                   f"{'' if i5.passed else ': ' + i5.detail}).")
    broken = [c.name for c in chaos.invariants if not c.passed]
    if chaos.invariants:
        out.append("Every invariant held (" + ", ".join(by_name) + ")." if not broken
                   else f"Invariants failed: {', '.join(broken)}.")
    return out
