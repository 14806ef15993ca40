"""Who a process is on the cluster's links: its name (the common name of its certificate) and
the role that name carries. Plain names and rules; the certificates are in certs.py, the
check of each call in bazaar/rpc/roles.py.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Collection, Sequence

CATALOG = "catalog"
FRONTEND = "frontend"
# The command-line tools (`bazaar status`, `bazaar up`): they may look, not act.
OPERATOR = "operator"
# The DNS name in a certificate, and the name a channel expects of its peer: a leader
# dialling replica 2 is sure to reach replica 2, whatever address the network gave it.
DOMAIN = "bazaar"


class Role(enum.Enum):
    CATALOG = "catalog"
    REPLICA = "replica"
    FRONTEND = "frontend"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Identity:
    name: str
    role: Role
    replica_id: int = 0  # for a replica
    frontend_id: int = 0  # for a front end


def replica_name(replica_id: int) -> str:
    return f"order-{replica_id}"


def frontend_name(frontend_id: int) -> str:
    """Front end 1 is plain "frontend" (the name of the one front end of a small cluster)."""
    return FRONTEND if frontend_id == 1 else f"{FRONTEND}-{frontend_id}"


def dns_name(name: str) -> str:
    return f"{name}.{DOMAIN}"


def cluster_identity(
    common_names: Sequence[str], replicas: Collection[int], frontends: Collection[int] = (1,),
) -> Identity | None:
    """The identity a verified certificate carries: exactly one common name, naming a process
    this configuration has (`replicas`, `frontends`: its ids). The gRPC role check and the
    front end's internal listener both ask this."""
    if len(common_names) != 1:
        return None
    identity = identity_of(common_names[0])
    if identity is not None and identity.role is Role.REPLICA and identity.replica_id not in replicas:
        return None  # a replica this configuration does not list (removed, or never one)
    if identity is not None and identity.role is Role.FRONTEND and identity.frontend_id not in frontends:
        return None
    return identity


def identity_of(name: str) -> Identity | None:
    """The identity a certificate's common name carries; None for a name no process has."""
    if name == CATALOG:
        return Identity(name, Role.CATALOG)
    if name == OPERATOR:
        return Identity(name, Role.OPERATOR)
    if name == FRONTEND:
        return Identity(name, Role.FRONTEND, frontend_id=1)
    frontend = re.fullmatch(r"frontend-([2-9]|[1-9][0-9]{1,8})", name)  # "frontend-1" is "frontend"
    if frontend:
        return Identity(name, Role.FRONTEND, frontend_id=int(frontend.group(1)))
    replica = re.fullmatch(r"order-([1-9][0-9]{0,8})", name)
    if replica:
        return Identity(name, Role.REPLICA, int(replica.group(1)))
    return None
