"""One HTTP exchange with the front end on treq, body included, as a `bazaar.tools.client.Answer`."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from bazaar.chaos.clients import describe_failure
from bazaar.tools.client import Answer, http_answer

REQUEST_TIMEOUT = 10.0  # seconds for a whole exchange


async def exchange(http: Any, reactor: Any, method: str, url: str, body: object = None,
                   headers: dict[str, list[str]] | None = None, timeout: float = REQUEST_TIMEOUT) -> Answer:
    """Never raises for the network's faults: no answer is an Answer with `error` set."""
    d = Deferred.fromCoroutine(http_answer(http, method, url, body, headers))
    # Cancels the whole exchange, so an answer that stalls in its body is caught too.
    d.addTimeout(timeout, reactor)
    try:
        return await d
    except Exception as e:
        return Answer(error=describe_failure(e))


def new_client(reactor: Any, connections: int, credentials: Any = None) -> tuple[Any, Any]:
    """A treq client on a persistent pool of `connections` per host, and the pool (to close).
    With `credentials` (bazaar.tls.files), it calls the front end's internal listener."""
    import treq.client
    from twisted.web.client import Agent, HTTPConnectionPool

    from bazaar.tls.identity import FRONTEND
    from bazaar.tls.web import ClusterPolicy

    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = connections
    tls = {} if credentials is None else {"contextFactory": ClusterPolicy(credentials, FRONTEND)}
    return treq.client.HTTPClient(Agent(reactor, pool=pool, connectTimeout=5.0, **tls)), pool
