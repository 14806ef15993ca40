"""How the bench reads bench/call_floor.py's answer, whatever the script does (no processes)."""

import subprocess

import pytest

from bench import call_floor
from bench.result import CallFloor


def ran(monkeypatch, returncode: int = 0, stdout: str = "", stderr: str = "", raises: Exception | None = None):
    def fake(command, **kwargs):
        assert "--json" in command and kwargs["timeout"] > 0
        if raises is not None:
            raise raises
        return subprocess.CompletedProcess(command, returncode, stdout, stderr)

    monkeypatch.setattr(call_floor.subprocess, "run", fake)


def test_its_json_becomes_the_two_times(monkeypatch) -> None:
    ran(monkeypatch, stdout='{"direct": 0.0007, "hop": 0.00085}\n')
    assert call_floor.run(10, 1) == CallFloor(direct=0.0007, hop=0.00085)


@pytest.mark.parametrize("kwargs, why", [
    ({"raises": subprocess.TimeoutExpired("x", 300)}, "not measured: bench/call_floor.py took over 300 s"),
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
