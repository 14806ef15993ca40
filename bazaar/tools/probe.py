"""`bazaar probe NAME`: is process NAME of the configuration ready? For health checks (compose,
systemd, a load balancer): exit 0 and one line on stdout when it is, 1 and one line on stderr
when it is not.

- the catalog and order replicas (`catalog`, `order-N`): their gRPC health service reports
  SERVING for the cluster's service (a replica does once it has caught up);
- a front end (`frontend`, `frontend-N`): `GET /readyz` on its public port answers 200 (it
  knows a leader and reaches what it needs).

A gRPC check dials over the cluster's mutual TLS with a certificate of the cluster: by default
the probed process's own (every role may check health, and it is the one certificate that
process's host holds: docs/deploy.md); `--as operator` from a machine that holds the operator's.
A front end's check needs no certificate: it asks the public port (over HTTPS, trusting
`frontend.certificate`, when that is set).
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bazaar.config import Config, ConfigError, load_config
from bazaar.rpc.names import CATALOG_SERVICE, ORDER_SERVICE
from bazaar.rpc.transport import Transport
from bazaar.tls.files import TlsError
from bazaar.tls.identity import Role, identity_of
from bazaar.tools.cluster import fetch_json, frontend_url

DEFAULT_TIMEOUT = 3.0  # seconds for the check; keep a health check's own timeout above it
NOT_READY = 1


class NotReady(Exception):
    """Why the process is not ready, in one line."""


def probe(config: Config, name: str, as_name: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> str:
    """What process `name` answered when it is ready; NotReady saying why when it is not, or when
    `name` is no process of `config`."""
    identity = identity_of(name)
    if identity is None or name not in config.addresses_of():
        raise NotReady(f"{name!r} is no process of this configuration (its processes: "
                       f"{', '.join(config.addresses_of())})")
    if identity.role is Role.FRONTEND:
        return _frontend_ready(config, identity.frontend_id, timeout)
    service = CATALOG_SERVICE if identity.role is Role.CATALOG else ORDER_SERVICE
    return _grpc_serving(config, name, service, as_name or name, timeout)


def _grpc_serving(config: Config, name: str, service: str, as_name: str, timeout: float) -> str:
    address = str(config.addresses_of()[name])
    try:
        transport = Transport.for_process(config, as_name)
    except TlsError as e:
        raise NotReady(str(e)) from None
    # Not wait_for_ready: a refused connection is an answer at once, not after the timeout.
    with transport.dial(address, []) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as e:
            details = (e.details() or "").strip().splitlines()[:1]
            raise NotReady(": ".join([f"{name} at {address}", e.code().name, *details])) from None
    said = f"{name} at {address}: {health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)}"
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        raise NotReady(said)
    return said


def _frontend_ready(config: Config, frontend_id: int, timeout: float) -> str:
    url = frontend_url(config, frontend_id) + "/readyz"
    try:
        code, body = fetch_json(config, "/readyz", timeout, frontend_id)
    except ValueError:  # an answer, but not the API's JSON
        raise NotReady(f"{url}: not a JSON answer") from None
    except OSError as e:  # refused, timed out, TLS: urllib's errors are OSErrors
        raise NotReady(f"{url}: {getattr(e, 'reason', None) or e}") from None
    if code == 200:
        return f"{url}: {code}"
    raise NotReady(f"{url}: {code} {_error_message(body)}".rstrip())


def _error_message(body: object) -> str:
    """The API's error message, with what /readyz says is missing, from an error's body."""
    try:
        error = body["error"]  # type: ignore[index]
        message, missing = str(error["message"]), error.get("missing")
    except (KeyError, TypeError, AttributeError):
        return ""
    return f"{message} (missing: {', '.join(map(str, missing))})" if isinstance(missing, list) and missing else message


def main(args: argparse.Namespace) -> int:
    """`bazaar probe`: `args` has config, name, as_name and timeout."""
    try:
        said = probe(load_config(args.config), args.name, args.as_name, args.timeout)
    except (NotReady, ConfigError) as e:
        # 1 also for a bad configuration (the command's usual is 2): Docker reserves 2.
        print(f"bazaar probe: {e}", file=sys.stderr)
        return NOT_READY
    print(said)
    return 0
