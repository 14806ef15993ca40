"""The evaluation's figures (PNG, matplotlib's Agg backend) from a load folder and a chaos folder.

matplotlib is imported only here, and only when a figure is drawn, so the rest of bazaar works
without it (it is the `evaluate` extra). Each figure function takes the parsed inputs
(inputs.py) and a path, and draws one file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from bazaar.evaluation.inputs import TYPES, BenchData, CacheTimeline, ChaosData, LoadData

LATENCY = "latency_vs_p.png"
HIT_RATE = "hit_rate_vs_p.png"
LRU = "lru_timeline.png"
FAILOVER = "failover_timeline.png"
FIGURES = (LATENCY, HIT_RATE, LRU, FAILOVER)
BENCH_SCALE = "bench_scale.png"  # from the bench's JSON, when given
DPI = 120
MAX_TIMELINE_EVENTS = 400  # more cache events than this and the LRU timeline shows only the start
# Colour-blind-safe (Okabe-Ito) and told apart by marker and line too, so print in grey still works.
# "off" is drawn first and with bigger markers, so equal values still show both.
CACHE_STYLE = {"off": {"color": "#E69F00", "marker": "s", "markersize": 8},
               "on": {"color": "#0072B2", "marker": "o", "markersize": 5}}
REQUEST_LABEL = {"lookup": "lookup: GET /stocks/<name>", "trade": "trade: POST /orders",
                 "query": "query: GET /orders/<number>"}
INSTALL_HINT = "pip install 'bazaar[evaluate]'"

Say = Callable[[str], None]


class MissingMatplotlib(Exception):
    pass


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files only, no display needed)."""
    try:
        import matplotlib
    except ImportError:
        raise MissingMatplotlib(f"matplotlib is not installed; install it with {INSTALL_HINT}") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_all(load: LoadData, chaos: ChaosData | None, figdir: Path, say: Say,
             bench: BenchData | None = None) -> dict[str, Path]:
    """Draw every figure whose inputs exist; say why any other is skipped. Returns name -> path."""
    plt = pyplot()
    figdir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    cache_on = [r for r in load.runs if r.cache == "on" and r.hit_rate is not None]
    timeline = choose_timeline(load.timelines or [])
    # (figure, why it cannot be drawn or None, how to draw it)
    plan: list[tuple[str, str | None, Callable[[Path], None]]] = [
        (LATENCY, None, lambda path: latency_vs_p(plt, load, path)),
        (HIT_RATE, None if cache_on else "no cache-on run with a cache report in summary.json",
         lambda path: hit_rate_vs_p(plt, load, path)),
        (LRU, None if timeline else f"no cache events ({load.directory / 'cache-events.json'} missing or empty)",
         lambda path: lru_timeline(plt, timeline, load, path)),  # type: ignore[arg-type]
        (FAILOVER, None if chaos else "no chaos folder given (--chaos DIR)",
         lambda path: failover_timeline(plt, chaos, path)),  # type: ignore[arg-type]
        (BENCH_SCALE, None if bench else "no bench results given (--bench FILE)",
         lambda path: bench_scale(plt, bench, path)),  # type: ignore[arg-type]
    ]
    for name, missing, draw in plan:
        if missing:
            say(f"skipped {name}: {missing}")
            continue
        path = figdir / name
        draw(path)
        plt.close("all")
        written[name] = path
        say(f"wrote {path}")
    return written


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path, dpi=DPI)


# ---- latency and hit rate against p ------------------------------------------------------------


def latency_vs_p(plt: Any, load: LoadData, path: Path) -> None:
    fig, axes = plt.subplots(1, len(TYPES), figsize=(14, 4.8))
    ps = sorted({r.p for r in load.runs})
    handles: dict[str, Any] = {}
    for ax, kind in zip(axes, TYPES):
        drawn = False
        for cache, style in CACHE_STYLE.items():
            points = [(r.p, r.stats(kind)) for r in sorted(load.runs, key=lambda r: r.p) if r.cache == cache]
            points = [(p, s) for p, s in points if s is not None]
            if not points:
                continue
            drawn = True
            xs = [p for p, _ in points]
            (p50,) = ax.plot(xs, [s.p50_ms for _, s in points], linestyle="-", linewidth=2, **style)
            (p95,) = ax.plot(xs, [s.p95_ms for _, s in points], linestyle="--", linewidth=1.3,
                             markerfacecolor="white", **style)
            handles.setdefault(f"cache {cache}: p50", p50)
            handles.setdefault(f"cache {cache}: p95", p95)
        ax.set_title(REQUEST_LABEL[kind])
        ax.set_xlabel("trade probability p")
        ax.set_ylabel("latency (ms)")
        ax.set_xticks(ps)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if not drawn:
            ax.text(0.5, 0.5, "no requests of this type", transform=ax.transAxes, ha="center", color="grey")
    fig.suptitle("Latency against trade probability p, cache on and off (p50 solid, p95 dashed)")
    order = [k for k in ("cache on: p50", "cache on: p95", "cache off: p50", "cache off: p95") if k in handles]
    fig.legend([handles[k] for k in order], order, loc="lower center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    _save(fig, path)


def hit_rate_vs_p(plt: Any, load: LoadData, path: Path) -> None:
    runs = sorted((r for r in load.runs if r.cache == "on" and r.hit_rate is not None), key=lambda r: r.p)
    xs = [r.p for r in runs]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    bars = ax.twinx()
    width = min((b - a for a, b in zip(xs, xs[1:])), default=0.2) * 0.18
    evictions = [int((r.cache_report or {}).get("evictions") or 0) for r in runs]
    bars.bar([x - width / 2 for x in xs], evictions, width, color="#999999", label="evictions (LRU full)")
    invalidations = _invalidations_by_p(load)
    if invalidations:
        bars.bar([x + width / 2 for x in xs], [invalidations.get(x, 0) for x in xs], width, color="#CC79A7",
                 label="invalidations (after a trade)")
    bars.set_ylabel("events in the run (count)")
    (line,) = ax.plot(xs, [r.hit_rate * 100 for r in runs], linewidth=2.2, **CACHE_STYLE["on"],  # type: ignore[operator]
                      label="hit rate")
    for r in runs:
        ax.annotate(f"{r.hit_rate * 100:.0f}%", (r.p, r.hit_rate * 100), textcoords="offset points",  # type: ignore[operator]
                    xytext=(0, 8), ha="center", color=CACHE_STYLE["on"]["color"])
    ax.set_zorder(bars.get_zorder() + 1)  # the line over the bars
    ax.patch.set_visible(False)
    ax.set_ylim(0, 105)
    ax.set_xticks(xs)
    ax.set_xlabel("trade probability p")
    ax.set_ylabel("cache hit rate (% of lookups)")
    ax.grid(alpha=0.3)
    bar_handles, bar_labels = bars.get_legend_handles_labels()
    ax.legend([line, *bar_handles], ["hit rate", *bar_labels], loc="upper center", bbox_to_anchor=(0.5, -0.14),
              ncol=3, frameon=False)
    ax.set_title("Stock cache hit rate against trade probability p (cache on)")
    fig.tight_layout()
    _save(fig, path)


def _invalidations_by_p(load: LoadData) -> dict[float, int]:
    return {t.p: sum(1 for e in t.events if e.kind == "invalidate") for t in load.timelines or []}


# ---- what the LRU cache holds over time ----------------------------------------------------------


def choose_timeline(timelines: list[CacheTimeline]) -> CacheTimeline | None:
    """The run to show: the middle p among runs with both evictions and invalidations (else among
    runs with any event), so the figure shows both ways an entry leaves the cache."""
    with_events = [t for t in timelines if t.events]
    both = [t for t in with_events if {"evict", "invalidate"} <= {e.kind for e in t.events}]
    pool = sorted(both or with_events, key=lambda t: t.p)
    return pool[len(pool) // 2] if pool else None


def cached_intervals(timeline: CacheTimeline, end: float) -> dict[str, list[tuple[float, float]]]:
    """name -> [(from, to)] while it was cached, from the names at the start and the events."""
    since = {name: 0.0 for name in timeline.names_at_start}
    out: dict[str, list[tuple[float, float]]] = {}
    for e in sorted(timeline.events, key=lambda e: e.t):
        if e.kind == "insert":
            since.setdefault(e.name, e.t)
        elif e.name in since:
            out.setdefault(e.name, []).append((since.pop(e.name), e.t))
    for name, start in since.items():
        out.setdefault(name, []).append((start, end))
    return out


def lru_timeline(plt: Any, timeline: CacheTimeline, load: LoadData, path: Path) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from bazaar.tools.client import LOOKUP_NAMES

    events = sorted(timeline.events, key=lambda e: e.t)
    run = load.run("on", timeline.p)
    run_end = max([run.duration_s if run else 0.0, *(e.t for e in events)])
    end = events[MAX_TIMELINE_EVENTS - 1].t if len(events) > MAX_TIMELINE_EVENTS else run_end
    intervals = cached_intervals(timeline, end)
    seen = set(intervals) | {e.name for e in events}
    names = [n for n in LOOKUP_NAMES if n in seen] + sorted(seen - set(LOOKUP_NAMES))
    row = {name: i for i, name in enumerate(names)}
    fig, ax = plt.subplots(figsize=(12, max(3.5, 0.42 * len(names) + 1.8)))
    for name, spans in intervals.items():
        shown = [(a, min(b, end) - a) for a, b in spans if a < end]
        ax.broken_barh(shown, (row[name] - 0.3, 0.6), color="#56B4E9")
    marks = {"evict": ("x", "#D55E00", "evicted (least recently used)"),
             "invalidate": ("v", "#CC79A7", "invalidated (a trade changed it)")}
    for kind, (marker, color, _) in marks.items():
        hits = [(e.t, row[e.name]) for e in events if e.kind == kind and e.t <= end]
        if hits:
            ax.scatter(*zip(*hits), marker=marker, color=color, s=36, zorder=3, linewidths=1.5)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.invert_yaxis()
    ax.set_xlim(min([0.0, *(e.t for e in events)]), end)
    ax.set_xlabel("time since the run started (s)")
    ax.set_ylabel("stock")
    ax.grid(axis="x", alpha=0.3)
    capacity = f", capacity {timeline.capacity}" if timeline.capacity else ""
    shown = "" if end >= run_end else f"; first {end:.2f} s of {run_end:.2f} s shown"
    ax.set_title(f"What the front end's LRU cache holds, cache-on run at p={timeline.p:g}{capacity}{shown}")
    legend = [Patch(color="#56B4E9", label="cached")]
    legend += [Line2D([], [], linestyle="", marker=m, color=c, label=label, markersize=7)
               for m, c, label in marks.values()]
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False)
    fig.tight_layout()
    _save(fig, path)


# ---- the chaos run ------------------------------------------------------------------------------------


def outcome_group(outcome: str) -> str:
    if outcome in ("ok", "200 ok"):
        return "ok"
    if outcome.startswith("503"):
        return "503 (service unavailable)"
    if outcome.startswith("504"):
        return "504 (outcome unknown)"
    if outcome in ("timeout", "connection error"):
        return outcome
    return "other error"


OUTCOME_STYLE = {
    "ok": {"color": "#0072B2", "marker": ".", "s": 6, "alpha": 0.35},
    "503 (service unavailable)": {"color": "#E69F00", "marker": "^", "s": 36},
    "504 (outcome unknown)": {"color": "#CC79A7", "marker": "v", "s": 36},
    "timeout": {"color": "#D55E00", "marker": "x", "s": 40},
    "connection error": {"color": "#009E73", "marker": "+", "s": 50},
    "other error": {"color": "black", "marker": "D", "s": 30},
}


def failover_timeline(plt: Any, chaos: ChaosData, path: Path) -> None:
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(14, 5.5))
    ax.set_yscale("log")
    groups: dict[str, list[tuple[float, float]]] = {}
    for a in chaos.attempts:
        groups.setdefault(outcome_group(a.outcome), []).append((a.sent, max(a.latency_ms, 0.01)))
    handles = []
    for group, style in OUTCOME_STYLE.items():
        points = groups.get(group)
        if points:
            handles.append(ax.scatter(*zip(*points), label=f"{group} ({len(points)})", zorder=3, **style))
    failovers = iter(chaos.failovers)
    for fault in chaos.faults:
        color = "#D55E00" if fault.was_leader else "#999999"
        ax.axvspan(fault.at, max(fault.back, fault.at + 0.05), color=color, alpha=0.22 if fault.was_leader else 0.18,
                   zorder=1)
        label = f"{fault.kind} {fault.target}"
        if fault.was_leader:
            took = next(failovers, None)
            label += " (leader)" + ("" if took is None else f", failover {took:.2f} s")
        ax.text(fault.at, 0.98, label, transform=ax.get_xaxis_transform(), rotation=90, va="top", ha="right",
                fontsize=7.5, color="#333333", bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1})
    end = max([chaos.duration, *(a.done for a in chaos.attempts)])
    ax.set_xlim(0, end)
    ax.set_xlabel("time since the run started (s); each point is one POST /orders attempt, at its send time")
    ax.set_ylabel("latency (ms, log scale)")
    ax.grid(alpha=0.3, which="both", axis="y")
    handles += [Patch(color="#D55E00", alpha=0.35, label="fault of the leader (until it was back)"),
                Patch(color="#999999", alpha=0.3, label="fault of another process")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4, frameon=False)
    seed = f"seed {chaos.seed}, " if chaos.seed is not None else ""
    measured = [f for f in chaos.failovers if f is not None]
    worst = f"; worst failover {max(measured):.2f} s" if measured else ""
    ax.set_title(f"Chaos run ({seed}{chaos.duration:g} s): trade latency while processes are killed (kill) "
                 f"and frozen (stop){worst}")
    fig.tight_layout()
    _save(fig, path)


__all__ = ["FIGURES", "MissingMatplotlib", "plot_all", "choose_timeline", "cached_intervals"]


# ---- the bench's scale curves ------------------------------------------------------------------


def bench_scale(plt: Any, bench: BenchData, path: Path) -> None:
    """Trades/s and p99 against connections, each beside the bare Klein POST route; trades/s
    against history, beside the empty cluster measured in the same turns."""
    fig, (rate, p99, history) = plt.subplots(1, 3, figsize=(15, 4.6))
    ours, reference = CACHE_STYLE["on"], CACHE_STYLE["off"]
    xs = [p.at for p in bench.connections]
    for ax, value, unit in ((rate, "per_second", "requests/s"), (p99, "p99", "p99 latency (ms)")):
        scale = 1000.0 if value == "p99" else 1.0
        for style, label, field in ((reference, "bare Klein POST /orders", f"reference_{value}"),
                                    (ours, "Bazaar trades (3 replicas, mutual TLS)", value)):
            points = [(p.at, getattr(p, field)) for p in bench.connections if getattr(p, field) is not None]
            ax.plot([x for x, _ in points], [y * scale for _, y in points], linewidth=2, label=label, **style)
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_xlabel("connections")
        ax.set_ylabel(unit)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    rate.set_title("throughput against connections")
    p99.set_title("p99 against connections")
    rate.legend(loc="best", frameon=False)
    positions = range(len(bench.history))
    width = 0.38
    history.bar([i - width / 2 for i in positions], [p.reference_per_second or 0 for p in bench.history], width,
                color=reference["color"], label="empty cluster, same turns")
    history.bar([i + width / 2 for i in positions], [p.per_second or 0 for p in bench.history], width,
                color=ours["color"], label="seeded history")
    history.set_xticks(list(positions), [f"{p.at:,}" for p in bench.history])
    history.set_xlabel("orders of history")
    history.set_ylabel("trades/s")
    history.set_title("trades against history")
    tallest = max((x for p in bench.history for x in (p.per_second, p.reference_per_second) if x), default=1.0)
    history.set_ylim(0, tallest * 1.3)  # room for the legend above the bars
    history.legend(loc="upper center", ncol=2, frameon=False)
    history.grid(alpha=0.3, axis="y")
    fig.suptitle("The bench's scale curves (tox -e bench)")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    _save(fig, path)
