"""`bazaar probe NAME`: exit 0 when the process is ready, 1 and one line on stderr otherwise.

The answers of a front end's /readyz and of a gRPC health service are stood in for; a refused
connection is real (a loopback port bound but never listening)."""

import io
import json
import textwrap
import urllib.error

import grpc
import pytest
from grpc_health.v1 import health_pb2

from bazaar.config import load_config
from bazaar.rpc.names import CATALOG_SERVICE, ORDER_SERVICE
from bazaar.tls import certs
from bazaar.tools import cluster, probe
from bazaar.tools.cli import main
from tests.unit.ports import refusing_ports


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def closed_ports():
    """Two loopback ports that refuse connections for the test's duration."""
    with refusing_ports(2) as ports:
        yield ports


@pytest.fixture
def closed_port(closed_ports):
    return closed_ports[0]


@pytest.fixture
def config_file(tmp_path, closed_ports):
    path = tmp_path / "bazaar.toml"
    path.write_text(textwrap.dedent(f"""
        data_dir = "data"
        [tls]
        dir = "certs"
        [catalog]
        address = "127.0.0.1:{closed_ports[0]}"
        [frontends.1]
        address = "127.0.0.1:{closed_ports[1]}"
        internal = "127.0.0.1:7002"
        [frontends.2]
        address = "fe2.example:56893"
        internal = "fe2.example:56897"
        listen = "0.0.0.0"
    """))
    return path


class Answer:
    def __init__(self, status):
        self.status = status

    def read(self):
        return json.dumps({"data": {"ready": True, "leader": 3, "missing": []}}).encode()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def answering(monkeypatch, status, body=None):
    """The front end answers every GET with `status` (and `body`, a JSON document); the URLs asked."""
    asked = []

    class Opener:
        def open(self, url, timeout):
            asked.append((url, timeout))
            if status == 200:
                return Answer(200)
            raise urllib.error.HTTPError(url, status, "", {}, io.BytesIO(json.dumps(body).encode() if body else b""))

    monkeypatch.setattr(cluster, "_opener", lambda config: Opener())
    return asked


def test_a_ready_front_end_is_exit_0_from_its_public_readyz(capsys, monkeypatch, config_file):
    asked = answering(monkeypatch, 200)
    assert run(capsys, "probe", "--config", str(config_file), "frontend-2", "--timeout", "1.5") == (
        0, "http://fe2.example:56893/readyz: 200\n", "")
    assert asked == [("http://fe2.example:56893/readyz", 1.5)]


def test_a_front_end_without_a_leader_is_exit_1_saying_what_is_missing(capsys, monkeypatch, config_file):
    answering(monkeypatch, 503, {"error": {"code": 503, "message": "not ready", "missing": ["leader", "catalog"]}})
    code, out, err = run(capsys, "probe", "--config", str(config_file), "frontend-2")
    assert (code, out) == (1, "")
    assert err == "bazaar probe: http://fe2.example:56893/readyz: 503 not ready (missing: leader, catalog)\n"


def test_a_front_end_without_readyz_is_not_ready(capsys, monkeypatch, config_file):
    answering(monkeypatch, 404, {"error": {"code": 404, "message": "not found"}})
    assert run(capsys, "probe", "--config", str(config_file), "frontend-2") == (
        1, "", "bazaar probe: http://fe2.example:56893/readyz: 404 not found\n")


def test_a_front_end_that_refuses_connections_is_not_ready(capsys, config_file, closed_ports):
    code, out, err = run(capsys, "probe", "--config", str(config_file), "frontend")
    assert (code, out) == (1, "")
    assert err.startswith(f"bazaar probe: http://127.0.0.1:{closed_ports[1]}/readyz: ") and err.count("\n") == 1
    assert "refused" in err.lower()


class FakeHealth:
    """Stands in for the gRPC health stub: answers `status`, or raises `error`."""

    asked: list = []

    def __init__(self, status=None, error=None):
        self.status, self.error = status, error

    def __call__(self, channel):
        return self

    def Check(self, request, timeout):
        FakeHealth.asked.append((request.service, timeout))
        if self.error is not None:
            raise self.error
        return health_pb2.HealthCheckResponse(status=self.status)


class Unavailable(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return "failed to connect to all addresses\nmore"


@pytest.mark.parametrize("status, error, code, said", [
    (health_pb2.HealthCheckResponse.SERVING, None, 0, "SERVING"),
    (health_pb2.HealthCheckResponse.NOT_SERVING, None, 1, "NOT_SERVING"),
    (None, Unavailable(), 1, "UNAVAILABLE: failed to connect to all addresses"),
])
def test_a_replica_is_ready_when_its_order_service_is_serving(capsys, monkeypatch, config_file, status, error, code,
                                                              said):
    certs.make_certificates(config_file.parent / "certs", ["order-1", "catalog", "operator"])
    monkeypatch.setattr(probe.health_pb2_grpc, "HealthStub", FakeHealth(status, error))
    FakeHealth.asked = []
    got, out, err = run(capsys, "probe", "--config", str(config_file), "order-1")
    line = f"order-1 at 127.0.0.1:56894: {said}\n"
    assert (got, out, err) == ((0, line, "") if code == 0 else (1, "", f"bazaar probe: {line}"))
    assert FakeHealth.asked == [(ORDER_SERVICE, probe.DEFAULT_TIMEOUT)]


def test_the_catalog_is_asked_for_the_catalog_service_with_the_certificate_given(capsys, monkeypatch, config_file):
    certs.make_certificates(config_file.parent / "certs", ["operator"])
    dialled_as = []
    real = probe.Transport.for_process
    monkeypatch.setattr(probe.Transport, "for_process", lambda config, name: dialled_as.append(name) or real(config, name))
    monkeypatch.setattr(probe.health_pb2_grpc, "HealthStub", FakeHealth(health_pb2.HealthCheckResponse.SERVING))
    FakeHealth.asked = []
    code, out, err = run(capsys, "probe", "--config", str(config_file), "--as", "operator", "catalog")
    assert (code, err) == (0, "") and out.endswith(": SERVING\n")
    assert dialled_as == ["operator"] and FakeHealth.asked == [(CATALOG_SERVICE, probe.DEFAULT_TIMEOUT)]


def test_a_replica_refusing_connections_is_not_ready_at_once(capsys, config_file, closed_port):
    # Real gRPC over mutual TLS to a port nobody listens on: UNAVAILABLE, not a wait for the deadline.
    certs.make_certificates(config_file.parent / "certs", ["catalog"])
    code, out, err = run(capsys, "probe", "--config", str(config_file), "catalog", "--timeout", "20")
    assert (code, out) == (1, "")
    assert err.startswith(f"bazaar probe: catalog at 127.0.0.1:{closed_port}: UNAVAILABLE") and err.count("\n") == 1


@pytest.mark.parametrize("name, message", [
    ("order-4", "'order-4' is no process of this configuration (its processes: catalog, order-1, order-2, order-3, "
                "frontend, frontend-2)"),
    ("operator", "'operator' is no process of this configuration"),
    ("frontend-3", "'frontend-3' is no process"),
])
def test_a_name_the_configuration_lacks_is_exit_1(capsys, config_file, name, message):
    code, out, err = run(capsys, "probe", "--config", str(config_file), name)
    assert (code, out) == (1, "") and err.startswith(f"bazaar probe: {message}") and err.count("\n") == 1


def test_missing_credentials_and_a_bad_configuration_are_exit_1_not_2(capsys, config_file, tmp_path):
    code, out, err = run(capsys, "probe", "--config", str(config_file), "order-2")
    assert (code, out) == (1, "") and "no TLS credentials for order-2" in err and err.count("\n") == 1
    bad = tmp_path / "bad.toml"
    bad.write_text("[catalog]\nport = 3\n")
    assert run(capsys, "probe", "--config", str(bad), "catalog") == (
        1, "", f"bazaar probe: {bad}: unknown key 'catalog.port'\n")


def test_the_probe_names_processes_as_the_configuration_does(config_file):
    config = load_config(config_file)
    with pytest.raises(probe.NotReady, match="no process"):
        probe.probe(config, "frontend-1")  # front end 1's name is plain "frontend"
