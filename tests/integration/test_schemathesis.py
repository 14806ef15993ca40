"""docs/openapi.yaml against a real cluster: schemathesis generates requests from it, valid and
not, for every operation, and every answer must be no 5xx the spec does not list, and match
the spec: status, content type, headers and body schema. Bounded and deterministic: a fixed
seed, a few examples per operation, traffic to the cluster's loopback front end only."""

from __future__ import annotations

from typing import Iterator

import pytest
import requests
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from tests.integration.cluster import Cluster, running
from tests.openapi_spec import SPEC_PATH

pytestmark = pytest.mark.integration

# Examples per operation in the fuzzing phase; the examples and coverage phases add their own
# (the spec's examples, each parameter's bounds), a bounded number.
MAX_EXAMPLES = 50
CONFIG = schemathesis.Config.from_dict({
    "seed": 20240611,
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    # No stateful phase: it needs links the spec does not have.
    "phases": {"stateful": {"enabled": False}},
    "request-timeout": 10,
})
CHECKS = [
    not_a_server_error,  # a 5xx the operation does not document
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,  # another method on a path: 405 with Allow
]

schema = schemathesis.openapi.from_path(SPEC_PATH, config=CONFIG)


@pytest.fixture(scope="module")
def fuzzed_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster for the module: each operation's examples trade on it, as clients would."""
    with running(tmp_path_factory.mktemp("fuzzed")) as c:
        yield c


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False  # no proxy from the environment: the requests go to loopback only
        yield s


@schema.parametrize()
def test_every_answer_matches_the_spec(case, fuzzed_cluster: Cluster, session: requests.Session) -> None:
    base_url = f"http://127.0.0.1:{fuzzed_cluster.frontend_port}"
    response = case.call_and_validate(base_url=base_url, session=session, checks=CHECKS)
    assert response.request.url.startswith(base_url + "/")
    fuzzed_cluster.check_alive()


def test_the_fuzzed_cluster_still_serves(fuzzed_cluster: Cluster) -> None:
    """After the fuzzing (this module's tests run in order), the cluster trades as before."""
    before = fuzzed_cluster.get("/stocks/tesla").json["data"]["quantity"]
    r = fuzzed_cluster.post_order("tesla", 1, "sell")
    assert r.status == 200, r
    assert fuzzed_cluster.get("/stocks/tesla").json["data"]["quantity"] == before + 1
    assert "Traceback" not in fuzzed_cluster.log("frontend")  # no unexpected error was logged
