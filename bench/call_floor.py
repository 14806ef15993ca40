"""What one internal call costs at the least on this machine: a mutually authenticated unary
gRPC call to another process, one after another, made from a Twisted reactor as Bazaar makes
them (`bazaar.rpc.bridge.call`: a future whose answer hops into the reactor). The server answers
either in its handler thread, or, as every Bazaar handler does, after a hop into its reactor
thread (`ReactorHop`). No Bazaar logic runs on either side: what is timed is the transport, the
threads and the hops, the part of a trade's round that no change to Bazaar's own code removes.

    python bench/call_floor.py [--calls N] [--turns N] [--json]

Requests carry 2,400 bytes and answers 600, about a batch of 16 trades and its answers. A turn
of each kind is run first and not counted (connections, caches); then the kinds take turns,
in alternating order, and each keeps its best turn (the least disturbed).

The server is this script again (`--serve DIR`), started on a pipe: it binds a port of the
kernel's choosing, says which on its output, and stops when its input closes, so it ends with
its client however the client ends (killed included).
"""

from __future__ import annotations

import argparse
import json
import math
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, Sequence

import grpc

sys.path.append(str(Path(__file__).resolve().parent.parent))

from bazaar.reactor.run import run_on_reactor  # noqa: E402
from bazaar.rpc.services import SERVER_OPTIONS  # noqa: E402
from bazaar.tls.certs import certificate_path, key_path, make_certificates  # noqa: E402
from bazaar.tls.identity import dns_name  # noqa: E402
from bench import table  # noqa: E402
from bench.result import CallFloor  # noqa: E402

SERVER, CLIENT = "bench-server", "bench-client"
SERVICE = "bazaar.bench.Floor"
REQUEST, ANSWER = b"q" * 2400, b"a" * 600
CALL_TIMEOUT = 5.0
READY_TIMEOUT = 30.0  # the server process's start, on a loaded machine
KINDS = ("Direct", "Hop")
MAX_CALLS, MAX_TURNS = 100_000, 20  # at most about 20 minutes


class FloorError(Exception):
    """The server could not be started or reached."""


class Interrupted(Exception):
    """SIGTERM outside the reactor's run (which has handlers of its own)."""


def _interrupted(signum: int, frame: Any) -> None:
    raise Interrupted()


def _read(directory: Path, name: str) -> tuple[bytes, bytes]:
    return key_path(directory, name).read_bytes(), certificate_path(directory, name).read_bytes()


def serve(directory: Path) -> int:
    """Answer until our input closes: `Direct` in the handler thread, `Hop` in the reactor
    thread. The first line of our output is the port."""
    from concurrent.futures import ThreadPoolExecutor

    from twisted.internet import reactor

    from bazaar.rpc.bridge import ReactorHop

    hop = ReactorHop(reactor, CALL_TIMEOUT)
    handlers = {
        "Direct": grpc.unary_unary_rpc_method_handler(lambda request, context: ANSWER),
        "Hop": grpc.unary_unary_rpc_method_handler(lambda request, context: hop.call(lambda: ANSWER)),
    }
    server = grpc.server(ThreadPoolExecutor(4), options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    credentials = grpc.ssl_server_credentials(
        [_read(directory, SERVER)], root_certificates=certificate_path(directory, "ca").read_bytes(),
        require_client_auth=True,
    )
    try:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    except RuntimeError as e:
        print(f"call_floor server: cannot listen: {e}", file=sys.stderr)
        return 1
    server.start()
    print(port, flush=True)

    def until_input_closes() -> None:
        sys.stdin.buffer.read()
        reactor.callFromThread(lambda: reactor.stop() if reactor.running else None)

    threading.Thread(target=until_input_closes, daemon=True).start()
    reactor.run()
    hop.stop()
    server.stop(0)
    return 0


def _port(output: IO[str], server: subprocess.Popen) -> int:
    """The port the server says it listens on, within READY_TIMEOUT."""
    ready, _, _ = select.select([output], [], [], READY_TIMEOUT)
    if not ready:
        raise FloorError(f"the server did not listen within {READY_TIMEOUT:g} s")
    line = output.readline()
    if not line:
        try:
            ended = f"exited with {server.wait(CALL_TIMEOUT)}"
        except subprocess.TimeoutExpired:
            ended = "closed its output"
        raise FloorError(f"the server {ended} before it listened")
    try:
        return int(line)
    except ValueError:
        raise FloorError(f"the server said {line.strip()[:200]!r}, not its port") from None


def measure(port: int, directory: Path, calls: int, turns: int) -> dict[str, float] | None:
    """Seconds a call of each kind, its best turn's; None when a signal stopped us first."""
    from bazaar.rpc.bridge import call

    key, cert = _read(directory, CLIENT)
    channel = grpc.secure_channel(
        f"127.0.0.1:{port}",
        grpc.ssl_channel_credentials(certificate_path(directory, "ca").read_bytes(), key, cert),
        options=[("grpc.ssl_target_name_override", dns_name(SERVER))],
    )
    methods = {kind: channel.unary_unary(f"/{SERVICE}/{kind}") for kind in KINDS}
    best = {kind: math.inf for kind in KINDS}

    async def run(reactor: Any) -> None:
        for method in methods.values():  # the server is up, and the connection made
            await call(reactor, method, REQUEST, READY_TIMEOUT, wait_for_ready=True)
        for turn in range(turns + 1):
            for kind in KINDS if turn % 2 else reversed(KINDS):
                started = time.perf_counter()
                for _ in range(calls):
                    await call(reactor, methods[kind], REQUEST, CALL_TIMEOUT)
                if turn:  # the first turn only warms up
                    best[kind] = min(best[kind], (time.perf_counter() - started) / calls)

    try:
        finished, _ = run_on_reactor(run)
    finally:
        channel.close()
    return best if finished else None


def _count(limit: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"{value} is not between 1 and {limit:,}")
        return value
    return parse


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/call_floor.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=_count(MAX_CALLS), default=2000, help="calls of each kind in a turn (default 2000)")
    p.add_argument("--turns", type=_count(MAX_TURNS), default=3,
                   help="counted turns of each kind; the best is kept (default 3)")
    p.add_argument("--json", action="store_true", help='print {"direct": seconds, "hop": seconds} instead')
    p.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        return serve(Path(args.serve))
    # Stopped however and whenever (before, during or after the reactor's run), the server and
    # the folder of certificates go with us.
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        best = _measure_in(args.calls, args.turns)
    except (Interrupted, KeyboardInterrupt):
        best = None
    except (FloorError, grpc.RpcError) as e:
        why = f"{e.code().name}: {e.details()}" if isinstance(e, grpc.RpcError) else str(e)
        print(f"call_floor: {why}", file=sys.stderr)
        return 1
    if best is None:
        print("call_floor: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps({"direct": best["Direct"], "hop": best["Hop"]}))
        return 0
    print(f"one TLS unary call, {len(REQUEST):,} B out, {len(ANSWER):,} B back, from a Twisted reactor:")
    print(f"  server answers in its handler thread:   {table.micros(best['Direct']):>10}")
    print(f"  server hops into its reactor and back:  {table.micros(best['Hop']):>10}")
    return 0


def _measure_in(calls: int, turns: int) -> dict[str, float] | None:
    """`measure`, against a server started for it with certificates made for it."""
    with tempfile.TemporaryDirectory(prefix="bazaar-call-floor-") as tmp:
        directory = Path(tmp)
        make_certificates(directory, [SERVER, CLIENT])
        server: subprocess.Popen | None = None
        try:
            server = subprocess.Popen([sys.executable, __file__, "--serve", tmp],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert server.stdout is not None
            return measure(_port(server.stdout, server), directory, calls, turns)
        finally:
            if server is not None:
                server.kill()
                server.wait()


def run(calls: int, turns: int, timeout: float = 300.0) -> CallFloor | str:
    """What one call costs (this script in a process of its own, so that the caller's process
    needs no reactor), or why it could not be measured."""
    script = subprocess.Popen([sys.executable, __file__, "--json", "--calls", str(calls), "--turns", str(turns)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = script.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"not measured: bench/call_floor.py took over {timeout:g} s"
    finally:
        if script.poll() is None:  # timed out, or we are stopping: let it remove its files first
            script.terminate()
            try:
                script.wait(CALL_TIMEOUT)
            except subprocess.TimeoutExpired:
                script.kill()
                script.wait()
    if script.returncode != 0:
        last = (stderr.strip().splitlines() or [f"exit status {script.returncode}"])[-1]
        return f"not measured: bench/call_floor.py failed ({last})"
    try:
        found = json.loads(stdout)
        floor = CallFloor(direct=float(found["direct"]), hop=float(found["hop"]))
    except (ValueError, KeyError, TypeError):
        floor = None
    if floor is None or not all(math.isfinite(t) and t > 0 for t in (floor.direct, floor.hop)):
        return f"not measured: bench/call_floor.py printed {stdout.strip()[:200]!r}"
    return floor


if __name__ == "__main__":
    sys.exit(main())
