"""How the bench reads bench/call_floor.py's answer, whatever the script does (no processes)."""

import subprocess

import pytest

from bench import call_floor
from bench.result import CallFloor


class FakeScript:
    """What subprocess.Popen gives `run`: a script that ends as told, or outlives its time."""

    def __init__(self, returncode: int, stdout: str, stderr: str, hangs: bool) -> None:
        self._result, self._hangs = (returncode, stdout, stderr), hangs
        self.returncode: int | None = None
        self.terminated = False

    def communicate(self, timeout: float):
        assert timeout > 0
        if self._hangs:
            raise subprocess.TimeoutExpired("call_floor.py", timeout)
        self.returncode = self._result[0]
        return self._result[1:]

    def poll(self):
        return self.returncode

    def terminate(self) -> None:
        self.terminated, self.returncode = True, -15

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode

    def kill(self) -> None:
        self.returncode = -9


def ran(monkeypatch, returncode: int = 0, stdout: str = "", stderr: str = "", hangs: bool = False) -> list:
    started: list[FakeScript] = []

    def popen(command, **kwargs):
        assert "--json" in command and kwargs["stdin"] == subprocess.DEVNULL
        started.append(FakeScript(returncode, stdout, stderr, hangs))
        return started[-1]

    monkeypatch.setattr(call_floor.subprocess, "Popen", popen)
    return started


def test_its_json_becomes_the_two_times(monkeypatch) -> None:
    ran(monkeypatch, stdout='{"direct": 0.0007, "hop": 0.00085}\n')
    assert call_floor.run(10, 1) == CallFloor(direct=0.0007, hop=0.00085)


@pytest.mark.parametrize("kwargs, why", [
    ({"returncode": 1, "stderr": "Traceback...\ncall_floor: the server exited with 1 before it listened\n"},
     "not measured: bench/call_floor.py failed (call_floor: the server exited with 1 before it listened)"),
    ({"returncode": 130}, "not measured: bench/call_floor.py failed (exit status 130)"),
    ({"stdout": "no json"}, "not measured: bench/call_floor.py printed 'no json'"),
    ({"stdout": '{"direct": 0.0007}'}, """not measured: bench/call_floor.py printed '{"direct": 0.0007}'"""),
    ({"stdout": '{"direct": Infinity, "hop": 0.001}'}, "not measured"),
    ({"stdout": '{"direct": 0, "hop": 0.001}'}, "not measured"),
])
def test_anything_else_is_why_it_was_not_measured(monkeypatch, kwargs, why) -> None:
    ran(monkeypatch, **kwargs)
    found = call_floor.run(10, 1)
    assert isinstance(found, str) and found.startswith(why), found


def test_a_script_past_its_time_is_stopped_so_that_it_removes_its_files(monkeypatch) -> None:
    started = ran(monkeypatch, hangs=True)
    assert call_floor.run(10, 1, timeout=300) == "not measured: bench/call_floor.py took over 300 s"
    assert started[0].terminated
