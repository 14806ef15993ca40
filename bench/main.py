"""Run every measure once on this machine and print the table of targets (values, ratios to
baselines measured in the same run, verdicts), the scale tables, and where the trade path's
time goes (also written to --out, and the numbers as JSON to --json).

Started as `python bench/run.py [--quick] ...` (what `tox -e bench` runs)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from bazaar.tools.cluster import ClusterError
from bench import phases, report, table
from bench.load import Loader, LoadError
from bench.result import Results, Settings
from bench.seed import SeedError

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.md"


def _positive(kind: type) -> object:
    def parse(text: str) -> object:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return parse


def _connection_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(sorted({int(part) for part in text.split(",")}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not counts or counts[0] <= 0:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return counts


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 3 s per load, 10,000 orders of history (numbers are rough)")
    p.add_argument("--seconds", type=_positive(float), help="length of each load (default 10, --quick 3)")
    p.add_argument("--history", type=_positive(int),
                   help="the largest history seeded for the history, memory and catch-up measures; 10,000, "
                        "100,000 and 1,000,000 below it are measured too (default 100000, --quick 10000; "
                        "1000000 for the catch-up target, some 3 minutes more)")
    p.add_argument("--connections", type=_positive(int), default=16,
                   help="concurrent connections of the GET loads (default 16)")
    p.add_argument("--curve", type=_connection_counts, default=(1, 4, 16, 64, 256),
                   help="connections of the trade loads, comma-separated (default 1,4,16,64,256)")
    p.add_argument("--loader", choices=("auto", "wrk", "python"), default="auto",
                   help="auto: wrk when installed, else Python processes")
    p.add_argument("--no-profile", action="store_true", help="skip the py-spy profile of the trade path")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"also write the report here (default {DEFAULT_OUT})")
    p.add_argument("--json", type=Path, help="write the numbers here as JSON (default: --out with .json)")
    return p


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.node()}: {os.cpu_count()} cores, {model}, Python {platform.python_version()}, "
            f"load average at start {load_average()}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings(
        seconds=args.seconds or (3.0 if args.quick else 10.0),
        connections=args.connections,
        history=args.history or (10_000 if args.quick else 100_000),
        profile_seconds=0.0 if args.no_profile else (2.0 if args.quick else 5.0),
        curve=args.curve,
        floor_calls=500 if args.quick else 2000,
        floor_turns=2 if args.quick else 3,
    )
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {text}", flush=True)

    results = Results()
    failed: str | None = None
    with tempfile.TemporaryDirectory(prefix="bazaar-bench-") as tmp:
        root = Path(tmp)
        loader = Loader(root, prefer_wrk=args.loader != "python")
        if args.loader == "wrk" and loader.wrk is None:
            print("bench: error: --loader wrk, but wrk is not installed (apt-get install wrk)", file=sys.stderr)
            return 2
        where = machine()
        say(f"machine: {where}")
        say(f"loader: {loader.name}")
        try:
            phases.internal_call(settings, results, say)
            phases.empty_cluster(root / "empty", loader, settings, results, say)
            phases.plaintext_trades(root / "plaintext", loader, settings, results, say)
            phases.histories(root / "history", loader, settings, results, say)
        except (ClusterError, LoadError, SeedError) as e:  # a BenchError is a ClusterError
            # What was measured before is still reported, under the error.
            failed = f"bench: error: {e}"
            kept = keep_logs(root, args.out.with_name(f"{args.out.stem}-logs"))
            if kept is not None:
                failed += f" (every process's log is kept in {kept})"
            print(failed, file=sys.stderr)
    elapsed = time.monotonic() - started
    lines = report_lines(args.quick, settings, where, loader.name, results, elapsed)
    if failed:
        lines[1:1] = ["", f"**The run stopped early; what follows is what it measured before.** {failed}"]
    text = "\n".join(lines) + "\n"
    print()
    print(text, end="")
    json_path = args.json or args.out.with_suffix(".json")
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report.as_json(results, settings), indent=1) + "\n")
        say(f"written to {args.out} and {json_path}")
    except OSError as e:
        print(f"bench: could not write {args.out} or {json_path}: {e}", file=sys.stderr)
    return 1 if failed else 0


def keep_logs(root: Path, where: Path) -> Path | None:
    """Copy the run's process logs (every *.log under `root`, in the same folders) to `where`,
    replacing what an earlier run kept there. None when they could not be copied."""
    def not_logs(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if not n.endswith(".log") and not (Path(folder) / n).is_dir()]

    try:
        shutil.rmtree(where, ignore_errors=True)
        shutil.copytree(root, where, ignore=not_logs)
    except OSError as e:
        print(f"bench: could not keep the logs in {where}: {e}", file=sys.stderr)
        return None
    return where


def report_lines(quick: bool, settings: Settings, where: str, loader: str, results: Results,
                 elapsed: float) -> list[str]:
    histories = ", ".join(f"{h:,}" for h in settings.histories)
    lines = [
        f"# Bazaar bench ({'quick' if quick else 'full'}: {settings.seconds:g} s per load, GET loads at "
        f"{settings.connections} connections, histories {histories}; {elapsed / 60:.1f} minutes)",
        "",
        f"machine: {where}; at the end {load_average()}",
        "",
        "## Targets (each Bazaar figure beside its baseline, measured in turns in this run)",
        "",
        *table.render(report.rows(results, settings)),
        "",
        "## Scale",
        "",
        *report.scale_lines(results, phases.TRADE_CONNECTIONS),
        "",
        "## Notes",
        "",
        *[f"- {n}" for n in report.notes(results, loader)],
    ]
    if results.profiles:
        lines += ["", "## Where the trade path's time goes: each process's reactor thread (py-spy --idle, wall clock)",
                  "", *report.profile_lines(results.profiles)]
    return lines
