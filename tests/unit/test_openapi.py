"""docs/openapi.yaml against the front end: a valid OpenAPI 3.1 description, of exactly the
routes the Klein app serves, and the real answers of the app (through StubTreq) and of the
public port's channel (raw bytes through tests/unit/http_wire) match what it documents for
their operation and status: the body's schema, the content type and the headers."""

from __future__ import annotations

import re
from typing import Any, Callable
from urllib.parse import quote

import jsonschema_rs
import pytest
import schemathesis

from bazaar.frontend.app import MAX_NAME_LENGTH, FrontEnd
from bazaar.frontend.channel import MAX_BODY, ApiChannel
from tests.openapi_spec import SPEC_PATH, documented_routes, load_spec
from tests.unit.http_wire import Answer, Port
from tests.unit.test_frontend_routes import ANSWERS, TESLA_BUY, World

SPEC = load_spec()
_BASE = "urn:bazaar:openapi"  # the spec's URI for the validators' $refs
_REGISTRY = jsonschema_rs.Registry([(_BASE, SPEC)], draft=jsonschema_rs.Draft202012)
_validators: dict[tuple[str, ...], Any] = {}


def _node(tokens: tuple[str, ...]) -> Any:
    node: Any = SPEC
    for token in tokens:
        node = node[token]
    return node


def _resolve(tokens: tuple[str, ...]) -> tuple[Any, tuple[str, ...]]:
    """The object at `tokens`, following $refs (of responses and headers), and where it is."""
    node = _node(tokens)
    for _ in range(10):
        if "$ref" not in node:
            return node, tokens
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        tokens = tuple(t.replace("~1", "/").replace("~0", "~") for t in ref[2:].split("/"))
        node = _node(tokens)
    raise AssertionError(f"a $ref chain too long at {tokens}")


def _validator(tokens: tuple[str, ...]) -> Any:
    """A validator of the schema at `tokens` in the spec (its $refs resolved in the spec)."""
    if tokens not in _validators:
        pointer = "".join("/" + quote(t.replace("~", "~0").replace("/", "~1"), safe="~") for t in tokens)
        _validators[tokens] = jsonschema_rs.Draft202012Validator({"$ref": f"{_BASE}#{pointer}"}, registry=_REGISTRY)
    return _validators[tokens]


def conforms(answer: Answer, response: tuple[str, ...]) -> None:
    """That `answer` is what the response object at `response` describes."""
    described, where = _resolve(response)
    content_type = answer.headers.get("content-type")
    assert content_type in described["content"], f"{response}: content type {content_type}"
    body = answer.json
    _validator((*where, "content", content_type, "schema")).validate(body)
    if "error" in body:
        assert body["error"]["code"] == answer.status
    for name, header in described.get("headers", {}).items():
        header, at = _resolve((*where, "headers", name))
        value = answer.headers.get(name.lower())
        assert value is not None or not header.get("required"), f"{response}: no {name} header"
        if value is not None:
            _validator((*at, "schema")).validate(value)


def conforms_to_operation(answer: Answer, method: str, template: str) -> None:
    responses = SPEC["paths"][template][method.lower()]["responses"]
    assert str(answer.status) in responses, f"{method} {template}: {answer.status} is not documented: {answer}"
    conforms(answer, ("paths", template, method.lower(), "responses", str(answer.status)))


def example_path(template: str) -> str:
    """`template` with each path parameter's example from the spec."""
    item = SPEC["paths"][template]
    parameters = [p for operation in item.values() for p in operation.get("parameters", []) if p["in"] == "path"]
    examples = {p["name"]: quote(str(p["example"]), safe="") for p in parameters}
    return re.sub(r"\{([^}]+)\}", lambda m: examples[m.group(1)], template)


def app_routes() -> set[tuple[str, str]]:
    """(METHOD, path template) of every route of the public Klein app."""
    routes = set()
    for rule in FrontEnd.app.url_map.iter_rules():
        path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)
        methods = set(rule.methods or ())
        if "GET" in methods:
            methods.discard("HEAD")  # werkzeug adds HEAD to every GET rule; the spec says so once
        routes |= {(method, path) for method in methods}
    return routes


# -- the document ------------------------------------------------------------------------------


def test_the_spec_is_a_valid_openapi_3_1_description():
    assert SPEC["openapi"] == "3.1.0"
    schemathesis.openapi.from_path(SPEC_PATH).validate()  # against the OpenAPI 3.1 schema


def test_every_schema_in_the_spec_compiles():
    for name in SPEC["components"]["schemas"]:
        _validator(("components", "schemas", name))
    for method, template in documented_routes(SPEC):
        for status in SPEC["paths"][template][method.lower()]["responses"]:
            described, where = _resolve(("paths", template, method.lower(), "responses", status))
            assert set(described["content"]) == {"application/json"}
            _validator((*where, "content", "application/json", "schema"))


def test_the_spec_documents_exactly_the_apps_routes():
    documented, served = documented_routes(SPEC), app_routes()
    assert served - documented == set(), "served but not in docs/openapi.yaml"
    assert documented - served == set(), "in docs/openapi.yaml but not served"


def test_each_path_parameter_is_described():
    for method, template in documented_routes(SPEC):
        names = set(re.findall(r"\{([^}]+)\}", template))
        parameters = SPEC["paths"][template][method.lower()].get("parameters", [])
        assert {p["name"] for p in parameters if p["in"] == "path"} == names, template
        assert all(p["required"] for p in parameters if p["in"] == "path")


def test_the_stock_name_and_key_limits_are_the_codes():
    name = SPEC["components"]["schemas"]["StockName"]
    assert (name["minLength"], name["maxLength"]) == (1, MAX_NAME_LENGTH)
    key = _validator(("components", "schemas", "IdempotencyKey"))
    assert key.is_valid("k") and key.is_valid("a b") and key.is_valid("~" * 128)
    assert not any(key.is_valid(k) for k in ["", " k", "k ", "é", "k\t", "x" * 129])


# -- the app's answers, through StubTreq -------------------------------------------------------


def _stubbed(world: World, method: str, path: str, body: Any = None, headers: Any = None) -> Answer:
    reply = world.finish(world.start(method, path, body, headers))
    return Answer(reply.code, _headers(reply.headers), reply.raw)


def _headers(headers: Any) -> dict[str, str]:
    return {name.decode().lower(): ", ".join(v.decode("latin-1") for v in values)
            for name, values in headers.getAllRawHeaders()}


def _replicas_down(world: World) -> None:
    for replica in world.replicas.values():
        replica.up = False


def _catalog_down(world: World) -> None:
    world.catalog.down = True


def _one_trade(world: World) -> None:
    assert world.order(TESLA_BUY).code == 200


# (how the world is made to answer, method, path, the operation's path, status)
READS: dict[str, tuple[Callable[[World], None] | None, str, str, str, int]] = {
    "a stock": (None, "GET", "/stocks/tesla", "/stocks/{name}", 200),
    "no such stock": (None, "GET", "/stocks/rivian", "/stocks/{name}", 404),
    "a name too long": (None, "GET", "/stocks/" + "x" * (MAX_NAME_LENGTH + 1), "/stocks/{name}", 404),
    "a name with a slash": (None, "GET", "/stocks/a%2Fb", "/stocks/{name}", 404),
    "a URL not UTF-8": (None, "GET", "/stocks/%FF", "/stocks/{name}", 400),
    "the catalog down": (_catalog_down, "GET", "/stocks/tesla", "/stocks/{name}", 503),
    "an order": (_one_trade, "GET", "/orders/0", "/orders/{number}", 200),
    "no such order": (None, "GET", "/orders/7", "/orders/{number}", 404),
    "a number past int64": (None, "GET", "/orders/9223372036854775808", "/orders/{number}", 404),
    "no replica for an order": (_replicas_down, "GET", "/orders/0", "/orders/{number}", 503),
    "the cache counters": (_one_trade, "GET", "/cache", "/cache", 200),
    "the leader": (None, "GET", "/leader", "/leader", 200),
    "no leader": (_replicas_down, "GET", "/leader", "/leader", 503),
    "the leader, seed form": (None, "GET", "/leader/127.0.0.1:7001", "/leader/{caller}", 200),
    "no leader, seed form": (_replicas_down, "GET", "/leader/x", "/leader/{caller}", 503),
    "a caller with a slash": (None, "GET", "/leader/a%2Fb", "/leader/{caller}", 404),
}


@pytest.mark.parametrize("case", READS)
def test_read_answers_match_the_spec(case):
    prepare, method, path, template, status = READS[case]
    world = World()
    if prepare is not None:
        prepare(world)
    answer = _stubbed(world, method, path)
    assert answer.status == status, answer
    conforms_to_operation(answer, method, template)


def test_the_counters_of_a_cache_that_is_off_match_the_spec():
    answer = _stubbed(World(cache=False), "GET", "/cache")
    assert answer.json == {"data": {"enabled": False}}
    conforms_to_operation(answer, "GET", "/cache")


@pytest.mark.parametrize("keyed", [True, False], ids=["client's key", "generated key"])
@pytest.mark.parametrize("case", ANSWERS)
def test_every_kind_of_answer_to_an_order_matches_the_spec(case, keyed):
    prepare, body, _ = ANSWERS[case]
    world = World()
    if prepare is not None:
        prepare(world)
    reply = world.order_in_time(body, {"Idempotency-Key": ["order-17"]} if keyed else None)
    answer = Answer(reply.code, _headers(reply.headers), reply.raw)
    conforms_to_operation(answer, "POST", "/orders")


@pytest.mark.parametrize("body, headers, message", [
    (b"{}", None, 'request body is missing the field "name"'),
    (b"\xff", None, "request body is not a JSON object"),
    (TESLA_BUY, {"Idempotency-Key": ["\x7f"]}, "the Idempotency-Key header must be 1 to 128 printable ASCII characters"),
])
def test_malformed_orders_match_the_spec(body, headers, message):
    answer = _stubbed(World(), "POST", "/orders", body, headers)
    assert (answer.status, answer.json["error"]["message"]) == (400, message)
    conforms_to_operation(answer, "POST", "/orders")


def test_a_key_reused_for_another_order_matches_the_spec():
    world = World()
    key = {"Idempotency-Key": ["k-1"]}
    assert world.order(TESLA_BUY, key).code == 200
    answer = _stubbed(world, "POST", "/orders", {**TESLA_BUY, "quantity": 2}, key)
    assert answer.status == 422
    conforms_to_operation(answer, "POST", "/orders")


@pytest.mark.parametrize("template", sorted({t for _, t in documented_routes(SPEC)}))
def test_another_method_on_a_path_is_405_with_the_spec_s_methods(template):
    methods = {m for m, t in documented_routes(SPEC) if t == template}
    answer = _stubbed(World(), "DELETE", example_path(template))
    assert answer.status == 405
    conforms(answer, ("components", "responses", "MethodNotAllowed"))
    allowed = {m.strip() for m in answer.headers["allow"].split(",")}
    assert allowed == methods | ({"HEAD"} if "GET" in methods else set())


@pytest.mark.parametrize("path", ["/", "/stock/tesla", "/stocks/tesla/", "//cache", "/cache/tesla"])
def test_a_path_the_api_does_not_have_matches_no_such_resource(path):
    answer = _stubbed(World(), "GET", path)
    conforms(answer, ("components", "responses", "NoSuchResource"))


# -- what the channel refuses before any route, on every operation -----------------------------


def _request(method: str, path: str, *extra: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    return b"\r\n".join([b"%s %s %s" % (method.encode(), path.encode(), version), *extra]) + b"\r\n\r\n"


TOO_MANY_HEADERS = [b"X-H%d: v" % i for i in range(ApiChannel.maxHeaders + 1)]
# (what, the bytes a client sends for METHOD path, status)
CHANNEL_REFUSALS: dict[str, tuple[Callable[[str, str], bytes], int]] = {
    "HTTP/2.0": (lambda m, p: _request(m, p, version=b"HTTP/2.0"), 400),
    "a header without a colon": (lambda m, p: _request(m, p, b"Host fe"), 400),
    "a Host not UTF-8": (lambda m, p: _request(m, p, b"Host: \xff"), 400),
    "a Host with an empty label": (lambda m, p: _request(m, p, b"Host: a..b"), 400),
    "a Host label over 63 characters": (lambda m, p: _request(m, p, b"Host: " + b"a" * 64 + b".example"), 400),
    "two Content-Lengths": (lambda m, p: _request(m, p, b"Content-Length: 1", b"Content-Length: 2"), 400),
    "a body too large": (lambda m, p: _request(m, p, b"Content-Length: %d" % (MAX_BODY + 1)), 413),
    "a request line too long": (lambda m, p: _request(m, p + "?" + "a" * ApiChannel.MAX_LENGTH), 414),
    "too many headers": (lambda m, p: _request(m, p, *TOO_MANY_HEADERS), 431),
}
OPERATIONS = sorted(documented_routes(SPEC))


@pytest.mark.parametrize("refusal", CHANNEL_REFUSALS)
@pytest.mark.parametrize("method, template", OPERATIONS)
def test_what_the_channel_refuses_matches_every_operation(method, template, refusal):
    raw, status = CHANNEL_REFUSALS[refusal]
    wire = Port().connect()
    wire.send(raw(method, example_path(template)))
    answer = wire.answer(method)
    assert answer.status == status, answer
    conforms_to_operation(answer, method, template)


@pytest.mark.parametrize("method, template", OPERATIONS)
def test_a_request_past_the_read_deadline_matches_every_operation(method, template):
    port = Port(read_timeout=1.0)
    wire = port.connect()
    wire.send(b"%s %s HTTP/1.1\r\n" % (method.encode(), example_path(template).encode()))
    port.world.clock.advance(1.0)
    answer = wire.answer(method)
    assert answer.status == 408
    conforms_to_operation(answer, method, template)


@pytest.mark.parametrize("cap", ["max_connections", "max_connections_per_peer"])
@pytest.mark.parametrize("method, template", OPERATIONS)
def test_a_connection_past_a_cap_matches_every_operation(method, template, cap):
    port = Port(**{cap: 1})
    port.connect()
    wire = port.connect()
    wire.send(_request(method, example_path(template)))
    answer = wire.answer(method)
    assert answer.status == 503
    assert answer.headers["retry-after"] == "1"
    conforms_to_operation(answer, method, template)
