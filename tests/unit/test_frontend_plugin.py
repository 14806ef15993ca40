"""The bazaar-frontend twistd plugin: options, config errors, and the service tree it builds."""

from __future__ import annotations

import json

import pytest
from treq.testing import StubTreq
from klein import Klein
from OpenSSL import SSL
from twisted.application.internet import SSLServer, TCPServer
from twisted.internet import task
from twisted.python import usage
from twisted.web.server import Site

from bazaar.config import Address, ConfigError, load_config
from bazaar.core.lru import LRUCache
from bazaar.frontend.app import FrontEnd
from bazaar.frontend.backends import CatalogClient, ReplicaClient
from bazaar.frontend.leader import LeaderTracker
from bazaar.frontend.trading import TradePlacer
from bazaar.metrics.server import MetricsSite
from bazaar.plugins import frontend as plugin
from bazaar.rpc.services import Channels
from bazaar.rpc.transport import INSECURE
from bazaar.tools.cluster import make_certificates

CONFIG = """
[catalog]
address = "127.0.0.1:6100"

[frontend]
address = "127.0.0.2:6101"
cache_size = 3

[replicas]
1 = "127.0.0.1:6201"
5 = "127.0.0.1:6205"
"""


def options_for(*args: str) -> plugin.Options:
    """Parsed options, the cluster's certificates made first (a process without them does
    not start: tests/unit/test_service_plugins.py)."""
    config = list(args)[list(args).index("--config") + 1] if "--config" in args else None
    try:
        make_certificates(load_config(config), say=lambda _: None)
    except ConfigError:
        pass  # the options say so
    options = plugin.Options()
    options.parseOptions(list(args))
    return options


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "cluster.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def service(config_file):
    return plugin.makeService(options_for("--config", str(config_file)))


def test_default_config_is_bazaar_toml_with_builtin_defaults_when_absent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = options_for()
    assert options["config"] == "bazaar.toml"
    assert options.cluster.frontends[1].address == Address("127.0.0.1", 56893)
    assert options.cluster.source is None


def test_config_file_is_loaded(config_file):
    forms = (["--config", str(config_file)], ["-c", str(config_file)], [f"--config={config_file}"])
    for args in forms:
        cluster = options_for(*args).cluster
        assert cluster.frontends[1].address == Address("127.0.0.2", 6101)
        assert sorted(cluster.replicas) == [1, 5]


@pytest.mark.parametrize(
    "text, named",
    [
        ("[frontend]\nport = 1\n", "frontend.port"),
        ("[frontend]\ncache_size = 0\n", "frontend.cache_size"),
        ("[catalog]\naddress = \"nowhere\"\n", "catalog.address"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_bad_config_is_a_usage_error_naming_the_problem(tmp_path, text, named):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(usage.UsageError, match=named.replace(".", r"\.")):
        options_for("--config", str(path))


def test_missing_explicit_config_is_a_usage_error(tmp_path):
    with pytest.raises(usage.UsageError, match="no such configuration file"):
        options_for("--config", str(tmp_path / "absent.toml"))


def test_unknown_option_is_a_usage_error():
    with pytest.raises(usage.UsageError):
        options_for("--port", "80")


def test_service_tree(service):
    channels, server, selector, internal, metrics = list(service)
    assert isinstance(channels, Channels)
    assert isinstance(server, TCPServer)
    assert isinstance(selector, plugin.SelectLeaderAtStart)
    assert isinstance(internal, SSLServer), "cluster certificates only"
    assert isinstance(metrics, TCPServer) and isinstance(metrics.args[1], MetricsSite)
    assert metrics.args[0] == 6111 and metrics.kwargs == {"interface": "127.0.0.1"}, "loopback, port + 10"


def test_the_internal_listener_asks_for_a_cluster_certificate(service, config_file):
    port, site, options = list(service)[3].args
    assert port == 56897 and list(service)[3].kwargs == {"interface": "127.0.0.1"}
    context = options.getContext()
    assert context.get_verify_mode() & SSL.VERIFY_FAIL_IF_NO_PEER_CERT, "no certificate, no connection"
    assert isinstance(site.resource._app, Klein)


def test_with_tls_off_the_internal_listener_is_plaintext(tmp_path):
    path = tmp_path / "insecure.toml"
    path.write_text("[tls]\ninsecure = true\n")
    assert isinstance(list(plugin.makeService(options_for("--config", str(path))))[3], TCPServer)


def test_listens_on_the_frontend_address(service):
    server = list(service)[1]
    port, site = server.args
    assert port == 6101
    assert server.kwargs == {"backlog": plugin.BACKLOG, "interface": "127.0.0.2"}
    assert isinstance(site, Site)
    assert not site.displayTracebacks
    assert not site._parsePOSTFormSubmission  # bodies are JSON: no form parsing per POST
    assert site.logPath is None  # no access log unless asked


def test_an_access_log_is_written_only_when_asked_for(config_file, tmp_path):
    path = tmp_path / "access.log"
    site = list(plugin.makeService(options_for("--config", str(config_file), "--access-log", str(path))))[1].args[1]
    quiet = list(plugin.makeService(options_for("--config", str(config_file))))[1].args[1]
    formatted = []
    for s in (site, quiet):
        s._logFormatter = lambda timestamp, request: formatted.append(request) or f"line for {request}"
        s.startFactory()
        s.log("GET /stocks/tesla")
        s.stopFactory()
    assert formatted == ["GET /stocks/tesla"]  # the quiet site did not even format a line
    assert path.read_text() == "line for GET /stocks/tesla\n"


def test_ipv6_host_is_listened_on_without_brackets(tmp_path):
    path = tmp_path / "v6.toml"
    path.write_text('[frontend]\naddress = "[::1]:6101"\n')
    server = list(plugin.makeService(options_for("--config", str(path))))[1]
    assert server.kwargs == {"backlog": plugin.BACKLOG, "interface": "::1"}


def test_making_the_service_opens_no_grpc_channel(service):
    channels = list(service)[0]
    assert not channels.running
    with pytest.raises(RuntimeError):
        channels.get("127.0.0.1:6100")  # nothing may have been made before start either


def get(site: Site, path: str) -> tuple[int, object]:
    http = StubTreq(site.resource)
    d = http.get("http://frontend.test" + path)
    http.flush()
    replies: list = []
    d.addCallback(lambda r: http.content(r).addCallback(lambda body: replies.append((r.code, json.loads(body)))))
    http.flush()
    return replies[0]


def post(site: Site, path: str, body: bytes) -> tuple[int, object]:
    http = StubTreq(site.resource)
    d = http.post("http://frontend.test" + path, data=body)
    http.flush()
    replies: list = []
    d.addCallback(lambda r: http.content(r).addCallback(lambda body: replies.append((r.code, json.loads(body)))))
    http.flush()
    return replies[0]


def test_site_serves_the_front_end(service):
    site = list(service)[1].args[1]
    assert get(site, "/cache") == (200, {"data": {"enabled": True, "capacity": 3, "hits": 0, "misses": 0,
                                                  "evictions": 0}})
    assert get(site, "/cache/tesla")[0] == 404, "the invalidation push is internal only"
    assert post(site, "/cache/invalidations", b'{"names": ["tesla"]}')[0] == 404


def test_the_internal_site_takes_invalidations_from_replicas_only(service):
    site = list(service)[3].args[1]
    assert get(site, "/cache/tesla") == (403, {"error": {"code": 403, "message": "this endpoint is for the "
                                                         "cluster's own processes"}})
    assert post(site, "/cache/invalidations", b'{"names": ["tesla"]}')[0] == 403


def test_selector_tracks_the_configured_replicas(service):
    leaders = list(service)[2].leaders
    assert isinstance(leaders, LeaderTracker)
    assert {i: r.address for i, r in leaders.replicas.items()} == {
        1: Address("127.0.0.1", 6201),
        5: Address("127.0.0.1", 6205),
    }


def test_build_front_end_wires_the_configuration(config_file):
    cluster = options_for("--config", str(config_file)).cluster
    front_end = plugin.build_front_end(task.Clock(), cluster, Channels(INSECURE))
    assert isinstance(front_end, FrontEnd)
    assert isinstance(front_end.catalog, CatalogClient)
    assert front_end.catalog.address == Address("127.0.0.1", 6100)
    assert all(isinstance(r, ReplicaClient) for r in front_end.leaders.replicas.values())
    assert isinstance(front_end.cache, LRUCache) and front_end.cache.capacity == 3
    assert isinstance(front_end.trades, TradePlacer)


def test_trades_run_on_the_front_ends_leaders_within_the_configured_times(tmp_path):
    path = tmp_path / "times.toml"
    path.write_text("[timeouts]\nrpc = 0.7\nrequest = 3.5\n")
    cluster = options_for("--config", str(path)).cluster
    front_end = plugin.build_front_end(task.Clock(), cluster, Channels(INSECURE))
    trades = front_end.trades
    assert trades._leaders is front_end.leaders
    assert (trades._rpc_timeout, trades._request_timeout) == (0.7, 3.5)


def test_cache_off_means_no_cache(tmp_path):
    path = tmp_path / "nocache.toml"
    path.write_text("[frontend]\ncache = false\n")
    cluster = options_for("--config", str(path)).cluster
    assert plugin.build_front_end(task.Clock(), cluster, Channels(INSECURE)).cache is None


class RecordingTracker:
    def __init__(self) -> None:
        self.started = 0

    def start(self) -> None:
        self.started += 1


def test_leader_selection_starts_with_the_service():
    tracker = RecordingTracker()
    selector = plugin.SelectLeaderAtStart(tracker)
    assert tracker.started == 0
    selector.startService()
    assert tracker.started == 1 and selector.running


def test_the_twistd_plugin_points_here():
    from twisted.plugins.bazaar_services import bazaarFrontend

    assert bazaarFrontend.tapname == "bazaar-frontend"
    assert bazaarFrontend.options is plugin.Options


SECOND_FRONT_END = """
[frontends.1]
address = "127.0.0.1:6101"
internal = "127.0.0.1:6102"
[frontends.2]
address = "10.0.0.7:6103"
internal = "10.0.0.7:6104"
listen = "0.0.0.0"
"""


def test_front_end_n_listens_where_its_table_says_and_shows_its_own_certificate(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(SECOND_FRONT_END)
    options = options_for("--config", str(path), "--id", "2")
    assert options.transport.credentials is not None
    service = list(plugin.makeService(options))
    assert service[1].args[0] == 6103 and service[1].kwargs["interface"] == "0.0.0.0"
    assert service[3].args[0] == 6104 and service[3].kwargs == {"interface": "0.0.0.0"}
    assert (tmp_path / "var" / "certs" / "frontend-2.pem").exists()


def test_an_unconfigured_front_end_id_is_a_usage_error(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(SECOND_FRONT_END)
    with pytest.raises(usage.UsageError, match=r"no front end with id 3 \(configured ids: 1, 2\)"):
        options_for("--config", str(path), "--id", "3")


def test_the_descriptor_limit_covers_every_listener_at_its_caps(config_file, monkeypatch):
    asked = []
    monkeypatch.setattr(plugin.resource, "getrlimit", lambda which: (256, 1 << 20))
    monkeypatch.setattr(plugin.resource, "setrlimit", lambda which, limits: asked.append(limits))
    service = plugin.makeService(options_for("--config", str(config_file)))
    _, public, _, internal, metrics = list(service)
    sites = [public.args[1], internal.args[1], metrics.args[1]]
    assert isinstance(sites[2], MetricsSite) and sites[2].descriptors == 32, "16 connections, 16 refusals lingering"
    needed = sum(site.descriptors for site in sites) + plugin.SPARE_DESCRIPTORS
    assert asked == [(needed, 1 << 20)] and needed == plugin.descriptors_needed(load_config(config_file).frontend)
