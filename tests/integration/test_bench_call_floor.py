"""`python bench/call_floor.py`: the cost of one internal call, between two real processes."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import call_floor
from bench.result import CallFloor

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "call_floor.py"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def servers() -> list[str]:
    """Command lines of call_floor servers still running."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue  # it ended meanwhile
        if any(w.endswith(b"call_floor.py") for w in words) and b"--serve" in words:
            found.append(b" ".join(words).decode(errors="replace"))
    return found


def test_it_times_both_kinds_of_call_and_stops_its_server(tmp_path) -> None:
    done = run("--calls", "50", "--turns", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    times = {kind: float(us) for kind, us in re.findall(r"(handler thread|reactor and back):\s+([\d.]+) µs", done.stdout)}
    assert set(times) == {"handler thread", "reactor and back"}, done.stdout
    assert all(0 < us < 1_000_000 for us in times.values()), times
    assert servers() == []


def test_the_bench_reads_its_numbers_from_a_process_of_its_own() -> None:
    measured = call_floor.run(calls=20, turns=1)
    assert isinstance(measured, CallFloor), measured
    assert 0 < measured.direct < 1 and 0 < measured.hop < 1
    assert servers() == []


def test_a_count_below_one_is_refused_before_anything_starts(tmp_path) -> None:
    done = run("--calls", "0", cwd=tmp_path)
    assert done.returncode == 2 and "--calls and --turns must be at least 1" in done.stderr
    assert done.stdout == "" and servers() == []
