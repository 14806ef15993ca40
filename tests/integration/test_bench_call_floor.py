"""`python bench/call_floor.py`: the cost of one internal call, between two real processes."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench import call_floor
from bench.result import CallFloor
from tests.integration.cluster import wait_for

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "call_floor.py"


def start(tmp_path: Path, *args: str) -> subprocess.Popen:
    """The script, making its files (and so its server's) under `tmp_path`."""
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, env={**os.environ, "TMPDIR": str(tmp_path)})


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    return process.returncode, out, err


def servers(tmp_path: Path) -> list[int]:
    """Pids of this test's call_floor servers still running (their folder is under `tmp_path`)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue  # it ended meanwhile
        if b"--serve" in words and any(w.startswith(str(tmp_path).encode()) for w in words):
            found.append(int(cmdline.parent.name))
    return found


@pytest.fixture
def no_server_left(tmp_path):
    yield
    left = servers(tmp_path)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], "a call_floor server outlived its client"


def test_it_times_both_kinds_of_call(tmp_path, no_server_left) -> None:
    code, out, err = finish(start(tmp_path, "--calls", "50", "--turns", "2"))
    assert code == 0, out + err
    times = {kind: float(us) for kind, us in re.findall(r"(handler thread|reactor and back):\s+([\d.]+) µs", out)}
    assert set(times) == {"handler thread", "reactor and back"}, out
    assert all(0 < us < 1_000_000 for us in times.values()), times


def test_the_bench_reads_its_numbers_from_a_process_of_its_own(tmp_path, monkeypatch, no_server_left) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    measured = call_floor.run(calls=20, turns=1)
    assert isinstance(measured, CallFloor), measured
    assert 0 < measured.direct < 1 and 0 < measured.hop < 1


def test_stopped_by_a_signal_it_says_so_and_its_server_and_files_end(tmp_path, no_server_left) -> None:
    client = start(tmp_path, "--calls", "100000", "--json")
    try:
        wait_for(lambda: servers(tmp_path), deadline=30, what="the server to start")
        client.send_signal(signal.SIGTERM)
        code, out, err = finish(client)
    finally:
        client.kill()
    assert (code, out) == (130, "") and "call_floor: interrupted" in err
    assert list(tmp_path.glob("bazaar-call-floor-*")) == []  # its certificates went with it


def test_a_killed_client_takes_its_server_with_it(tmp_path, no_server_left) -> None:
    client = start(tmp_path, "--calls", "100000")
    try:
        wait_for(lambda: servers(tmp_path), deadline=30, what="the server to start")
    finally:
        client.kill()
        client.communicate()
    wait_for(lambda: not servers(tmp_path), deadline=10, what="the server to end with its input")


@pytest.mark.parametrize("args, message", [
    (("--calls", "0"), "argument --calls: 0 is not between 1 and 100,000"),
    (("--turns", "21"), "argument --turns: 21 is not between 1 and 20"),
    (("--calls", "many"), "argument --calls: 'many' is not a whole number"),
])
def test_a_bad_count_is_refused_before_anything_starts(tmp_path, args, message) -> None:
    code, out, err = finish(start(tmp_path, *args))
    assert (code, out) == (2, "") and message in err
    assert list(tmp_path.iterdir()) == []  # no certificates made, so no server started
