"""wrk as the load generator: its command line, the Lua it runs, and the one line it prints.

Every script ends with the same Lua `done()`, which prints one machine-readable summary line
(exact counts and latency percentiles in microseconds) instead of wrk's rounded human report.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass

SUMMARY_TAG = "BENCH-SUMMARY"

# Numbers each wrk thread (its own Lua state) so request scripts can make unique keys.
_SUMMARY_LUA = r"""
local threads_made = 0
function setup(thread)
  threads_made = threads_made + 1
  thread:set("tid", threads_made)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "%s requests=%d duration_us=%d status_errors=%d connect=%d read=%d write=%d timeout=%d "
    .. "p50_us=%d p99_us=%d max_us=%d\n",
    "BENCH-SUMMARY", summary.requests, summary.duration, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""

# POST /orders: quantity 1, each stock bought ten times round then sold back, so no buy runs
# out of stock; every request has its own Idempotency-Key (args[1] makes it unique per run).
_ORDERS_LUA = r"""
local names = {"tesla", "ford", "apple", "amazon", "nvidia", "intel", "meta", "nike", "amc", "gamestop"}
local sent = 0
local run = "bench"

function init(args)
  run = args[1] or run
end

function request()
  sent = sent + 1
  local name = names[sent % #names + 1]
  local side = (math.floor(sent / #names) % 2 == 0) and "buy" or "sell"
  local body = '{"name": "' .. name .. '", "quantity": 1, "type": "' .. side .. '"}'
  local headers = {["Content-Type"] = "application/json",
                   ["Idempotency-Key"] = run .. "-" .. tid .. "-" .. sent}
  return wrk.format("POST", "/orders", headers, body)
end
"""

# GET /orders/<n> for n cycling through args[1] .. args[1] + args[2] - 1, each thread from its own
# place in the cycle: a fixed set of existing orders, so that after one round every answer is
# one the front end keeps (its order cache) and the load measures that path, not the leader's.
_LOOKUPS_LUA = r"""
local first, count, sent = 0, 1, 0

function init(args)
  first = tonumber(args[1]) or 0
  count = math.max(1, tonumber(args[2]) or 1)
  sent = 7919 * (tid - 1)
end

function request()
  local n = first + sent % count
  sent = sent + 1
  return wrk.format("GET", "/orders/" .. n)
end
"""

SCRIPTS = {"get": "", "orders": _ORDERS_LUA, "lookups": _LOOKUPS_LUA}


def find_wrk() -> str | None:
    return shutil.which("wrk")


def script(kind: str) -> str:
    """The Lua for a load of `kind` ("get": the URL as given; "orders"; "lookups")."""
    return _SUMMARY_LUA + SCRIPTS[kind]


def arguments(kind: str, tag: str, numbers: range) -> tuple[str, ...]:
    """What the script of `kind` is given after "--": a run's tag for the keys of "orders", the
    first number and how many for "lookups"."""
    if kind == "orders":
        return (tag,)
    if kind == "lookups":
        return (str(numbers.start), str(len(numbers)))
    return ()


def command(wrk: str, url: str, script_path: str, connections: int, seconds: float,
            args: tuple[str, ...] = (), threads: int = 1) -> list[str]:
    """One wrk thread drives every connection: on two cores it leaves the other to the server."""
    return [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
            "--timeout", "5s", "-s", script_path, url, "--", *args]


@dataclass(frozen=True)
class WrkSummary:
    requests: int  # complete responses, any status
    seconds: float
    status_errors: int  # responses with status >= 400
    socket_errors: int  # connect, read, write and timeout errors
    p50: float  # seconds
    p99: float
    max: float


_SUMMARY = re.compile(
    SUMMARY_TAG + r" requests=(\d+) duration_us=(\d+) status_errors=(\d+) connect=(\d+) read=(\d+) "
    r"write=(\d+) timeout=(\d+) p50_us=(\d+) p99_us=(\d+) max_us=(\d+)"
)


def parse_summary(output: str) -> WrkSummary | None:
    """The summary line our done() printed, or None when wrk printed none (it failed)."""
    match = None
    for match in _SUMMARY.finditer(output):
        pass
    if match is None:
        return None
    n = [int(g) for g in match.groups()]
    return WrkSummary(
        requests=n[0], seconds=n[1] / 1e6, status_errors=n[2], socket_errors=sum(n[3:7]),
        p50=n[7] / 1e6, p99=n[8] / 1e6, max=n[9] / 1e6,
    )
