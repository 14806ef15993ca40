"""The multi-host recipe of docs/deploy.md, run for real: one host per process on network
namespaces (bazaar/chaos/hosts.py), the trading clients on the root namespace's client host.

The topology is deploy/bazaar.toml's (the catalog, three replicas, two front ends, each on every
interface of its own host with its metrics there too), its host names replaced by the hosts'
addresses. The certificates are made once in an admin folder, and each host gets ca.pem and its
own certificate and key only (the client host the operator's); ca.key stays in the admin folder.
Each process runs with its systemd unit's command (deploy/systemd), its paths pointing into its
host's folder. Then: every process ready, trades through both front ends at once, one front end
killed while the other trades and started again, and every acknowledged trade found through
either front end.

Needs root and iproute2 (CI runs as root); skips with the reason elsewhere. Every process is
stopped and the hosts are removed at the end, also on failure.
"""

from __future__ import annotations

import configparser
import http.client
import json
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from bazaar.chaos import hosts
from bazaar.chaos.processes import NAMES, stop_children
from bazaar.config import load_config
from bazaar.tls.identity import OPERATOR, identity_of
from bazaar.tools.cluster import child_environment, find_twistd
from tests.integration.cluster import wait_for as until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("test_hosts_available")]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVICES = (*NAMES, "frontend-2")  # seven hosts with the client's
START_DEADLINE = 40.0  # seconds for every process to be ready
STOP_DEADLINE = 10.0
HTTP_TIMEOUT = 10.0
STOCK = "tesla"
# Until the metrics endpoint is on main, no process serves GET /metrics.
METRICS = False


# ---- the recipe: configuration, certificates, commands ---------------------------------------


def host_config(h: hosts.TestHosts) -> dict[str, Any]:
    """deploy/bazaar.toml with each host's name replaced by that host's address; data and
    certificates beside each host's copy of the file."""
    raw = tomllib.loads((DEPLOY / "bazaar.toml").read_text())
    deployed = load_config(DEPLOY / "bazaar.toml")
    address_of = {address.host: h.address(name) for name, address in deployed.addresses_of().items()}
    assert sorted(deployed.addresses_of()) == sorted(SERVICES)

    def moved(text: str) -> str:
        host, _, port = text.rpartition(":")
        return f"{address_of[host]}:{port}"

    raw["data_dir"] = "data"
    raw["catalog"]["address"] = moved(raw["catalog"]["address"])
    for table in raw["replicas"].values():
        table["address"] = moved(table["address"])
    for table in raw["frontends"].values():
        table["address"], table["internal"] = moved(table["address"]), moved(table["internal"])
    assert raw["tls"]["dir"] == "certs"  # each host's own folder, beside its file
    return raw


def hand_out_certificates(root: Path, text: str) -> dict[str, Path]:
    """`bazaar certs` once in root/admin, then each host's folder with its files only; the
    client host's with the operator's. Each host's bazaar.toml, by name (and "client")."""
    admin = root / "admin"
    admin.mkdir()
    (admin / "bazaar.toml").write_text(text)
    made = subprocess.run([sys.executable, "-m", "bazaar", "certs", "--config", str(admin / "bazaar.toml")],
                          capture_output=True, text=True, env=child_environment(), timeout=60)
    assert made.returncode == 0, made.stderr
    configs = {}
    for name in (*SERVICES, "client"):
        folder = root / name
        (folder / "certs").mkdir(parents=True)
        own = OPERATOR if name == "client" else name
        for file in ("ca.pem", f"{own}.pem", f"{own}.key"):
            shutil.copy2(admin / "certs" / file, folder / "certs" / file)  # keeps the key's mode 0600
        (folder / "bazaar.toml").write_text(text)
        configs[name] = folder / "bazaar.toml"
    assert (admin / "certs" / "ca.key").is_file()
    assert not [p for p in root.glob("*/certs/ca.key") if p.parent.parent != admin]
    return configs


def unit_command(name: str, config: Path) -> list[str]:
    """The ExecStart of `name`'s systemd unit, with this machine's twistd and `config`."""
    identity = identity_of(name)
    unit, instance = {"catalog": ("bazaar-catalog.service", "")}.get(name) or (
        ("bazaar-order@.service", str(identity.replica_id)) if name.startswith("order-")
        else ("bazaar-frontend@.service", str(identity.frontend_id)))
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read(DEPLOY / "systemd" / unit)
    argv = shlex.split(parser["Service"]["ExecStart"].replace("%i", instance))
    assert argv[0] == "/opt/bazaar/bin/twistd" and "/etc/bazaar/bazaar.toml" in argv
    return [find_twistd(), *(str(config) if a == "/etc/bazaar/bazaar.toml" else a for a in argv[1:])]


class Deployment:
    """The running processes, one per host, and what the client host asks them."""

    def __init__(self, h: hosts.TestHosts, root: Path, configs: dict[str, Path]) -> None:
        self.h, self.root, self.configs = h, root, configs
        self.config = load_config(configs["client"])
        self.children: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> None:
        old = self.children.get(name)
        assert old is None or old.poll() is not None, f"{name} runs"
        with open(self.root / name / f"{name}.log", "ab") as log:
            self.children[name] = subprocess.Popen(
                [*self.h.command_prefix(name), *unit_command(name, self.configs[name])],
                cwd=self.root / name, env=child_environment(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

    def check_alive(self) -> None:
        for name, child in self.children.items():
            if child.poll() is not None and child.returncode != -signal.SIGKILL:
                log = (self.root / name / f"{name}.log").read_text(errors="replace")
                raise AssertionError(f"{name} exited with {child.returncode}:\n{log[-3000:]}")

    def stop_all(self) -> None:
        stop_children(self.children, STOP_DEADLINE)

    # -- readiness ---------------------------------------------------------------------------

    def probe(self, name: str, on: str | None = None, as_name: str | None = None) -> subprocess.CompletedProcess:
        """`bazaar probe NAME` on host `on` (default: NAME's own, with its configuration)."""
        on = on or name
        prefix = self.h.command_prefix(on) if on != "client" else []
        argv = [*prefix, sys.executable, "-m", "bazaar", "probe", "--config", str(self.configs[on]), name]
        return subprocess.run(argv + (["--as", as_name] if as_name else []), capture_output=True, text=True,
                              env=child_environment(), timeout=30)

    def serving(self, name: str) -> bool:
        self.check_alive()
        return self.probe(name).returncode == 0

    def ready(self, frontend: str) -> bool:
        self.check_alive()
        return self.probe(frontend, on="client").returncode == 0  # GET /readyz

    # -- HTTP from the client host -------------------------------------------------------------

    def request(self, frontend: str, method: str, path: str, body: Any = None) -> http.client.HTTPResponse:
        address = self.config.frontend_address(identity_of(frontend).frontend_id).address
        with closing(http.client.HTTPConnection(self.h.address(frontend), address.port, timeout=HTTP_TIMEOUT)) as c:
            c.request(method, path, body=None if body is None else json.dumps(body),
                      headers={"Content-Type": "application/json"})
            response = c.getresponse()
            response.data = response.read()
            return response

    def get(self, frontend: str, path: str) -> tuple[int, Any]:
        response = self.request(frontend, "GET", path)
        return response.status, json.loads(response.data)

    def leader(self, frontend: str) -> str:
        status, body = self.get(frontend, "/leader")
        assert status == 200, body
        return body["data"]["leader"]


class Trader(threading.Thread):
    """Trades one share of STOCK at a time through one front end, a sell then a buy, until
    `count` trades or `stop`; keeps every answer."""

    def __init__(self, d: Deployment, frontend: str, count: int, stop: threading.Event | None = None) -> None:
        super().__init__(daemon=True)
        self.d, self.frontend, self.count, self.stop = d, frontend, count, stop or threading.Event()
        self.answers: list[tuple[str, int, Any]] = []  # (type, status, body)

    def run(self) -> None:
        for i in range(self.count):
            if self.stop.is_set():
                return
            kind = ("sell", "buy")[i % 2]
            try:
                response = self.d.request(self.frontend, "POST", "/orders",
                                          {"name": STOCK, "quantity": 1, "type": kind})
                self.answers.append((kind, response.status, json.loads(response.data)))
            except OSError as e:
                self.answers.append((kind, 0, str(e)))

    def acknowledged(self) -> dict[int, str]:
        """Transaction number -> type, of every trade answered 200."""
        return {body["data"]["transaction_number"]: kind for kind, status, body in self.answers if status == 200}

    def refused(self) -> list[tuple[str, int, Any]]:
        return [a for a in self.answers if a[1] != 200]


def trade_at_once(*traders: Trader) -> None:
    for t in traders:
        t.start()
    for t in traders:
        t.join(HTTP_TIMEOUT * t.count)
        assert not t.is_alive(), f"the trader on {t.frontend} did not finish"


# ---- the test ----------------------------------------------------------------------------------


def test_the_deployment_recipe_on_seven_hosts(tmp_path):
    started = time.monotonic()
    with hosts.TestHosts(services=SERVICES) as h:
        text = tomli_w.dumps(host_config(h))
        configs = hand_out_certificates(tmp_path, text)
        for name in SERVICES:  # each host holds ca.pem and its own pair only
            assert sorted(p.name for p in (tmp_path / name / "certs").iterdir()) == sorted(
                ["ca.pem", f"{name}.pem", f"{name}.key"])
        d = Deployment(h, tmp_path, configs)
        try:
            run(d)
        finally:
            d.stop_all()
    print(f"deployment test: {time.monotonic() - started:.1f} s")


def run(d: Deployment) -> None:
    # Start order: the catalog, the replicas, the front ends; each tier ready before the next.
    d.start("catalog")
    until(lambda: d.serving("catalog"), START_DEADLINE, "the catalog to report SERVING")
    replicas = [f"order-{i}" for i in sorted(d.config.replicas)]
    for name in replicas:
        d.start(name)
    for name in replicas:
        until(lambda: d.serving(name), START_DEADLINE, f"{name} to report SERVING")
    frontends = ["frontend", "frontend-2"]
    for name in frontends:
        d.start(name)
    for name in frontends:
        until(lambda: d.ready(name), START_DEADLINE, f"{name} to find a leader")

    # The operator's probe from the client host, with the operator's certificate; and a probe
    # showing a certificate its host does not hold fails there.
    assert d.probe("order-2", on="client", as_name=OPERATOR).returncode == 0
    wrong = d.probe("order-1", on="order-2", as_name="order-1")
    assert wrong.returncode == 1 and "no TLS credentials for order-1" in wrong.stderr

    leader = d.leader("frontend")
    assert d.leader("frontend-2") == leader and leader in {str(a) for a in d.config.replicas.values()}
    if METRICS:  # on every interface of each host (deploy/bazaar.toml), so the client host scrapes it
        for name in ["catalog", *replicas, *frontends]:
            metrics = d.config.metrics_address(name)
            with closing(http.client.HTTPConnection(d.h.address(name), metrics.port, timeout=HTTP_TIMEOUT)) as c:
                c.request("GET", "/metrics")
                assert c.getresponse().status == 200, name
    _, before = d.get("frontend", f"/stocks/{STOCK}")

    # Both front ends at once.
    both = [Trader(d, "frontend", 20), Trader(d, "frontend-2", 20)]
    trade_at_once(*both)
    assert [t.refused() for t in both] == [[], []]

    # Front end 2 killed while front end 1 trades, then started again: front end 1 never fails.
    stop = threading.Event()
    through_one = Trader(d, "frontend", 2000, stop)
    through_one.start()
    try:
        until(lambda: len(through_one.answers) >= 5, START_DEADLINE, "trades through front end 1")
        d.children["frontend-2"].send_signal(signal.SIGKILL)
        d.children["frontend-2"].wait(STOP_DEADLINE)
        at_kill = len(through_one.answers)
        with pytest.raises(OSError):
            d.request("frontend-2", "GET", "/leader")
        until(lambda: len(through_one.answers) >= at_kill + 5, START_DEADLINE,
              "trades through front end 1 while front end 2 is down")
        d.start("frontend-2")
        until(lambda: d.ready("frontend-2"), START_DEADLINE, "front end 2 to find a leader again")
    finally:
        stop.set()
        through_one.join(HTTP_TIMEOUT * 2)
    assert not through_one.is_alive() and through_one.refused() == []
    assert d.leader("frontend-2") == d.leader("frontend") == leader  # a returning front end keeps the leader

    again = [Trader(d, "frontend", 10), Trader(d, "frontend-2", 10)]
    trade_at_once(*again)
    assert [t.refused() for t in again] == [[], []]

    # No acknowledged trade is lost: each number is one trade, found as it was placed on both
    # front ends; and both show the stock the trades left (the leader's invalidations reach both).
    traders = [*both, through_one, *again]
    acknowledged: dict[int, str] = {}
    for t in traders:
        mine = t.acknowledged()
        assert not set(mine) & set(acknowledged), "a transaction number was given twice"
        acknowledged.update(mine)
    assert len(acknowledged) == sum(len(t.answers) for t in traders) >= 60
    for number, kind in sorted(acknowledged.items()):
        for frontend in ("frontend", "frontend-2"):
            status, body = d.get(frontend, f"/orders/{number}")
            assert status == 200 and body["data"] == {"number": number, "name": STOCK, "type": kind, "quantity": 1}, (
                frontend, number, body)
    sells = sum(kind == "sell" for kind in acknowledged.values())
    expected = before["data"]["quantity"] + sells - (len(acknowledged) - sells)
    for frontend in ("frontend", "frontend-2"):
        until(lambda: d.get(frontend, f"/stocks/{STOCK}")[1]["data"]["quantity"] == expected, START_DEADLINE,
              f"{frontend} to show {STOCK} at {expected}")
    d.check_alive()
