"""The bazaar-catalog and bazaar-order twistd plugins: options and the service trees they build."""

import socket

import grpc
import pytest
import pytest_twisted
from grpc_health.v1 import health_pb2, health_pb2_grpc
from twisted.application.internet import TCPServer
from twisted.application.service import IServiceCollection, IServiceMaker, MultiService
from twisted.plugin import getPlugins
from twisted.internet.threads import deferToThread
from twisted.python import usage

from bazaar.catalog.service import CatalogService
from bazaar.chaos.processes import free_ports
from bazaar.reactor.group_commit import GroupCommitter
from bazaar.order.service import OrderReplicaService
from bazaar.plugins import catalog, order
from bazaar.rpc.names import CATALOG_SERVICE
from bazaar.rpc.services import Channels, GrpcServerService
from bazaar.config import load_config
from bazaar.tools.cluster import make_certificates

CONFIG = '[replicas]\n1 = "127.0.0.1:7101"\n2 = "127.0.0.1:7102"\n'


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    make_certificates(load_config(path), say=lambda _: None)
    return str(path)


def parse(module, *args):
    options = module.Options()
    options.parseOptions(list(args))
    return options


def children(service) -> list:
    return list(IServiceCollection(service))


def test_the_catalog_tree_is_writer_then_grpc_server(config_file) -> None:
    root = catalog.makeService(parse(catalog, "--config", config_file))
    assert isinstance(root, MultiService)
    service, metrics = children(root)
    assert isinstance(metrics, TCPServer) and metrics.args[0] == 56902  # its port + 10, on loopback
    assert isinstance(service, CatalogService)
    writer, server = children(service)
    assert isinstance(writer, GroupCommitter) and isinstance(server, GrpcServerService)
    assert str(server.address) == "127.0.0.1:56892"
    assert service.store is None and server.server is None, "nothing is opened before startService"


def test_the_order_tree_serves_the_replicas_address(config_file) -> None:
    root = order.makeService(parse(order, "--config", config_file, "--id", "2"))
    service, metrics = children(root)
    assert isinstance(metrics, TCPServer) and metrics.args[0] == 7112
    assert isinstance(service, OrderReplicaService)
    channels, writer, server = children(service)
    assert isinstance(channels, Channels) and isinstance(writer, GroupCommitter)
    assert str(server.address) == "127.0.0.1:7102"
    assert service.replica is None and service.store is None


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--id is required"),
        (["--id", "3"], "no replica with id 3 (configured ids: 1, 2)"),
        (["--id", "one"], "invalid literal"),
    ],
)
def test_order_options_are_checked(config_file, args, message) -> None:
    with pytest.raises(usage.UsageError) as caught:
        parse(order, "--config", config_file, *args)
    assert message in str(caught.value)


@pytest.mark.parametrize("module, extra", [(catalog, []), (order, ["--id", "1"])])
def test_a_bad_config_is_a_usage_error_naming_the_key(tmp_path, module, extra) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[catalog]\nadress = 1\n")
    with pytest.raises(usage.UsageError, match="catalog.adress"):
        parse(module, "--config", str(path), *extra)


def test_the_dropin_names_the_three_services() -> None:
    import twisted.plugins

    makers = {m.tapname: m for m in getPlugins(IServiceMaker, twisted.plugins)}
    assert {"bazaar-catalog", "bazaar-order", "bazaar-frontend"} <= set(makers)
    assert makers["bazaar-order"].module == "bazaar.plugins.order"


def make_from_another_table(config_file: str, store: str) -> None:
    """Make `store` ("catalog" or "order-1") under the config's data_dir from a one-stock table
    (the config itself keeps the default table)."""
    from bazaar.catalog.store import CatalogStore
    from bazaar.config import load_config
    from bazaar.core.stock import Stock, table_id
    from bazaar.order.store import OrderStore

    config = load_config(config_file)
    other = [Stock("acme", 1.0, 5, 0)]
    directory = config.data_dir / store
    opened = CatalogStore(directory, other) if store == "catalog" else OrderStore(directory, table_id(other))
    opened.close()


@pytest.mark.parametrize("module, store, args", [(catalog, "catalog", ()), (order, "order-1", ("--id", "1"))])
def test_a_store_made_from_another_stock_table_is_refused_before_anything_starts(config_file, module, store, args):
    make_from_another_table(config_file, store)
    with pytest.raises(usage.UsageError, match="made from another stock table"):
        parse(module, "--config", config_file, *args)


@pytest.mark.parametrize("module, store, args", [(catalog, "catalog", ()), (order, "order-1", ("--id", "1"))])
def test_a_store_another_version_wrote_is_refused_before_anything_starts(tmp_path, config_file, module, store, args):
    import sqlite3

    from bazaar.config import load_config

    directory = load_config(config_file).data_dir / store
    directory.mkdir(parents=True)
    name = "catalog.sqlite3" if store == "catalog" else "orders.sqlite3"
    with sqlite3.connect(directory / name) as conn:
        conn.execute("CREATE TABLE orders (number INTEGER PRIMARY KEY)")
    with pytest.raises(usage.UsageError, match="another version of Bazaar"):
        parse(module, "--config", config_file, *args)
    with sqlite3.connect(directory / name) as conn:  # and left as it was
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0


@pytest.mark.parametrize("module, args", [(catalog, ()), (order, ("--id", "1"))])
def test_a_file_that_is_not_a_store_is_refused_with_a_message(config_file, module, args):
    from bazaar.config import load_config

    config = load_config(config_file)
    directory = config.data_dir / ("catalog" if module is catalog else "order-1")
    directory.mkdir(parents=True)
    (directory / ("catalog.sqlite3" if module is catalog else "orders.sqlite3")).write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(usage.UsageError, match="not a Bazaar store|cannot be opened"):
        parse(module, "--config", config_file, *args)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _serving(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        request = health_pb2.HealthCheckRequest(service=CATALOG_SERVICE)
        return health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
@pytest.mark.parametrize("listen, dialled", [("::1", ["[::1]"]), ("::", ["[::1]", "127.0.0.1"])])
@pytest_twisted.ensureDeferred
async def test_a_catalog_listening_on_an_ipv6_host_is_served_there(tmp_path, listen, dialled) -> None:
    port = free_ports(1)[0]
    path = tmp_path / "v6.toml"
    path.write_text(f'data_dir = "data"\n[tls]\ninsecure = true\n'
                    f'[catalog]\naddress = "127.0.0.1:{port}"\nlisten = "{listen}"\nmetrics = false\n')
    root = catalog.makeService(parse(catalog, "--config", str(path)))
    (service,) = children(root)
    assert str(service.grpc.address) == f"[{listen}]:{port}"
    root.startService()  # raised "cannot listen on :::<port>" before the brackets
    try:
        for host in dialled:
            status = await deferToThread(_serving, f"{host}:{port}")
            assert status == health_pb2.HealthCheckResponse.SERVING, host
    finally:
        await root.stopService()
