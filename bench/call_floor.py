"""What one internal call costs at the least on this machine: a mutually authenticated unary
gRPC call to another process, one after another, made from a Twisted reactor as Bazaar makes
them (`bazaar.rpc.bridge.call`: a future whose answer hops into the reactor). The server answers
either in its handler thread, or, as every Bazaar handler does, after a hop into its reactor
thread (`ReactorHop`). No Bazaar logic runs on either side: what is timed is the transport, the
threads and the hops, the part of a trade's round that no change to Bazaar's own code removes.

    python bench/call_floor.py [--calls N] [--turns N]

Requests carry 2,400 bytes and answers 600, about a batch of 16 trades and its answers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import grpc

sys.path.append(str(Path(__file__).resolve().parent.parent))

from bazaar.chaos.processes import free_ports  # noqa: E402
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


def _read(directory: Path, name: str) -> tuple[bytes, bytes]:
    return key_path(directory, name).read_bytes(), certificate_path(directory, name).read_bytes()


def serve(port: int, directory: Path) -> None:
    """Answer until killed: `Direct` in the handler thread, `Hop` in the reactor thread."""
    from concurrent.futures import ThreadPoolExecutor

    from twisted.internet import reactor

    from bazaar.rpc.bridge import ReactorHop

    hop = ReactorHop(reactor, CALL_TIMEOUT)
    handlers = {
        "Direct": grpc.unary_unary_rpc_method_handler(lambda request, context: ANSWER),
        "Hop": grpc.unary_unary_rpc_method_handler(lambda request, context: hop.call(lambda: ANSWER)),
    }
    server = grpc.server(ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    credentials = grpc.ssl_server_credentials(
        [_read(directory, SERVER)], root_certificates=certificate_path(directory, "ca").read_bytes(),
        require_client_auth=True,
    )
    server.add_secure_port(f"127.0.0.1:{port}", credentials)
    server.start()
    reactor.run()


def measure(port: int, directory: Path, calls: int, turns: int) -> dict[str, float]:
    """Seconds a call of each kind, the best turn's (the least disturbed), kinds in turns."""
    from twisted.internet import defer, reactor

    from bazaar.rpc.bridge import call

    key, cert = _read(directory, CLIENT)
    channel = grpc.secure_channel(
        f"127.0.0.1:{port}",
        grpc.ssl_channel_credentials(certificate_path(directory, "ca").read_bytes(), key, cert),
        options=[("grpc.ssl_target_name_override", dns_name(SERVER))],
    )
    methods = {kind: channel.unary_unary(f"/{SERVICE}/{kind}") for kind in KINDS}
    best = {kind: float("inf") for kind in KINDS}
    failed: list[Any] = []

    async def run() -> None:
        for method in methods.values():  # the server is up, and the connection made
            await call(reactor, method, REQUEST, READY_TIMEOUT, wait_for_ready=True)
        for _ in range(turns):
            for kind, method in methods.items():
                started = time.perf_counter()
                for _ in range(calls):
                    await call(reactor, method, REQUEST, CALL_TIMEOUT)
                best[kind] = min(best[kind], (time.perf_counter() - started) / calls)

    def start() -> None:
        d = defer.ensureDeferred(run())
        d.addErrback(failed.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    try:
        reactor.run()
    finally:
        channel.close()
    if failed:
        failed[0].raiseException()
    return best


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/call_floor.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=2000, help="calls of each kind in a turn (default 2000)")
    p.add_argument("--turns", type=int, default=3, help="turns of each kind; the best is kept (default 3)")
    p.add_argument("--json", action="store_true", help='print {"direct": seconds, "hop": seconds} instead')
    p.add_argument("--serve", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(int(args.serve[0]), Path(args.serve[1]))
        return 0
    if args.calls < 1 or args.turns < 1:
        p.error("--calls and --turns must be at least 1")
    with tempfile.TemporaryDirectory(prefix="bazaar-call-floor-") as tmp:
        directory = Path(tmp)
        make_certificates(directory, [SERVER, CLIENT])
        port = free_ports(1)[0]
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), tmp])
        try:
            best = measure(port, directory, args.calls, args.turns)
        except grpc.RpcError as e:
            ended = server.poll()
            why = f"it exited with {ended}" if ended is not None else f"{e.code().name}: {e.details()}"
            print(f"call_floor: the server on port {port} did not answer ({why})", file=sys.stderr)
            return 1
        finally:
            server.kill()
            server.wait()
    if args.json:
        print(json.dumps({"direct": best["Direct"], "hop": best["Hop"]}))
        return 0
    print(f"one TLS unary call, {len(REQUEST):,} B out, {len(ANSWER):,} B back, from a Twisted reactor:")
    print(f"  server answers in its handler thread:   {table.micros(best['Direct']):>10}")
    print(f"  server hops into its reactor and back:  {table.micros(best['Hop']):>10}")
    return 0


def run(calls: int, turns: int, timeout: float = 300.0) -> CallFloor | str:
    """What one call costs (this script in a process of its own, so that the caller's process
    needs no reactor), or why it could not be measured."""
    try:
        done = subprocess.run([sys.executable, __file__, "--json", "--calls", str(calls), "--turns", str(turns)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"not measured: bench/call_floor.py took over {timeout:g} s"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return f"not measured: bench/call_floor.py failed ({last})"
    try:
        found = json.loads(done.stdout)
        return CallFloor(direct=float(found["direct"]), hop=float(found["hop"]))
    except (ValueError, KeyError, TypeError):
        return f"not measured: bench/call_floor.py printed {done.stdout.strip()[:200]!r}"


if __name__ == "__main__":
    sys.exit(main())
