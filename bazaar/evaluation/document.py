"""docs/evaluation.md from a load folder, a chaos folder and the figures drawn from them.

The page says which machine made the numbers and how, shows the figures, the tables of numbers
and observations.py's sentences. Everything on it comes from the data, so regenerating it (tox -e
evaluate) keeps it true. `render` returns the text; `write` puts it in a file.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

from bazaar.evaluation import machine, observations, plot
from bazaar.evaluation.inputs import TYPES, BenchData, ChaosData, LoadData
from bazaar.evaluation.stats import percentile
from bazaar.tables import table

FIGURE_TEXT = {
    plot.LATENCY: "Latency (p50 and p95) against the trade probability p, per request type, cache on and off.",
    plot.HIT_RATE: "The cache's hit rate against p, with the run's evictions and invalidations.",
    plot.LRU: "Which stocks the LRU cache held over one cache-on run; evictions and invalidations marked.",
    plot.FAILOVER: "Every POST /orders attempt of the chaos run over time; faults shaded, the leader's in red.",
    plot.BENCH_SCALE: "The bench's trades against connections (beside the bare Klein POST route) and against "
                      "history (beside an empty cluster).",
}


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    return table(header, rows, markdown=True) + [""]


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _bullets(sentences: Iterable[str]) -> list[str]:
    return [f"- {s}" for s in sentences] + [""]


def _figure(name: str, figures: dict[str, Path], doc_dir: Path, why_missing: str) -> list[str]:
    path = figures.get(name)
    if path is None:
        return [f"*(figure `{name}` not drawn: {why_missing})*", ""]
    link = Path(os.path.relpath(path, doc_dir)).as_posix()
    return [f"![{FIGURE_TEXT[name]}]({link})", "", f"*{FIGURE_TEXT[name]}*", ""]


# ---- sections ---------------------------------------------------------------------------------------


def machine_section(rows: Sequence[tuple[str, str]]) -> list[str]:
    return ["## The machine", "", "Measured on (the machine that also drew this page):", "",
            *_table(("", ""), rows)]


def load_command(load: LoadData) -> str:
    recorded = load.settings.get("command")
    if isinstance(recorded, str) and recorded:
        return recorded
    modes = set(load.settings.get("cache") or {r.cache for r in load.runs})
    return f"bazaar load --cache {'both' if modes == {'on', 'off'} else ''.join(modes)} --out LOAD_DIR"


def chaos_command(chaos: ChaosData) -> str:
    parts = ["bazaar chaos", f"--duration {chaos.duration:g}"]
    if "clients" in chaos.extra:
        parts.append(f"--clients {chaos.extra['clients']}")
    if "fault_every" in chaos.extra:
        parts.append(f"--fault-every {chaos.extra['fault_every']:g}")
    if chaos.seed is not None:
        parts.append(f"--seed {chaos.seed}")
    return " ".join(parts + ["--out CHAOS_DIR"])


def method_section(load: LoadData, chaos: ChaosData | None, doc: Path, bench: BenchData | None = None) -> list[str]:
    s = load.settings
    lines = ["## How the data was made", "",
             "The numbers, the figures and this page came from these commands (LOAD_DIR, CHAOS_DIR and "
             "BENCH_DIR are scratch folders; `tox -e evaluate` runs the project's standard set and rewrites "
             "the page):", "",
             "```", load_command(load)]
    if chaos:
        lines.append(chaos_command(chaos))
    if bench:
        lines.append(f"python bench/run.py --json BENCH_DIR/{bench.path.name}")
    plot_line = ("bazaar plot LOAD_DIR" + (" --chaos CHAOS_DIR" if chaos else "")
                 + (f" --bench BENCH_DIR/{bench.path.name}" if bench else "") + f" --doc {doc.as_posix()}")
    lines += [plot_line, "```", ""]
    ps = ", ".join(f"{p:g}" for p in s.get("p") or sorted({r.p for r in load.runs}))
    target = f"the front end at {s['url']}" if s.get("url") else "a throwaway local cluster of its own"
    modes = " and ".join(s.get("cache") or sorted({r.cache for r in load.runs}))
    others = [f"{k} = {json.dumps(v)}" for k, v in sorted(s.items()) if k not in ("clients", "p", "cache", "url")]
    lines += [f"The load run's settings, as `bazaar load` recorded them: {s.get('clients', '?')} concurrent clients, "
              f"trade probabilities p in {{{ps}}}, the front end's cache {modes}, against {target}"
              + (f"; {', '.join(others)}" if others else "") + ".", ""]
    if chaos:
        lines += [f"The chaos run traded for {chaos.duration:g} s while killing or freezing its processes, one "
                  "or two at a time (see [chaos.md](chaos.md)); failover is the time from a fault of the "
                  "leader to the end of the first successful trade sent after it.", ""]
    lines += [f"Latencies closer than {observations.NOISE:.0%} (hit rates closer than "
              f"{observations.HIT_RATE_NOISE * 100:.0f} points) are called within noise below. Every "
              "percentile (p50, p95, p99; here, in `bazaar load` and in `bazaar chaos`) is numpy.percentile, "
              "linear interpolation between the closest ranks.", ""]
    return lines


def latency_table(load: LoadData) -> list[str]:
    rows = []
    for r in sorted(load.runs, key=lambda r: (r.cache != "on", r.p)):
        for kind in TYPES:
            s = r.stats(kind)
            if s:
                rows.append((r.cache, f"{r.p:g}", kind, s.count, s.errors, _num(s.p50_ms), _num(s.p95_ms),
                             _num(s.p99_ms), _num(s.mean_ms), _num(s.max_ms)))
    return _table(("cache", "p", "type", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "mean ms", "max ms"),
                  rows)


def runs_table(load: LoadData) -> list[str]:
    rows = []
    for r in sorted(load.runs, key=lambda r: (r.cache != "on", r.p)):
        c = r.cache_report or {}
        rows.append((r.cache, f"{r.p:g}", r.requests, _num(r.duration_s), f"{r.throughput_rps:.0f}", r.errors,
                     "-" if r.hit_rate is None else f"{r.hit_rate * 100:.1f}%", c.get("hits", "-"),
                     c.get("misses", "-"), c.get("evictions", "-")))
    return _table(("cache", "p", "requests", "seconds", "requests/s", "errors", "hit rate", "hits", "misses",
                   "evictions"), rows)


def chaos_tables(chaos: ChaosData) -> list[str]:
    lines = []
    orders = chaos.extra.get("orders")
    if isinstance(orders, dict):
        lines += ["Orders: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in orders.items()) + ".", ""]
    outcomes = Counter(a.outcome for a in chaos.attempts)
    latencies = [a.latency_ms for a in chaos.attempts]
    lines += _table(("POST /orders attempts", "count"), sorted(outcomes.items(), key=lambda kv: -kv[1]))
    if latencies:
        lines += [f"Attempt latency: p50 {_num(percentile(latencies, 50), 1)} ms, "
                  f"p99 {_num(percentile(latencies, 99), 1)} ms, max {_num(max(latencies), 1)} ms.", ""]
    failovers = iter(chaos.failovers)
    rows = []
    for f in chaos.faults:
        took = next(failovers, None) if f.was_leader else None
        rows.append((_num(f.at, 1), f.kind, f.target, "yes" if f.was_leader else "no", _num(f.back - f.at),
                     _num(took) if f.was_leader else ""))
    lines += _table(("at s", "fault", "target", "leader", "back after s", "failover s"), rows)
    measured = [f for f in chaos.failovers if f is not None]
    if measured:
        lines += [f"Failover over {len(chaos.failovers)} leader faults: p50 {_num(percentile(measured, 50))} s, "
                  f"p99 {_num(percentile(measured, 99))} s, max {_num(max(measured))} s.", ""]
    lines += _table(("invariant", "result", "detail"),
                    ((c.name, "PASS" if c.passed else "FAIL", c.detail) for c in chaos.invariants))
    return lines


def bench_section(bench: BenchData, figures: dict[str, Path], doc_dir: Path) -> list[str]:
    def ratio(a: float | None, b: float | None) -> str:
        return "-" if a is None or not b else f"{a / b:.2f}×"

    def rate(x: float | None) -> str:
        return "-" if x is None else f"{x:,.0f}"

    def ms(x: float | None) -> str:
        return "-" if x is None else f"{x * 1000:.1f}"

    lines = ["## Scale (the bench)", "",
             f"From `{bench.path.name}`, the JSON of `python bench/run.py` (`tox -e bench`; its report has the "
             "targets and their verdicts). Each Bazaar load ran in turns with its reference's.", ""]
    lines += _figure(plot.BENCH_SCALE, figures, doc_dir, "its input is missing")
    lines += _table(("connections", "trades/s", "bare POST/s", "trades / bare", "trades p99 (ms)", "bare p99 (ms)"),
                    ((p.at, rate(p.per_second), rate(p.reference_per_second),
                      ratio(p.per_second, p.reference_per_second), ms(p.p99), ms(p.reference_p99))
                     for p in bench.connections))
    if bench.history:
        lines += _table(("orders of history", "trades/s", "empty cluster, same turns", "history / empty"),
                        ((f"{p.at:,}", rate(p.per_second), rate(p.reference_per_second),
                          ratio(p.per_second, p.reference_per_second)) for p in bench.history))
    return lines


# ---- the page -------------------------------------------------------------------------------------------


def render(load: LoadData, chaos: ChaosData | None, figures: dict[str, Path], doc: Path,
           machine_rows: Sequence[tuple[str, str]] | None = None, bench: BenchData | None = None) -> str:
    doc_dir = doc.parent
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Evaluation", "",
             f"*Generated by `bazaar plot` on {stamp} from measured data; do not edit by hand, run "
             "`tox -e evaluate` instead.*", ""]
    lines += machine_section(machine_rows if machine_rows is not None else machine.describe())
    lines += method_section(load, chaos, doc, bench)
    lines += ["## Observations", "", "### Load, cache on and off", ""]
    lines += _bullets(observations.load_observations(load))
    if chaos:
        lines += ["### Chaos", ""] + _bullets(observations.chaos_observations(chaos))
    no_figure = "its input is missing"
    lines += ["## Latency", ""]
    lines += _figure(plot.LATENCY, figures, doc_dir, no_figure)
    lines += latency_table(load)
    lines += ["## The cache", ""]
    lines += _figure(plot.HIT_RATE, figures, doc_dir, "no cache-on run reported its cache")
    lines += _figure(plot.LRU, figures, doc_dir, "no cache events were recorded")
    lines += runs_table(load)
    lines += ["## Chaos: failover", ""]
    if chaos:
        lines += _figure(plot.FAILOVER, figures, doc_dir, no_figure)
        lines += chaos_tables(chaos)
    else:
        lines += ["No chaos run was given (`--chaos DIR`).", ""]
    if bench:
        lines += bench_section(bench, figures, doc_dir)
    return "\n".join(lines).rstrip("\n") + "\n"


def write(load: LoadData, chaos: ChaosData | None, figures: dict[str, Path], doc: Path,
          bench: BenchData | None = None) -> Path:
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render(load, chaos, figures, doc, bench=bench))
    return doc
