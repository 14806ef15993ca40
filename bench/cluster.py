"""The bench's clusters: the chaos harness's five foreground twistd children (ChaosCluster),
started in any subset and order, plus what the bench asks of them, and the bare Klein server.
Every wait polls a condition against a deadline (chaos's wait_for)."""

from __future__ import annotations

import http.client
import json
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.process_collector import ProcessCollector

from bazaar.chaos.processes import FRONTEND, ChaosCluster, free_ports, listening, replica_name, wait_for
from bazaar.tools.cluster import ClusterError, operator_channel
from bazaar.config import load_config
from bazaar.frontend.backends import ORDER_SERVICE_NAME
from bazaar.order.store import OrderStore

BARE_TAC = Path(__file__).resolve().parent / "bare.tac"

HTTP_TIMEOUT = 5.0


class BenchError(ClusterError):
    """A cluster did not get where the bench needs it; the message says where it stuck."""


def http_request(port: int, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)) as conn:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()


class BenchCluster(ChaosCluster):
    def __init__(self, root: Path, insecure: bool = False) -> None:
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(root, insecure=insecure)
        self.config = load_config(self.config_path)

    @property
    def frontend_port(self) -> int:
        return self.ports[FRONTEND]

    def catalog_dir(self) -> Path:
        return self.config.service_dir("catalog")

    def replica_dir(self, replica_id: int) -> Path:
        return self.config.replica_dir(replica_id)

    def start(self, names: list[str], deadline: float = 30.0) -> None:
        """Start `names` in order, each once the one before listens."""
        for name in names:
            self.spawn(name)
            wait_for(lambda: self.is_up(name), deadline, f"{name} to listen on port {self.ports[name]}")

    def wait_leader(self, deadline: float = 30.0) -> int:
        return wait_for(self.leader_id, deadline, "the front end to find a leader")

    def leader_id(self) -> int | None:
        # Every process, not the front end alone: a replica that died (it could not listen, say)
        # is reported with its log, not waited for until the deadline.
        for name in self.children:
            self.check_alive(name)
        try:
            status, _, body = http_request(self.frontend_port, "GET", "/leader")
        except OSError:
            return None
        if status != 200:
            return None
        return self.replica_id_at(json.loads(body)["data"]["leader"])

    def serving(self, replica_id: int) -> bool:
        """The replica's health says SERVING: its rejoin is over and the leader feeds it."""
        name = replica_name(replica_id)
        self.check_alive(name)
        with operator_channel(self.config, f"127.0.0.1:{self.ports[name]}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                answer = stub.Check(health_pb2.HealthCheckRequest(service=ORDER_SERVICE_NAME), timeout=1.0)
            except grpc.RpcError:
                return False
        return answer.status == health_pb2.HealthCheckResponse.SERVING

    def order_count(self, replica_id: int) -> int:
        """Trades in the replica's log on disk, committed or not, read-only beside the replica."""
        return log_count(self.replica_dir(replica_id))

    def pid(self, name: str) -> int:
        return self.children[name].pid

    def metric(self, name: str, sample: str, **labels: str) -> float:
        """The sum of process `name`'s samples called `sample` with these labels (0 when its
        /metrics cannot be read)."""
        where = self.config.metrics_address(name)
        if where is None:
            return 0.0
        try:
            status, _, body = http_request(where.port, "GET", "/metrics")
        except OSError:
            return 0.0
        return metric_sum(body.decode("utf-8", "replace"), sample, labels) if status == 200 else 0.0

    def cpu(self) -> dict[str, float | None]:
        """Each running process's CPU seconds so far, user plus system (None: gone, or no /proc)."""
        return {name: cpu_seconds(child.pid) if child.poll() is None else None
                for name, child in self.children.items()}

    def resident(self) -> dict[str, int | None]:
        """Each running process's resident memory in bytes (None: gone, or no /proc)."""
        return {name: resident_bytes(child.pid) if child.poll() is None else None
                for name, child in self.children.items()}


def metric_sum(text: str, sample: str, labels: dict[str, str]) -> float:
    """The sum of the samples called `sample` whose labels include `labels`, in Prometheus's
    text format."""
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()))


def parse_vm_rss(status: str) -> int | None:
    """Resident memory in bytes from the text of /proc/<pid>/status ("VmRSS:  12345 kB")."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                unit = fields[2].lower() if len(fields) > 2 else "kb"
                return int(fields[1]) * {"kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3}.get(unit, 1)
    return None


def resident_bytes(pid: int) -> int | None:
    try:
        return parse_vm_rss(Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None


def cpu_seconds(pid: int, proc: str = "/proc") -> float | None:
    """User plus system CPU seconds that process `pid` has spent, as its own
    process_cpu_seconds_total says (None: gone, or no /proc). Read from outside with
    prometheus_client's collector, so the reading costs the measured process nothing."""
    families = ProcessCollector(pid=lambda: pid, proc=proc, registry=None).collect()
    return next((f.samples[0].value for f in families if f.name == "process_cpu_seconds"), None)


def log_count(directory: Path) -> int:
    """The number of trades in the log in `directory`: its last entry's `number` + 1, whatever
    kind that entry is (bazaar.core.chain.Record), found by the primary key alone."""
    path = directory / OrderStore.FILENAME
    if not path.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=1.0)) as conn:
            row = conn.execute("SELECT number FROM log ORDER BY idx DESC LIMIT 1").fetchone()
    except sqlite3.Error:  # created but no table yet
        return 0
    return 0 if row is None else row[0] + 1


class BareServer:
    """The bare Klein baselines (bare.tac) in their own twistd: GET /stocks/<name> answering
    `stock_body`, GET /orders/<number> answering `order_body`, and POST /orders parsing the
    body as a trade and answering as one."""

    def __init__(self, cluster: BenchCluster, stock_body: bytes, order_body: bytes, content_type: str) -> None:
        self.port = free_ports(1)[0]
        env = {**cluster.env, "BENCH_BARE_PORT": str(self.port), "BENCH_BARE_CONTENT_TYPE": content_type}
        for variable, name, body in (("BENCH_BARE_BODY", "bare-stock-body", stock_body),
                                     ("BENCH_BARE_ORDER_BODY", "bare-order-body", order_body)):
            (cluster.root / name).write_bytes(body)
            env[variable] = str(cluster.root / name)
        self.process = subprocess.Popen(
            [cluster.twistd, "-n", "--logfile", str(cluster.root / "bare.log"), "--pidfile", "",
             "-y", str(BARE_TAC)],
            cwd=cluster.root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

        def up() -> bool:
            if self.process.poll() is not None:
                raise BenchError(f"the bare Klein server exited with status {self.process.returncode}; "
                                 f"see {cluster.root / 'bare.log'}")
            return listening(self.port)

        wait_for(up, 30.0, "the bare Klein server to listen")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
