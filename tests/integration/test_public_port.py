"""The public port on real processes, with HTTPS and a 1 s read deadline configured: the API and
`bazaar client` over HTTPS, the leader's cache push (on the internal listener) while the API is HTTPS, and a client that
trickles its request head is cut off at the deadline with a JSON 408."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Iterator

import pytest

from tests.integration.cluster import Cluster, Response, wait_for
from tests.selfsigned import write_self_signed

pytestmark = pytest.mark.integration

READ_TIMEOUT = 1.0


class HttpsCluster(Cluster):
    """A cluster whose front ends serve HTTPS with a self-signed certificate."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        certificate, key = write_self_signed(root)
        super().__init__(root, frontends=2, frontend_settings={
            "read_timeout": READ_TIMEOUT, "certificate": certificate.name, "key": key.name,
        })
        self.certificate = certificate
        self.tls = ssl.create_default_context(cafile=str(self.certificate))

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None, timeout: float = 10.0, frontend: str = "frontend") -> Response:
        if isinstance(body, str):
            body = body.encode()
        port = self.port(frontend)
        with closing(http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=self.tls)) as conn:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return Response(r.status, r.read(), dict(r.getheaders()))

    def url(self, frontend: str = "frontend") -> str:
        return f"https://127.0.0.1:{self.port(frontend)}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsCluster]:
    c = HttpsCluster(tmp_path_factory.mktemp("https"))
    try:
        c.start_all()  # wait_ready over HTTPS: request() is
        yield c
    finally:
        c.stop_all()


def test_the_api_is_served_over_https(cluster: HttpsCluster) -> None:
    assert cluster.stock("tesla")["name"] == "tesla"
    r = cluster.post_order("tesla", 1, "buy")
    assert r.status == 200, r
    number = r.json["data"]["transaction_number"]
    assert cluster.get(f"/orders/{number}").json["data"]["name"] == "tesla"


def test_plain_http_gets_no_answer_from_the_https_port(cluster: HttpsCluster) -> None:
    with closing(http.client.HTTPConnection("127.0.0.1", cluster.frontend_port, timeout=5)) as conn:
        conn.request("GET", "/stocks/tesla")
        with pytest.raises((http.client.HTTPException, OSError)):
            conn.getresponse().read()


def test_the_leader_pushes_invalidations_to_the_internal_listener(cluster: HttpsCluster) -> None:
    assert cluster.stock("ford")["name"] == "ford"  # cached by the first front end
    assert "ford" in cluster.internal_get("/cache").json["data"]["names"]
    r = cluster.post_order("ford", 2, "sell", frontend="frontend-2")  # a trade the first one never sees
    assert r.status == 200, r
    wait_for(lambda: "ford" not in cluster.internal_get("/cache").json["data"]["names"], 10,
             "the leader's push to drop ford from the first front end's cache")
    pushes = cluster.log("order-3")  # the leader's: its pushes' connections log nothing
    assert "leading in epoch" in pushes and "Starting factory" not in pushes and "Stopping factory" not in pushes


def bazaar_client(cluster: HttpsCluster, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bazaar", "client", "--url", cluster.url(), "-n", "5", "-p", "1",
                           "--seed", "3", "--timeout", "5", *extra],
                          capture_output=True, text=True, timeout=120, cwd=cluster.root)


def test_bazaar_client_trades_over_https_trusting_the_certificate(cluster: HttpsCluster) -> None:
    trusted = bazaar_client(cluster, "--ca-file", str(cluster.certificate))
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert "ALL ORDERS VERIFIED" in trusted.stdout
    untrusted = bazaar_client(cluster)  # the system's roots do not know a self-signed certificate
    assert untrusted.returncode == 1 and "REQUESTS FAILED" in untrusted.stdout, untrusted.stdout
    assert "certificate verify failed" in untrusted.stdout, untrusted.stdout


def test_a_trickling_request_head_is_cut_off_at_the_read_deadline(cluster: HttpsCluster) -> None:
    raw = socket.create_connection(("127.0.0.1", cluster.frontend_port), timeout=5)
    started = time.monotonic()
    with closing(cluster.tls.wrap_socket(raw, server_hostname="127.0.0.1")) as tls:
        tls.sendall(b"GET /stocks/tesla HTTP/1.1\r\nHost: fe\r\n")
        tls.settimeout(0.1)  # each wait for an answer is also the pause between two trickled bytes
        received = b""
        while time.monotonic() - started < 5:
            try:
                data = tls.recv(4096)
            except (TimeoutError, socket.timeout):
                tls.sendall(b"X")  # a byte of a header that never ends
                continue
            if not data:
                break  # closed by the front end
            received += data
        closed_after = time.monotonic() - started
    assert READ_TIMEOUT <= closed_after < READ_TIMEOUT + 1.5, closed_after
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), received
    assert b"Connection: close" in head
    assert json.loads(body)["error"]["code"] == 408
