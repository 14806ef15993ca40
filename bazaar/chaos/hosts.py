"""Test hosts for `bazaar chaos --network`: one Linux network namespace per service.

A run with id R (four hex digits) makes:

- a switch namespace `bz-R-sw` holding a bridge `br0`;
- one namespace per service, `bz-R-catalog`, `bz-R-order-1`..`3`, `bz-R-frontend` (and
  `bz-R-frontend-N` for more front ends, when asked: the deployment test runs two), each with its
  loopback up and one veth, `eth0`, whose other end (`v-<service>`) is a port of the bridge;
- one veth in the root namespace, `bzR` (the chaos harness and its clients live there: the
  "client host"), whose other end is a port of the bridge too.

Addresses come from one private /24, 10.213.K.0/24, with K picked per run among those no
address of the root namespace and no other live run uses (so parallel runs never share a
subnet): the catalog .1, the front end .2 (front end N: .1+N), replica N .10+N, the client host
.100. Nothing but that one veth and its route touches the root namespace; every other name
lives inside the run's namespaces, which vanish with them. A claim file /run/bazaar-hosts/R
holds the owner's pid and K: `remove_leftovers` removes the hosts of runs whose owner is gone
(a killed run), and never those of a live one.

Creation and teardown are idempotent; a failure or an interrupt while creating tears down what
was made. Teardown first kills every process still inside a run's namespaces (`ip netns pids`:
only the processes this run started live there), then deletes the namespaces and the veth.
Every command is `ip` or `ip netns exec NS iptables`, run with a deadline.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from bazaar.chaos.processes import CATALOG, FRONTEND, NAMES, REPLICA_IDS, ChaosError, replica_name
from bazaar.tls.identity import frontend_name

PREFIX = "bz-"
SUBNET_BASE = "10.213"  # 10.213.K.0/24
CLAIMS = Path("/run/bazaar-hosts")
COMMAND_DEADLINE = 10.0  # seconds for one ip/iptables command
# Front ends 2 to 8 are hosts a run may ask for besides NAMES' (TestHosts' `services`).
EXTRA_FRONTEND_IDS = range(2, 9)
HOST_NUMBERS = {CATALOG: 1, FRONTEND: 2, **{frontend_name(i): 1 + i for i in EXTRA_FRONTEND_IDS},
                **{replica_name(i): 10 + i for i in REPLICA_IDS}}
CLIENT = "client"  # the root namespace's host: the harness and its clients
CLIENT_NUMBER = 100
RUN_ID = re.compile(r"[0-9a-f]{4}")
IFNAMSIZ = 15  # longest interface name Linux takes


class HostsUnavailable(ChaosError):
    """Test hosts cannot be made here; the message says why (for a skip or a one-line error)."""


@dataclass(frozen=True)
class Host:
    name: str  # a service (catalog, frontend, order-N) or CLIENT
    netns: str | None  # None: the root namespace
    address: str


def run_names(run_id: str, names: Sequence[str] = NAMES) -> dict[str, str]:
    """The run's namespaces by role: "switch" and each service of `names`."""
    return {"switch": f"{PREFIX}{run_id}-sw", **{name: f"{PREFIX}{run_id}-{name}" for name in names}}


def root_link(run_id: str) -> str:
    """The run's one interface in the root namespace (the client host's end)."""
    return f"bz{run_id}"


def switch_port(name: str) -> str:
    """The bridge-side end of `name`'s veth, inside the switch namespace."""
    return f"v-{name}"[:IFNAMSIZ]


def subnet(octet: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"{SUBNET_BASE}.{octet}.0/24")


def host_address(octet: int, name: str) -> str:
    number = CLIENT_NUMBER if name == CLIENT else HOST_NUMBERS[name]
    return f"{SUBNET_BASE}.{octet}.{number}"


def creation_commands(run_id: str, octet: int, services: Sequence[str] = NAMES) -> list[list[str]]:
    """Every command that makes the run's hosts, one per service of `services`, in order (each
    `ip ...`)."""
    names = run_names(run_id, services)
    sw = names["switch"]
    cmds = [["ip", "netns", "add", sw],
            ["ip", "-n", sw, "link", "add", "br0", "type", "bridge"],
            ["ip", "-n", sw, "link", "set", "br0", "up"],
            ["ip", "-n", sw, "link", "set", "lo", "up"]]
    for name in services:
        ns, port = names[name], switch_port(name)
        cmds += [["ip", "netns", "add", ns],
                 ["ip", "-n", ns, "link", "set", "lo", "up"],
                 ["ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns],
                 ["ip", "-n", sw, "link", "set", port, "master", "br0"],
                 ["ip", "-n", sw, "link", "set", port, "up"],
                 ["ip", "-n", ns, "addr", "add", f"{host_address(octet, name)}/24", "dev", "eth0"],
                 ["ip", "-n", ns, "link", "set", "eth0", "up"]]
    link = root_link(run_id)
    cmds += [["ip", "link", "add", link, "type", "veth", "peer", "name", switch_port(CLIENT), "netns", sw],
             ["ip", "-n", sw, "link", "set", switch_port(CLIENT), "master", "br0"],
             ["ip", "-n", sw, "link", "set", switch_port(CLIENT), "up"],
             ["ip", "addr", "add", f"{host_address(octet, CLIENT)}/24", "dev", link],
             ["ip", "link", "set", link, "up"]]
    return cmds


def run_command(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess:
    """Run one ip/iptables command within COMMAND_DEADLINE; ChaosError when it fails (`check`)."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=COMMAND_DEADLINE,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ChaosError(f"`{' '.join(argv)}` did not finish within {COMMAND_DEADLINE:g} s") from None
    if check and done.returncode != 0:
        raise ChaosError(f"`{' '.join(argv)}` failed: {(done.stderr or done.stdout).strip()}")
    return done


def namespaces() -> list[str]:
    """Every network namespace's name (`ip netns list`)."""
    out = run_command(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def root_links() -> list[str]:
    out = run_command(["ip", "-o", "link", "show"], check=False).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line.count(":") >= 2]


def _used_octets() -> set[int]:
    """Third octets of 10.213.K.0/24 that an address of the root namespace or a claim uses."""
    used = set()
    out = run_command(["ip", "-o", "-4", "addr", "show"], check=False).stdout
    for match in re.finditer(rf"inet {re.escape(SUBNET_BASE)}\.(\d+)\.", out):
        used.add(int(match.group(1)))
    for claim in _claims():
        if claim[2] is not None:
            used.add(claim[2])
    return used


def _claims() -> list[tuple[str, int | None, int | None]]:
    """(run id, owner pid, octet) of each claim file."""
    found = []
    if not CLAIMS.is_dir():
        return found
    for path in CLAIMS.iterdir():
        if not RUN_ID.fullmatch(path.name):
            continue
        try:
            pid_text, octet_text = path.read_text().split()
            found.append((path.name, int(pid_text), int(octet_text)))
        except (OSError, ValueError):
            found.append((path.name, None, None))
    return found


def _alive(pid: int | None) -> bool:
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_available() -> None:
    """Raise HostsUnavailable, with the reason, when test hosts cannot be made here: not root,
    no `ip` or `iptables`, or the kernel refuses network namespaces or iptables inside one. The
    last two are tried on a throwaway namespace, removed again."""
    if os.geteuid() != 0:
        raise HostsUnavailable("network chaos needs root (it makes network namespaces and iptables rules)")
    for tool, package in (("ip", "iproute2"), ("iptables", "iptables")):
        if shutil.which(tool) is None:
            raise HostsUnavailable(f"network chaos needs `{tool}` on PATH (apt-get install {package})")
    probe = f"{PREFIX}probe-{secrets.token_hex(3)}"
    try:
        made = run_command(["ip", "netns", "add", probe], check=False)
        if made.returncode != 0:
            raise HostsUnavailable(f"network namespaces are not permitted here: {made.stderr.strip()}")
        tried = run_command(["ip", "netns", "exec", probe, "iptables", "-w", "-S"], check=False)
        if tried.returncode != 0:
            raise HostsUnavailable(f"iptables does not work inside a network namespace: "
                                   f"{(tried.stderr or tried.stdout).strip()}")
        veth = run_command(["ip", "-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1"], check=False)
        if veth.returncode != 0:
            raise HostsUnavailable(f"veth pairs cannot be made here: {veth.stderr.strip()}")
    except ChaosError as e:
        if isinstance(e, HostsUnavailable):
            raise
        raise HostsUnavailable(str(e)) from None
    finally:
        run_command(["ip", "netns", "del", probe], check=False)


class TestHosts:
    """The run's hosts, as a context manager: made on entry, torn down on exit (also on an
    exception or KeyboardInterrupt). `create` and `teardown` are also safe to call twice."""

    __test__ = False  # not a pytest class

    def __init__(self, run_id: str | None = None, services: Sequence[str] = NAMES) -> None:
        """`services`: a host each (default: the chaos cluster's five); a name is one of
        HOST_NUMBERS'."""
        self.run_id = run_id or secrets.token_hex(2)
        if not RUN_ID.fullmatch(self.run_id):
            raise ValueError(f"a run id is four hex digits, got {self.run_id!r}")
        unknown = [name for name in services if name not in HOST_NUMBERS]
        if unknown or len(set(services)) != len(services):
            raise ValueError(f"test hosts are distinct names of {', '.join(HOST_NUMBERS)}, got {list(services)}")
        self.services = tuple(services)
        self.names = run_names(self.run_id, self.services)
        self.octet: int | None = None

    # -- what the cluster asks -----------------------------------------------------------------

    def netns(self, name: str) -> str:
        return self.names[name]

    def address(self, name: str) -> str:
        if self.octet is None:
            raise ChaosError("the test hosts have not been made")
        return host_address(self.octet, name)

    def command_prefix(self, name: str) -> list[str]:
        return ["ip", "netns", "exec", self.names[name]]

    def hosts(self) -> list[Host]:
        return [*(Host(n, self.names[n], self.address(n)) for n in self.services),
                Host(CLIENT, None, self.address(CLIENT))]

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        if self.octet is None:
            raise ChaosError("the test hosts have not been made")
        return subnet(self.octet)

    def describe(self) -> str:
        return f"test hosts {PREFIX}{self.run_id}-* on {self.subnet}"

    # -- making and removing -----------------------------------------------------------------

    def __enter__(self) -> TestHosts:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def create(self) -> None:
        if self.octet is not None and self.exists():
            return
        try:
            self.octet = self._claim()
            existing = set(namespaces())
            for argv in creation_commands(self.run_id, self.octet, self.services):
                if argv[:3] == ["ip", "netns", "add"] and argv[3] in existing:
                    continue  # idempotent: made by an earlier call
                run_command(argv)
        except BaseException:
            self.teardown()
            raise

    def exists(self) -> bool:
        present = set(namespaces())
        return all(ns in present for ns in self.names.values()) and root_link(self.run_id) in root_links()

    def teardown(self) -> None:
        """Kill what runs inside, delete the namespaces and the root veth, drop the claim. Never
        raises for something already gone."""
        remove_run(self.run_id)
        self.octet = None

    def _claim(self) -> int:
        CLAIMS.mkdir(parents=True, exist_ok=True)
        with open(CLAIMS / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            mine = CLAIMS / self.run_id
            if mine.exists():
                with suppress(OSError, ValueError):
                    pid_text, octet_text = mine.read_text().split()
                    if int(pid_text) == os.getpid():
                        return int(octet_text)
                raise ChaosError(f"run id {self.run_id} is already in use ({mine})")
            used = _used_octets()
            free = next((k for k in range(0, 255) if k not in used), None)
            if free is None:
                raise ChaosError(f"no free /24 left in {SUBNET_BASE}.0.0/16")
            mine.write_text(f"{os.getpid()} {free}\n")
            return free


def _kill_inside(netns: str) -> None:
    out = run_command(["ip", "netns", "pids", netns], check=False).stdout
    for pid in (int(p) for p in out.split() if p.isdigit()):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)


def remove_run(run_id: str) -> None:
    """Remove one run's hosts, whatever is left of them: every namespace named for the run,
    however many services it had."""
    mine = [ns for ns in namespaces() if ns.startswith(f"{PREFIX}{run_id}-")]
    for ns in mine:
        _kill_inside(ns)
    if root_link(run_id) in root_links():
        run_command(["ip", "link", "del", root_link(run_id)], check=False)
    for ns in mine:
        run_command(["ip", "netns", "del", ns], check=False)
    with suppress(FileNotFoundError):
        (CLAIMS / run_id).unlink()


def leftover_runs() -> list[str]:
    """Run ids whose hosts (namespaces, root veth or claim) are still there but whose owner is
    gone."""
    live = {run_id for run_id, pid, _ in _claims() if _alive(pid)}
    seen = {run_id for run_id, _, _ in _claims()}
    pattern = re.compile(rf"{re.escape(PREFIX)}([0-9a-f]{{4}})-")
    seen.update(m.group(1) for m in map(pattern.match, namespaces()) if m)
    seen.update(m.group(1) for m in (re.fullmatch(r"bz([0-9a-f]{4})", n) for n in root_links()) if m)
    return sorted(seen - live)


def remove_leftovers() -> list[str]:
    """Remove the hosts of every earlier run whose owner is gone; returns their ids."""
    removed = leftover_runs()
    for run_id in removed:
        remove_run(run_id)
    return removed


def in_namespace(netns: str | None, argv: Iterable[str]) -> list[str]:
    """`argv` run inside `netns` (None: the root namespace)."""
    return list(argv) if netns is None else ["ip", "netns", "exec", netns, *argv]


__all__ = ["HostsUnavailable", "TestHosts", "Host", "check_available", "remove_leftovers", "leftover_runs",
           "remove_run", "namespaces", "root_links", "CLIENT"]
