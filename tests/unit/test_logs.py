"""Each service's log: JSON lines carrying the event's fields, a level filter, and the
observer the plugins hand twistd."""

from __future__ import annotations

import io
import json

import pytest
from twisted.application.service import Application
from twisted.logger import ILogObserver, Logger
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.scripts.twistd import ServerOptions

from bazaar.plugins import logs
from bazaar.tools.cluster import make_certificates
from bazaar.config import load_config


def emit(observer, level: str, text: str, **fields) -> None:
    getattr(Logger(namespace="bazaar.test", observer=observer), level)(text, **fields)


def test_a_json_line_carries_the_message_level_namespace_and_fields():
    out = io.StringIO()
    emit(logs.observer(out, "json", "info"), "warn", "leader {id} failed: {error}", id=3, error="timeout",
         address=object())
    record = json.loads(out.getvalue())
    assert record["message"] == "leader 3 failed: timeout"
    assert (record["level"], record["namespace"], record["id"], record["error"]) == ("warn", "bazaar.test", 3, "timeout")
    assert record["address"].startswith("<object object")  # what JSON cannot hold, as its repr
    assert record["time"].endswith("+00:00")


def test_a_failure_carries_its_error_and_traceback():
    out = io.StringIO()
    try:
        1 / 0
    except ZeroDivisionError:
        failure = Failure()
    Logger(namespace="bazaar.test", observer=logs.observer(out, "json", "info")).failure("it broke", failure)
    record = json.loads(out.getvalue())
    assert record["level"] == "critical" and record["error"] == "division by zero"
    assert "ZeroDivisionError" in record["traceback"]


@pytest.mark.parametrize("form", logs.FORMATS)
def test_events_below_the_level_are_dropped(form):
    out = io.StringIO()
    observer = logs.observer(out, form, "warn")
    emit(observer, "info", "quiet")
    emit(observer, "debug", "quieter")
    emit(observer, "error", "loud")
    assert "quiet" not in out.getvalue() and "loud" in out.getvalue()
    assert out.getvalue().count("\n") == 1


@pytest.mark.parametrize("plugin", ["bazaar-catalog", "bazaar-frontend"])
def test_twistd_takes_the_plugins_observer_and_its_log_file(tmp_path, monkeypatch, plugin):
    monkeypatch.chdir(tmp_path)
    make_certificates(load_config(None), say=lambda _: None)
    options = ServerOptions()
    path = tmp_path / "service.log"
    options.parseOptions(["-n", "--logfile", str(path), plugin, "--log-format", "json", "--log-level", "warn"])
    application = Application("test")
    service = options.loadedPlugins[plugin].makeService(options.subOptions)
    service.setServiceParent(application)
    observer = application.getComponent(ILogObserver)
    emit(observer, "info", "dropped")
    emit(observer, "error", "kept {n}", n=1)
    lines = path.read_text().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["kept 1"]


def test_twistds_own_logger_option_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_certificates(load_config(None), say=lambda _: None)
    options = ServerOptions()
    options.parseOptions(["-n", "--logger", "twisted.logger.globalLogPublisher", "bazaar-catalog", "--log-format", "json"])
    application = Application("test")
    options.loadedPlugins["bazaar-catalog"].makeService(options.subOptions).setServiceParent(application)
    assert application.getComponent(ILogObserver, None) is None


@pytest.mark.parametrize("args, complaint", [
    (["--log-format", "xml"], "--log-format: expected one of text, json"),
    (["--log-level", "loud"], "--log-level: expected one of debug, info, warn, error, critical"),
])
def test_a_bad_log_option_is_a_usage_error(tmp_path, monkeypatch, args, complaint):
    from bazaar.plugins.catalog import Options

    monkeypatch.chdir(tmp_path)
    with pytest.raises(usage.UsageError, match=complaint):
        Options().parseOptions(args)


def strict(line: str) -> dict:
    """`line` parsed as strict JSON: NaN and Infinity are no JSON."""
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")
    return json.loads(line, parse_constant=refuse)


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_every_event_is_one_line_of_strict_json_whatever_its_fields_hold():
    out = io.StringIO()
    observer = logs.observer(out, "json", "info")
    looped: list = [1]
    looped.append(looped)
    emit(observer, "info", "lag {lag}", lag=float("nan"), rate=float("inf"), low=-float("inf"), id=3)
    emit(observer, "info", "by peer", counts={("10.0.0.1", 5): 2, "a": 1}, id=4)
    emit(observer, "info", "looped", items=looped, nested={"x": [float("nan")]}, id=5)
    emit(observer, "info", "hidden", thing=BadRepr(), id=6)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4, out.getvalue()
    records = [strict(line) for line in lines]
    assert [r["id"] for r in records] == [3, 4, 5, 6], "the fields JSON can hold are kept as they are"
    assert (records[0]["lag"], records[0]["rate"], records[0]["low"]) == ("nan", "inf", "-inf")
    assert records[0]["message"] == "lag nan"
    assert records[1]["counts"] == repr({("10.0.0.1", 5): 2, "a": 1})
    assert records[2]["items"] == "[1, [...]]" and records[2]["nested"] == "{'x': [nan]}"
    assert records[3]["thing"] == "<BadRepr whose repr failed>"
