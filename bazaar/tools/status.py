"""`bazaar status [--json]`: each process of the cluster, as it answers now.

Per process: whether it runs (its pidfile here, for a cluster started by `bazaar up`; or that
it answers), its pid, its role, and how far it is: a replica's epoch, last and committed
index and lag behind the leader (entries); the catalog's applied-through transaction number
and its lag behind the leader's committed number; a front end's readiness and the leader it
uses. Every question is asked of every process at once, each within a deadline, as the
operator (docs/security.md): a process that does not answer is reported so, not waited for.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import grpc
from bazaar.config import Config
from bazaar.rpc.convert import ROLE_NAMES
from bazaar.rpc.transport import Transport
from bazaar.tables import table
from bazaar.tls.files import TlsError
from bazaar.tls.identity import OPERATOR, Role, identity_of
from bazaar.tools import cluster
from bazaar.v1 import catalog_pb2, catalog_pb2_grpc, order_pb2, order_pb2_grpc

ASK_TIMEOUT = 2.0  # seconds for each process's answer

COLUMNS = ("name", "running", "pid", "role", "epoch", "last", "committed", "lag", "applied_through", "metrics")


def collect(config: Config, timeout: float = ASK_TIMEOUT) -> dict[str, Any]:
    """The whole cluster's status as one JSON-ready document."""
    processes = cluster.processes(config)
    try:
        Transport.for_process(config, OPERATOR)
        why_not = None
    except TlsError as e:  # no operator certificate here: the pidfiles still tell what runs
        why_not = str(e)
    # Front ends are asked on their public port (GET /readyz), which needs no cluster certificate.
    askable = [p for p in processes if why_not is None or _is_frontend(p.name)]
    with ThreadPoolExecutor(max_workers=len(processes)) as pool:
        asked = {p.name: pool.submit(_ask, config, p, timeout) for p in askable}
        answers = {p.name: asked[p.name].result() if p.name in asked else {"answers": False} for p in processes}
    leader = next((a for a in answers.values() if a.get("role") == "leader"), None)
    addresses = config.addresses_of()
    rows = []
    for process in processes:
        pid = cluster.running_pid(process)
        answer = answers[process.name]
        row: dict[str, Any] = {
            "name": process.name, "running": pid is not None or answer["answers"], "pid": pid,
            "stale_pidfile": pid is None and process.pidfile.exists(),
            "address": str(addresses[process.name]), "role": None,
            "epoch": None, "last": None, "committed": None, "lag": None, "applied_through": None,
            "metrics": _metrics_url(config, process.name),
            **({"ready": None, "uses_leader": None, "missing": None} if _is_frontend(process.name) else {}),
            **answer,
        }
        if leader is not None and row["last"] is not None:
            row["lag"] = max(0, leader["last"] - row["last"])
        if leader is not None and row["applied_through"] is not None:
            row["lag"] = max(0, leader["committed_number"] - row["applied_through"])
        row.pop("committed_number", None)
        rows.append(row)
    return {
        "leader": None if leader is None else {"id": leader["id"], "epoch": leader["epoch"],
                                               "address": str(config.replicas[leader["id"]])},
        "processes": rows,
        "not_asked": why_not,  # why the catalog and the replicas were not asked, if they were not
    }


def render(document: dict[str, Any]) -> str:
    """The document as a table, and a line naming the leader."""
    def cell(value: Any) -> Any:
        return "yes" if value is True else "no" if value is False else value

    def line(row: dict[str, Any]) -> list[Any]:
        cells = {c: cell(row[c]) for c in COLUMNS}
        if row["stale_pidfile"]:
            cells["running"] = "no (stale pidfile)"
        if row["role"] == "frontend":
            cells["role"] = "frontend, ready" if row["ready"] else f"frontend, missing {' and '.join(row['missing'])}"
        elif _is_frontend(row["name"]):
            cells["role"] = "frontend"
        return list(cells.values())

    lines = table([c.replace("_", " ") for c in COLUMNS], [line(row) for row in document["processes"]])
    leader = document["leader"]
    said = "none" if leader is None else f"replica {leader['id']} at {leader['address']}, epoch {leader['epoch']}"
    note = "" if document["not_asked"] is None else f"\nthe catalog and the replicas were not asked: {document['not_asked']}"
    return "\n".join(lines) + f"\nleader: {said}{note}"


def status(config: Config, as_json: bool = False, say: Callable[[str], None] = print) -> bool:
    """Print the status; True when every process runs."""
    document = collect(config)
    say(json.dumps(document, indent=2) if as_json else render(document))
    return all(row["running"] for row in document["processes"])


def _is_frontend(name: str) -> bool:
    identity = identity_of(name)
    return identity is not None and identity.role is Role.FRONTEND


def _metrics_url(config: Config, name: str) -> str | None:
    address = config.metrics_address(name)
    return None if address is None else f"http://{address}/metrics"


def _ask(config: Config, process: cluster.Process, timeout: float) -> dict[str, Any]:
    """What the process says of itself; {"answers": False} when it does not say."""
    identity = identity_of(process.name)
    assert identity is not None  # cluster.processes names each as its certificate is named
    try:
        if identity.role is Role.CATALOG:
            return _ask_catalog(config, timeout)
        if identity.role is Role.FRONTEND:
            return _ask_frontend(config, identity.frontend_id, timeout)
        return _ask_replica(config, identity.replica_id, timeout)
    except (grpc.RpcError, OSError, ValueError, KeyError, TypeError):
        return {"answers": False}


def _ask_catalog(config: Config, timeout: float) -> dict[str, Any]:
    with cluster.operator_channel(config, str(config.catalog)) as channel:
        described = catalog_pb2_grpc.CatalogServiceStub(channel).DescribeCatalog(
            catalog_pb2.DescribeCatalogRequest(), timeout=timeout)
    return {"answers": True, "role": "catalog", "applied_through": described.applied_through}


def _ask_replica(config: Config, replica_id: int, timeout: float) -> dict[str, Any]:
    with cluster.operator_channel(config, str(config.replicas[replica_id])) as channel:
        d = order_pb2_grpc.OrderServiceStub(channel).Describe(order_pb2.DescribeRequest(), timeout=timeout)
    return {
        "answers": True, "id": replica_id, "role": ROLE_NAMES.get(d.role, "unknown"), "epoch": d.epoch,
        "last": d.last_index, "committed": d.committed_index,
        "committed_number": d.committed_number if d.HasField("committed_number") else None,
    }


def _ask_frontend(config: Config, frontend_id: int, timeout: float) -> dict[str, Any]:
    code, body = cluster.fetch_json(config, "/readyz", timeout, frontend_id)
    if code not in (200, 503):
        return {"answers": False}
    ready = code == 200
    return {
        "answers": True, "role": "frontend", "ready": ready,
        "uses_leader": body["data"]["leader"] if ready else None,
        "missing": [] if ready else body["error"]["missing"],
    }
