"""`python bench/call_floor.py`: the cost of one internal call, between two real processes."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

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
    times = {kind: int(us) for kind, us in re.findall(r"(handler thread|reactor and back):\s+(\d+) us", done.stdout)}
    assert set(times) == {"handler thread", "reactor and back"}, done.stdout
    assert all(0 < us < 1_000_000 for us in times.values()), times
    assert servers() == []


def test_a_count_below_one_is_refused_before_anything_starts(tmp_path) -> None:
    done = run("--calls", "0", cwd=tmp_path)
    assert done.returncode == 2 and "--calls and --turns must be at least 1" in done.stderr
    assert done.stdout == "" and servers() == []
