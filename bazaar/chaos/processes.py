"""The chaos harness's own cluster: five foreground twistd children it can kill, freeze and restart.

Each child is `twistd -n --logfile <dir>/<name>.log --pidfile '' <plugin> --config <toml>`, in a
session of its own (a Ctrl-C in the terminal reaches the harness, which then stops them in order).
Waits poll a condition against a deadline; nothing sleeps a fixed time to synchronise.

By default every service listens on a free loopback port. Given `hosts` (hosts.TestHosts, for
`bazaar chaos --network`), each service listens on its own host's address at a fixed port
(SERVICE_PORTS), and its command is prefixed with `ip netns exec <its namespace>`, which execs
twistd in place: the child's pid is still twistd's, for signals.
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from contextlib import closing
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import tomli_w

from bazaar.core.stock import Stock
from bazaar.config import Config, load_config
from bazaar.tls.identity import CATALOG, FRONTEND, replica_name
from bazaar.tools.cluster import ClusterError, child_environment, find_twistd, make_certificates

REPLICA_IDS = (1, 2, 3)
STARTUP_DEADLINE = 30.0
STOP_DEADLINE = 10.0
POLL = 0.02  # polling interval, not a synchronisation guess


NAMES = (CATALOG, *(replica_name(i) for i in REPLICA_IDS), FRONTEND)  # start order
LOOPBACK = "127.0.0.1"
# On test hosts every service has an address of its own, so the ports can be the defaults.
SERVICE_PORTS = {CATALOG: 56892, FRONTEND: 56893, **{replica_name(i): 56893 + i for i in REPLICA_IDS}}
# The front end's internal listener (cache invalidation): on the front end's host.
INTERNAL = "frontend-internal"
INTERNAL_PORT = Config().frontends[1].internal.port


class Hosts(Protocol):
    """Where each service runs: hosts.TestHosts."""

    def address(self, name: str) -> str: ...

    def command_prefix(self, name: str) -> list[str]: ...


class ChaosError(ClusterError):
    """The harness could not run its cluster (a process would not start, or died).

    A ClusterError, so that `bazaar` prints its message as it is."""


# Where free_ports looks first: below the kernel's range of ephemeral ports, which it hands out
# as the source port of every outgoing connection. A port picked from inside that range (as
# binding port 0 does) can be taken by one of the cluster's own connections before the process
# meant to listen on it starts (seen: a replica restarted by the bench failed with EADDRINUSE).
LOCAL_PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10_000


def ephemeral_ports() -> range | None:
    """The kernel's ephemeral port range, None where it cannot be read (not Linux)."""
    try:
        low, high = (int(n) for n in LOCAL_PORT_RANGE.read_text().split())
    except (OSError, ValueError):
        return None
    return range(low, high + 1)


# Every port free_ports has handed out in this process: never handed out again. Two clusters
# are often made before either starts (the bench's history phase: a seeded and an empty one),
# so a bind check alone would let both take a port; the second to start then found the first's
# process listening there and took it for its own.
_given: set[int] = set()


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that were free a moment ago and that no earlier call in
    this process returned: below the ephemeral range where it leaves room, else wherever
    binding port 0 puts them."""
    sockets: list[socket.socket] = []
    held: list[socket.socket] = []  # port-0 binds to ports given before: kept until the end
    ephemeral = ephemeral_ports()
    candidates = [p for p in range(LOWEST_PORT, ephemeral.start) if p not in _given] if ephemeral is not None else []
    random.shuffle(candidates)
    try:
        for port in candidates:
            if len(sockets) == count:
                break
            s = socket.socket()
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                s.close()
                continue
            sockets.append(s)
        while len(sockets) < count:
            s = socket.socket()
            s.bind((LOOPBACK, 0))
            (held if s.getsockname()[1] in _given else sockets).append(s)
        ports = [s.getsockname()[1] for s in sockets]
        _given.update(ports)
        return ports
    finally:
        for s in sockets + held:
            s.close()


def config_text(
    catalog: int, frontend: int, replicas: dict[int, int], cache: bool = True, stocks: Sequence[Stock] = (),
    internal: int | None = None,
) -> str:
    """The cluster's bazaar.toml on loopback ports; `stocks`, when given, as its [stocks] table."""
    addresses = {CATALOG: f"{LOOPBACK}:{catalog}", FRONTEND: f"{LOOPBACK}:{frontend}"}
    if internal is not None:
        addresses[INTERNAL] = f"{LOOPBACK}:{internal}"
    addresses.update({replica_name(i): f"{LOOPBACK}:{p}" for i, p in replicas.items()})
    return addresses_config_text(addresses, cache, stocks)


def addresses_config_text(
    addresses: Mapping[str, str], cache: bool = True, stocks: Sequence[Stock] = (), insecure: bool = False,
    metrics: Mapping[str, str] | None = None, snapshot_gap: int | None = None,
) -> str:
    """The cluster's bazaar.toml with each service (catalog, frontend, order-N, and perhaps the
    front end's internal listener) at its "host:port"; `metrics`: where each named process
    serves its metrics (the others: their default); `snapshot_gap`: replication.snapshot_gap."""
    metrics = metrics or {}

    def place(name: str, **table: Any) -> dict[str, Any]:
        return {**table, **({"metrics": metrics[name]} if name in metrics else {})}

    frontend = place(FRONTEND, address=addresses[FRONTEND])
    if INTERNAL in addresses:
        frontend["internal"] = addresses[INTERNAL]
    if not cache:
        frontend["cache"] = False
    replicas = sorted((int(n.split("-", 1)[1]), n) for n in addresses if n.startswith("order-"))
    settings: dict[str, Any] = {
        "data_dir": "data",
        "catalog": place(CATALOG, address=addresses[CATALOG]),
        "frontend": frontend,
        "replicas": {str(i): place(n, address=addresses[n]) if n in metrics else addresses[n] for i, n in replicas},
    }
    if insecure:
        settings["tls"] = {"insecure": True}
    if snapshot_gap is not None:
        settings["replication"] = {"snapshot_gap": snapshot_gap}
    if stocks:
        settings["stocks"] = {s.name: {"price": s.price, "quantity": s.quantity, "volume": s.volume} for s in stocks}
    return tomli_w.dumps(settings)


def listening(port: int, host: str = LOOPBACK) -> bool:
    with closing(socket.socket()) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class ChaosCluster:
    def __init__(
        self, root: Path, cache: bool = True, stocks: Sequence[Stock] = (), hosts: Hosts | None = None,
        insecure: bool = False, snapshot_gap: int | None = None,
    ) -> None:
        """`cache=False` writes `[frontend] cache = false` (bazaar load measures both modes);
        `stocks` is the initial stock table (default: the built-in one); `hosts` runs each
        service on a test host of its own (see the module's docstring); `insecure` turns TLS
        off (the bench's reference for what mutual TLS costs); `snapshot_gap`: from how many
        missed entries a replica rejoins through a snapshot (default: the built-in one)."""
        self.root = root
        self._hosts = hosts
        metrics: dict[str, str] = {}
        if hosts is None:
            ports = free_ports(3 + len(REPLICA_IDS) + len(NAMES))
            self.ports = {CATALOG: ports[0], FRONTEND: ports[1], INTERNAL: ports[2]}
            self.ports.update({replica_name(i): p for i, p in zip(REPLICA_IDS, ports[3:])})
            self.addresses = {name: LOOPBACK for name in NAMES}
            # Free ports too: the default (each port plus 10) may be anyone's.
            metrics = {name: f"{LOOPBACK}:{p}" for name, p in zip(NAMES, ports[3 + len(REPLICA_IDS):])}
        else:
            self.ports = {**SERVICE_PORTS, INTERNAL: INTERNAL_PORT}
            self.addresses = {name: hosts.address(name) for name in NAMES}
        self.config_path = root / "bazaar.toml"
        where = {name: f"{self.addresses[name]}:{self.ports[name]}" for name in NAMES}
        where[INTERNAL] = f"{self.addresses[FRONTEND]}:{self.ports[INTERNAL]}"
        self.config_path.write_text(addresses_config_text(where, cache, stocks, insecure, metrics, snapshot_gap))
        make_certificates(load_config(self.config_path), say=lambda _: None)
        self.twistd = find_twistd()
        self.env = child_environment()
        self.children: dict[str, subprocess.Popen] = {}
        # Names we killed on purpose and have not restarted yet.
        self._killed: set[str] = set()
        self.unexpected_exits: list[tuple[str, int]] = []

    @property
    def frontend_url(self) -> str:
        return f"http://{self.addresses[FRONTEND]}:{self.ports[FRONTEND]}"

    def replica_id_at(self, address: str) -> int | None:
        """The replica id listening at "host:port", as GET /leader names it."""
        host, _, port_text = address.rpartition(":")
        try:
            port = int(port_text)
        except ValueError:
            return None
        for i in REPLICA_IDS:
            name = replica_name(i)
            if self.ports[name] == port and self.addresses[name] == host:
                return i
        return None

    def command(self, name: str) -> list[str]:
        if name.startswith("order-"):
            plugin = ["bazaar-order", "--id", name.split("-", 1)[1]]
        else:
            plugin = [f"bazaar-{name}"]
        prefix = [] if self._hosts is None else self._hosts.command_prefix(name)
        return [*prefix, self.twistd, "-n", "--logfile", str(self.root / f"{name}.log"), "--pidfile", "",
                *plugin, "--config", str(self.config_path)]

    # -- single processes ----------------------------------------------------------------------

    def spawn(self, name: str) -> None:
        """Start `name` (again, after a kill) with the same command; does not wait."""
        old = self.children.get(name)
        if old is not None and old.poll() is None:
            raise ChaosError(f"{name} is still running")
        self.children[name] = subprocess.Popen(
            self.command(name), cwd=self.root, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self._killed.discard(name)

    def is_up(self, name: str) -> bool:
        """Running and accepting connections on its port; raises if it died on its own."""
        self.check_alive(name)
        return listening(self.ports[name], self.addresses[name])

    def exited(self, name: str) -> bool:
        return self.children[name].poll() is not None

    def send(self, name: str, sig: int) -> None:
        child = self.children[name]
        if child.poll() is None:
            if sig == signal.SIGKILL:
                self._killed.add(name)
            child.send_signal(sig)

    def check_alive(self, name: str) -> None:
        child = self.children.get(name)
        if child is None or name in self._killed:
            return
        code = child.poll()
        if code is not None:
            raise ChaosError(f"{name} exited with status {code}; its log ends:\n{self.log_tail(name)}")

    def reap_unexpected(self) -> list[str]:
        """Children that exited although nobody killed them; recorded, for a restart."""
        dead = []
        for name, child in self.children.items():
            if name not in self._killed and child.poll() is not None:
                self.unexpected_exits.append((name, child.returncode))
                self._killed.add(name)
                dead.append(name)
        return dead

    def log_tail(self, name: str, chars: int = 2000) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    # -- the whole cluster (blocking; before and after the reactor runs) -------------------------

    def start_all(self, leader_ready: Callable[[], bool], deadline: float = STARTUP_DEADLINE) -> None:
        """Catalog, replicas, front end, each once the one before listens; then until a leader."""
        for name in NAMES:
            self.spawn(name)
            wait_for(lambda: self.is_up(name), deadline,
                     f"{name} to listen on {self.addresses[name]}:{self.ports[name]}")
        wait_for(leader_ready, deadline, "the front end to find a leader")

    def stop_all(self, deadline: float = STOP_DEADLINE) -> None:
        stop_children(self.children, deadline)


def stop_children(children: Mapping[str, subprocess.Popen], deadline: float = STOP_DEADLINE) -> list[str]:
    """SIGCONT and SIGTERM to every child still running (a frozen one must be able to exit),
    SIGKILL to any still there `deadline` seconds later; the names that had to be killed."""
    running = {name: child for name, child in children.items() if child.poll() is None}
    for child in running.values():
        try:
            child.send_signal(signal.SIGCONT)
            child.terminate()
        except ProcessLookupError:
            pass
    end = time.monotonic() + deadline
    killed = []
    for name, child in running.items():
        try:
            child.wait(max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            killed.append(name)
    return killed


def wait_for(condition: Callable[[], Any], deadline: float, what: str) -> Any:
    """The condition's first true value, polled until `deadline` seconds have passed."""
    end = time.monotonic() + deadline
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > end:
            raise ChaosError(f"timed out after {deadline:g} s waiting for {what}")
        time.sleep(POLL)
