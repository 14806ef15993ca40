"""A real Bazaar cluster for tests: five twistd processes on free loopback ports.

Every process is stopped at teardown whatever the test did; waits poll a condition against a
deadline instead of sleeping.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


import tomli_w

from bazaar.chaos.processes import free_ports, stop_children
from bazaar.config import load_config
from bazaar.tls.client import ClusterHTTPSConnection
from bazaar.tls.identity import frontend_name, replica_name
from bazaar.tools.cluster import find_twistd, make_certificates, operator_channel
from bazaar.v1 import order_pb2, order_pb2_grpc

STARTUP_DEADLINE = 30.0
REPLICA_IDS = (1, 2, 3)


def twistd() -> str:
    return find_twistd()


def wait_for(condition: Callable[[], Any], deadline: float = STARTUP_DEADLINE, what: str = "") -> Any:
    end = time.monotonic() + deadline
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline}s waiting for {what or condition}")
        time.sleep(0.02)  # polling interval, not a synchronisation guess


@contextmanager
def running(root: Path, **kwargs: Any) -> Iterator["Cluster"]:
    """A started cluster under `root`; every process is stopped afterwards, whatever happened."""
    c = Cluster(root, **kwargs)
    try:
        c.start_all()
        yield c
    finally:
        c.stop_all()


class Response:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<{self.status} {self.body[:200]!r}>"


class Cluster:
    def __init__(self, root: Path, cache: bool = True, cache_size: int = 8, frontends: int = 1,
                 frontend_settings: dict[str, Any] | None = None, log_format: str = "text",
                 settings: dict[str, Any] | None = None) -> None:
        """`frontends` front ends (named frontend, frontend-2, ...), all in the one config;
        `frontend_settings`: more keys of [frontend]; `log_format`: every process's;
        `settings`: more tables of the file ({"replication": {...}})."""
        self.root = root
        self.log_format = log_format
        root.mkdir(parents=True, exist_ok=True)
        ports = iter(free_ports(2 * len(REPLICA_IDS) + 2 + 3 * frontends))
        self.catalog_port = next(ports)
        self.replica_ports = {i: next(ports) for i in REPLICA_IDS}
        self.frontend_ids = {frontend_name(i): i for i in range(1, frontends + 1)}
        self.frontend_ports = {name: next(ports) for name in self.frontend_ids}
        self.internal_ports = {name: next(ports) for name in self.frontend_ids}
        self.frontend_port, self.internal_port = self.frontend_ports["frontend"], self.internal_ports["frontend"]
        names = ["catalog", *(replica_name(i) for i in REPLICA_IDS), *self.frontend_ids]
        self.metrics_ports = {name: next(ports) for name in names}
        self.config = root / "bazaar.toml"
        here = "127.0.0.1:{}".format
        extra = settings
        settings = {
            "data_dir": "data",
            "catalog": {"address": here(self.catalog_port), "metrics": here(self.metrics_ports["catalog"])},
            "frontend": {"cache": cache, "cache_size": cache_size, **(frontend_settings or {})},
            "frontends": {
                str(i): {"address": here(self.frontend_ports[name]), "internal": here(self.internal_ports[name]),
                         "metrics": here(self.metrics_ports[name])}
                for name, i in self.frontend_ids.items()
            },
            "replicas": {
                str(i): {"address": here(p), "metrics": here(self.metrics_ports[replica_name(i)])}
                for i, p in self.replica_ports.items()
            },
        }
        self.config.write_text(tomli_w.dumps({**settings, **(extra or {})}))
        make_certificates(load_config(self.config), say=lambda _: None)
        self.processes: dict[str, subprocess.Popen] = {}

    # -- processes ---------------------------------------------------------------------------

    def command(self, name: str) -> list[str]:
        if name.startswith("order-"):
            plugin = ["bazaar-order", "--id", name.split("-")[1]]
        elif name in self.frontend_ids:
            plugin = ["bazaar-frontend", "--id", str(self.frontend_ids[name])]
        else:
            plugin = [f"bazaar-{name}"]
        log = self.root / f"{name}.log"
        return [twistd(), "-n", "--logfile", str(log), "--pidfile", "", *plugin, "--config", str(self.config),
                "--log-format", self.log_format]

    def port(self, name: str) -> int:
        if name.startswith("order-"):
            return self.replica_ports[int(name.split("-")[1])]
        if name in self.frontend_ids:
            return self.frontend_ports[name]
        return {"catalog": self.catalog_port}[name]

    def start(self, name: str) -> None:
        """Start one process and wait until it accepts connections."""
        assert name not in self.processes or self.processes[name].poll() is not None, f"{name} runs"
        self.processes[name] = subprocess.Popen(
            self.command(name), cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )

        def listening() -> bool:
            self.check_alive()
            with closing(socket.socket()) as s:
                return s.connect_ex(("127.0.0.1", self.port(name))) == 0

        wait_for(listening, what=f"{name} to listen")

    def start_all(self) -> None:
        # In this order, so the front end's first selection sees every replica.
        for name in ["catalog", *(f"order-{i}" for i in REPLICA_IDS), *self.frontend_ids]:
            self.start(name)
        self.wait_ready()

    def wait_ready(self) -> None:
        def ready() -> bool:
            self.check_alive()
            try:
                return self.get("/readyz").status == 200
            except OSError:
                return False

        wait_for(ready, what="the front end to be ready (a leader with a majority, the catalog)")

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None and process.returncode not in (-signal.SIGKILL, -signal.SIGTERM, 0):
                raise AssertionError(f"{name} exited with {process.returncode}:\n{self.log(name)[-3000:]}")

    def signal(self, name: str, sig: int) -> None:
        self.processes[name].send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.processes[name].wait(10)

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> list[str]:
        """SIGTERM to every process, SIGKILL to any still there 10 s later; the names killed."""
        return stop_children(self.processes, deadline=10.0)

    def leader_id(self) -> int:
        address = self.get("/leader").json["data"]["leader"]
        port = int(address.rsplit(":", 1)[1])
        return next(i for i, p in self.replica_ports.items() if p == port)

    # -- HTTP --------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None, timeout: float = 10.0, frontend: str = "frontend") -> Response:
        if isinstance(body, str):
            body = body.encode()
        with closing(http.client.HTTPConnection("127.0.0.1", self.port(frontend), timeout=timeout)) as conn:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return Response(r.status, r.read(), dict(r.getheaders()))

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def internal_get(self, path: str, as_name: str = "operator", frontend: str = "frontend") -> Response:
        """GET on a front end's internal listener, showing `as_name`'s certificate."""
        config = load_config(self.config)
        internal = config.frontend_address(self.frontend_ids[frontend]).internal
        with closing(ClusterHTTPSConnection(config, as_name, frontend, internal)) as conn:
            conn.request("GET", path)
            r = conn.getresponse()
            return Response(r.status, r.read(), dict(r.getheaders()))

    def post_order(self, name: str, quantity: Any, type_: Any, frontend: str = "frontend") -> Response:
        body = json.dumps({"name": name, "quantity": quantity, "type": type_})
        return self.request("POST", "/orders", body, {"Content-Type": "application/json"}, frontend=frontend)

    def describe(self, replica_id: int) -> order_pb2.DescribeResponse:
        """What replica `replica_id` says of itself (role, epoch, leader, reachable peers)."""
        with operator_channel(load_config(self.config), f"127.0.0.1:{self.replica_ports[replica_id]}") as channel:
            return order_pb2_grpc.OrderServiceStub(channel).Describe(order_pb2.DescribeRequest(), timeout=5)

    def stock(self, name: str) -> dict[str, Any]:
        r = self.get(f"/stocks/{name}")
        assert r.status == 200, r
        return r.json["data"]

    # -- replicas' logs ------------------------------------------------------------------------

    def dump_orders(self, replica_id: int) -> list[dict[str, Any]]:
        out = subprocess.run(
            [sys.executable, "-m", "bazaar", "dump-orders", "--config", str(self.config),
             "--id", str(replica_id)],
            capture_output=True, text=True, check=True, cwd=self.root,
            env={**os.environ},
        ).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]
