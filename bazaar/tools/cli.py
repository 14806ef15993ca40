"""The `bazaar` command: client, certs, up, down, status, demo, dump-orders, chaos, load, plot, probe.

Bad input gets one line on stderr and exit status 2; a failure of the cluster or the service
gets a message and status 1. No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import sys
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import urlsplit

from bazaar import installed_version
from bazaar.config import ConfigError, load_config

USAGE_ERROR = 2
INTERRUPTED = 130
STATUS_NOT_ALL_RUNNING = 3  # LSB's "program is not running"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's default repeats the whole usage; one line with a pointer is clearer.
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# ---- argument types ------------------------------------------------------------------------


def _url(text: str) -> str:
    parts = urlsplit(text)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise argparse.ArgumentTypeError(
            f"expected the front end's address like http://127.0.0.1:56893, got {text!r}"
        )
    if parts.query or parts.fragment or parts.path.strip("/"):
        raise argparse.ArgumentTypeError(f"expected a URL without a path or query, got {text!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _ca_file(text: str) -> Path:
    from bazaar.tls.public import TlsFileError, certificates

    try:
        certificates(Path(text))
    except TlsFileError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return Path(text)


def _whole_number(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return value

    return parse


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, got {text!r}")
    return value


def _probabilities(text: str) -> list[float]:
    """A comma-separated list of distinct probabilities, e.g. 0,0.2,0.4."""
    values = [_probability(item.strip()) for item in text.split(",")]
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"{repeated[0]:g} is given twice in {text!r}")
    return values


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value <= 3600.0:
        raise argparse.ArgumentTypeError(f"expected seconds in (0, 3600], got {text!r}")
    return value


def _output_dir(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} exists and is not a directory")
    return path


def _output_file(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; expected a file name like docs/evaluation.md")
    return path


# ---- the commands ------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> int:
    from twisted.internet.defer import Deferred
    from twisted.internet.task import react

    from bazaar.tools import client

    if args.url is None:
        from bazaar.tools.cluster import frontend_url

        config = load_config(args.config)
        args.url = frontend_url(config)
        if args.ca_file is None and config.frontend.certificate is not None:
            args.ca_file = config.frontend.certificate  # HTTPS with the front end's own certificate
    settings = client.ClientSettings(
        url=args.url,
        iterations=args.iterations,
        probability=args.probability,
        seed=args.seed,
        verbose=args.verbose,
        timeout=args.timeout,
        ca_file=args.ca_file,
    )
    # react exits the process with the client's status.
    react(lambda reactor: Deferred.fromCoroutine(client.main(reactor, settings)))
    return 0  # not reached


def _up(args: argparse.Namespace) -> int:
    from bazaar.tools import cluster

    cluster.up(load_config(args.config), wait=args.wait)
    return 0


def _certs(args: argparse.Namespace) -> int:
    from bazaar.tools import cluster

    config = load_config(args.config)
    if not cluster.make_certificates(config, force=args.force) and not config.tls.insecure:
        print(f"every certificate is in {config.tls_dir} already (--force makes new ones)")
    return 0


def _down(args: argparse.Namespace) -> int:
    from bazaar.tools import cluster

    cluster.down(load_config(args.config))
    return 0


def _status(args: argparse.Namespace) -> int:
    from bazaar.tools import status

    return 0 if status.status(load_config(args.config), as_json=args.json) else STATUS_NOT_ALL_RUNNING


def _demo(args: argparse.Namespace) -> int:
    from bazaar.tools import cluster

    return cluster.demo(args.iterations, args.probability, args.seed)


def _dump_orders(args: argparse.Namespace) -> int:
    from bazaar.order.store import read_orders

    config = load_config(args.config)
    config.replica_address(args.id)  # an unknown id is a ConfigError naming the known ones
    for order in read_orders(config.replica_dir(args.id)):
        sys.stdout.write(json.dumps(order.as_json()) + "\n")
    sys.stdout.flush()
    return 0


def _chaos(args: argparse.Namespace) -> int:
    from bazaar.chaos import run

    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)  # an unwritable DIR fails now, not after the run
    settings = run.ChaosSettings(
        duration=args.duration,
        clients=args.clients,
        fault_every=args.fault_every,
        seed=args.seed,
        keep=args.keep,
        out=args.out,
        network=args.network,
        **({} if args.snapshot_gap is None else {"snapshot_gap": args.snapshot_gap}),
    )
    return run.main(settings)


def _load(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bazaar.evaluation import run

    if args.url is not None and args.cache == run.BOTH:
        return _fail("bazaar load", "--cache both needs its own clusters; with --url the front end's "
                     "cache is either on or off", USAGE_ERROR)
    settings = run.LoadSettings(
        url=args.url, clients=args.clients, p=tuple(args.p), requests=args.requests, cache=args.cache,
        out=Path(args.out) if args.out is not None else None, seed=args.seed,
    )
    try:
        return run.main(settings)
    except run.UsageError as e:
        return _fail("bazaar load", str(e), USAGE_ERROR)


def _plot(args: argparse.Namespace) -> int:
    from bazaar.evaluation import document, inputs, plot

    prog = "bazaar plot"
    try:
        load = inputs.read_load(args.directory)
        chaos = inputs.read_chaos(args.chaos) if args.chaos is not None else None
        bench = inputs.read_bench(args.bench) if args.bench is not None else None
    except inputs.InputError as e:
        return _fail(prog, str(e), USAGE_ERROR)
    if args.figures is not None:
        figdir = args.figures
    else:  # beside the page when there is one, so its links stay short and in the repository
        figdir = (args.doc.parent if args.doc is not None else args.directory) / "figures"
    try:
        figures = plot.plot_all(load, chaos, figdir, print, bench)
    except plot.MissingMatplotlib as e:
        return _fail(prog, str(e), 1)
    if args.doc is not None:
        print(f"wrote {document.write(load, chaos, figures, args.doc, bench)}")
    return 0


def _probe(args: argparse.Namespace) -> int:
    from bazaar.tools import probe

    return probe.main(args)


# ---- the parser --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bazaar", description="Run and exercise a Bazaar trading cluster.")
    parser.add_argument("--version", action="version", version=f"bazaar {installed_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], int], text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    def config_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--config", metavar="PATH",
            help="the cluster's TOML file (default: bazaar.toml here, else built-in defaults)",
        )

    client = command("client", _client, "Trade against a front end, then verify every order.")
    client.add_argument("--url", type=_url,
                        help="the front end, e.g. http://127.0.0.1:56893 (default: the configuration's first)")
    config_option(client)
    client.add_argument("-n", dest="iterations", metavar="ITERATIONS", type=_whole_number(0), required=True,
                        help="how many lookups to make")
    client.add_argument("-p", dest="probability", metavar="PROBABILITY", type=_probability, required=True,
                        help="chance of a trade after each lookup, 0..1")
    client.add_argument("--seed", type=int, help="seed for the random choices (same seed, same requests)")
    client.add_argument("--verbose", action="store_true", help="print every request and answer")
    client.add_argument("--timeout", type=_seconds, default=10.0, metavar="SECONDS",
                        help="deadline for each request (default 10)")
    client.add_argument("--ca-file", type=_ca_file, metavar="PATH",
                        help="for an https URL: trust only the certificates in this PEM file (a CA's, or the "
                             "front end's own self-signed one); default: the system's")

    up = command("up", _up, "Start the cluster in the background and wait until it answers.")
    config_option(up)
    up.add_argument("--wait", type=_seconds, default=30.0, metavar="SECONDS",
                    help="how long the front end may take to find a leader (default 30)")

    certs = command("certs", _certs,
                    "Make the cluster's TLS authority and a certificate for each process and the operator's "
                    "tools, where the configuration says ([tls] dir, default <data_dir>/certs); `up` makes "
                    "missing ones too.")
    config_option(certs)
    certs.add_argument("--force", action="store_true",
                       help="a new authority and new certificates for all, replacing the old ones")

    config_option(command("down", _down, "Stop the cluster started by `bazaar up`."))
    status = command("status", _status, "Show each process of the cluster: running, pid, role, epoch, "
                     "how far it is and its lag behind the leader, its metrics URL.")
    config_option(status)
    status.add_argument("--json", action="store_true", help="the same as one JSON document")

    demo = command("demo", _demo, "Start a throwaway cluster, run the client against it, stop it.")
    demo.add_argument("-n", dest="iterations", metavar="ITERATIONS", type=_whole_number(0), default=100)
    demo.add_argument("-p", dest="probability", metavar="PROBABILITY", type=_probability, default=0.5)
    demo.add_argument("--seed", type=int)

    dump = command("dump-orders", _dump_orders, "Print a replica's orders as JSON lines, by number.")
    config_option(dump)
    dump.add_argument("--id", type=_whole_number(1), required=True, help="the replica's id")

    chaos = command("chaos", _chaos,
                    "Start a throwaway cluster, trade against it while killing and freezing its "
                    "processes, then check that no acknowledged trade was lost or repeated.")
    chaos.add_argument("--duration", type=_seconds, default=120.0, metavar="SECONDS",
                       help="how long the clients trade (default 120)")
    chaos.add_argument("--clients", type=_whole_number(1), default=4, metavar="N",
                       help="concurrent trading clients (default 4)")
    chaos.add_argument("--fault-every", dest="fault_every", type=_seconds, default=5.0, metavar="SECONDS",
                       help="seconds between faults (default 5)")
    chaos.add_argument("--seed", type=int, help="seed for the faults and trades (default: random, printed)")
    chaos.add_argument("--keep", action="store_true", help="keep the run's directory (config, data, logs)")
    chaos.add_argument("--snapshot-gap", dest="snapshot_gap", type=_whole_number(1), metavar="N",
                       help="a replica that missed N entries or more rejoins through a snapshot (default: so few "
                            "that most rejoins of a run do; a large N: through streams)")
    chaos.add_argument("--network", action="store_true",
                       help="network faults instead of process faults: each service on a test host of its own "
                            "(a network namespace), partitions and slow lossy links by iptables (needs root, "
                            "iproute2, iptables; see docs/chaos.md)")

    load = command("load", _load,
                   "Measure latency, throughput and the cache's hit rate: concurrent clients look up and "
                   "trade at each trade probability, with the cache on and off.")
    load.add_argument("--url", type=_url,
                      help="an existing front end to load (default: a throwaway cluster per cache mode)")
    load.add_argument("--clients", type=_whole_number(1), default=5, metavar="N",
                      help="concurrent clients (default 5)")
    load.add_argument("--p", type=_probabilities, default=[0.0, 0.2, 0.4, 0.6, 0.8], metavar="P,P,...",
                      help="trade probabilities, one run each (default 0,0.2,0.4,0.6,0.8)")
    load.add_argument("--requests", type=_whole_number(1), default=200, metavar="N",
                      help="iterations (lookup, maybe a trade and its query) per client and run (default 200)")
    load.add_argument("--cache", choices=("on", "off", "both"),
                      help="the cache modes to measure (default: both; with --url, the front end's own)")
    load.add_argument("--out", metavar="DIR",
                      help="where the files go (default: a new ./bazaar-load-<timestamp>)")
    load.add_argument("--seed", type=int, help="seed for the clients' choices (default: random, printed)")
    chaos.add_argument("--out", type=_output_dir, metavar="DIR",
                       help="also write the run's attempts.csv and faults.json into DIR (for `bazaar plot`)")

    plot = command("plot", _plot,
                   "Draw the evaluation's figures (PNG) from `bazaar load --out DIR` and `bazaar chaos --out "
                   "DIR`, and optionally write the evaluation page.")
    plot.add_argument("directory", type=Path, metavar="DIR", help="the folder `bazaar load --out` wrote")
    plot.add_argument("--chaos", type=Path, metavar="CHAOSDIR", help="the folder `bazaar chaos --out` wrote")
    plot.add_argument("--bench", type=Path, metavar="JSON",
                      help="the JSON `python bench/run.py --json` wrote: adds the bench's scale curves")
    plot.add_argument("--figures", type=_output_dir, metavar="FIGDIR",
                      help="where to write the PNGs (default: DIR/figures, or figures/ beside --doc)")
    plot.add_argument("--doc", type=_output_file, metavar="PATH",
                      help="also write the evaluation page (markdown) here, e.g. docs/evaluation.md")

    probe = command("probe", _probe,
                    "Exit 0 when process NAME is ready (catalog, order-N: gRPC health SERVING; a front end: "
                    "GET /readyz 200), else 1 with one line on stderr: a health check.")
    config_option(probe)
    probe.add_argument("name", metavar="NAME", help="catalog, order-N, frontend or frontend-N")
    probe.add_argument("--as", dest="as_name", metavar="CERT",
                       help="for catalog and order-N: dial with this certificate of tls.dir (default: NAME's own)")
    probe.add_argument("--timeout", type=_seconds, default=3.0, metavar="SECONDS", help="deadline (default 3)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prog = f"bazaar {args.command}"
    try:
        return args.handler(args)
    except ConfigError as e:
        return _fail(prog, str(e), USAGE_ERROR)
    except KeyboardInterrupt:
        return _fail(prog, "interrupted", INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (| head): stop quietly, and keep Python from complaining
        # about the unflushed stdout at exit.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except Exception as e:
        return _fail(prog, _describe(e), 1)


def _describe(e: Exception) -> str:
    from bazaar.storefile import StoreError
    from bazaar.tls.certs import AuthorityKeyMissing
    from bazaar.tls.files import TlsError
    from bazaar.tools.cluster import ClusterError

    if isinstance(e, (ClusterError, StoreError, TlsError, AuthorityKeyMissing)):
        return str(e)
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    if isinstance(e, sqlite3.Error):
        return f"cannot read the order log: {e}"
    return f"unexpected {type(e).__name__}: {e}"


def _fail(prog: str, message: str, code: int) -> int:
    print(f"{prog}: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
