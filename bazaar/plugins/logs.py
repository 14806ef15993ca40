"""Each service's log: text (twistd's own format) or one JSON object per line, filtered by
level (`--log-format`, `--log-level`, on every plugin).

twistd starts its log observer after makeService, taking an `ILogObserver` component of the
application when there is one: the plugin's root service sets it as it is added to the
application (`LoggedService`). The file is the one twistd would have written (`--logfile`,
stdout under `-n` without one, else twistd.log), reopened on SIGUSR1 as twistd does, for
logrotate. `--logger` and `--syslog` on twistd's own command line still win.
"""

from __future__ import annotations

import json
import signal
import sys
from datetime import datetime, timezone
from typing import IO, Any

from twisted.application.service import MultiService
from twisted.logger import (
    FilteringLogObserver, ILogObserver, LogLevel, LogLevelFilterPredicate, formatEvent, textFileLogObserver,
)
from twisted.python import logfile
from zope.interface import implementer

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warn", "error", "critical")

# What twisted.logger adds to every event; the rest are the event's own fields.
_OWN = ("log_format", "log_level", "log_namespace", "log_time", "log_source", "log_logger", "log_failure",
        "log_io", "log_system", "log_text", "log_flattened", "log_trace", "log_legacy", "log_id",
        "format", "message", "isError", "system", "time", "printed", "why")


@implementer(ILogObserver)
class JsonLinesObserver:
    """One JSON object per line, strict JSON, for every event: time (ISO 8601, UTC), level,
    namespace, the formatted message, the event's own fields (repr of what JSON cannot hold),
    and a failure's traceback."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def __call__(self, event: dict[str, Any]) -> None:
        level = event.get("log_level")
        record: dict[str, Any] = {
            "time": datetime.fromtimestamp(event.get("log_time") or 0, timezone.utc).isoformat(timespec="milliseconds"),
            "level": level.name if isinstance(level, type(LogLevel.info)) else "info",
            "namespace": event.get("log_namespace", "-"),
            "message": formatEvent(event),
        }
        for key, value in event.items():
            if key not in _OWN and not key.startswith("log_") and key not in record:
                record[key] = _plain(value)
        failure = event.get("log_failure")
        if failure is not None:
            record["error"] = failure.getErrorMessage()
            record["traceback"] = failure.getTraceback()
        self._out.write(_line(record) + "\n")
        self._out.flush()


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else _repr(value)


def _line(record: dict[str, Any]) -> str:
    """`record` as one line of strict JSON, whatever its fields hold: a field JSON cannot hold
    as it is (nan or infinity, which json would write as NaN and Infinity; a dict with keys
    other than str, a list that holds itself) is written as its repr instead, so that no
    event is lost to a field of its own."""
    try:
        return json.dumps(record, default=repr, allow_nan=False)
    except Exception:
        pass
    fixed: dict[str, Any] = {}
    for key, value in record.items():
        try:
            json.dumps(value, default=repr, allow_nan=False)
            fixed[key] = value
        except Exception:
            fixed[key] = _repr(value)
    return json.dumps(fixed, default=_repr, allow_nan=False)


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__} whose repr failed>"


def observer(out: IO[str], form: str, level: str) -> ILogObserver:
    """An observer writing `form` ("text" or "json") to `out`, dropping events below `level`."""
    base = JsonLinesObserver(out) if form == "json" else textFileLogObserver(out)
    return FilteringLogObserver(base, [LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level))])


class LoggedService(MultiService):
    """The plugin's root: sets the application's log observer as it joins the application."""

    def __init__(self, twistd: Any, form: str, level: str) -> None:
        """`twistd`: twistd's own options (the plugin options' parent), or None outside twistd."""
        super().__init__()
        self._twistd = twistd
        self._form = form
        self._level = level

    def setServiceParent(self, parent: Any) -> Any:
        set_component = getattr(parent, "setComponent", None)
        twistd = self._twistd
        if set_component is not None and twistd is not None and not (twistd.get("logger") or twistd.get("syslog")):
            set_component(ILogObserver, observer(_log_file(twistd), self._form, self._level))
        return super().setServiceParent(parent)


def _log_file(twistd: Any) -> IO[str]:
    """The file twistd would have logged to, as scripts/_twistd_unix.py chooses it."""
    name, foreground = twistd.get("logfile") or "", twistd.get("nodaemon")
    if name == "-" or (foreground and not name):
        return sys.stdout
    log = logfile.LogFile.fromFullPath(name or "twistd.log")

    def reopen(signal_number: int, frame: Any) -> None:
        from twisted.internet import reactor
        reactor.callFromThread(log.reopen)  # type: ignore[attr-defined]

    signal.signal(signal.SIGUSR1, reopen)
    return log  # type: ignore[return-value]
