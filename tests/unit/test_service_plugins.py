"""The bazaar-catalog and bazaar-order twistd plugins: options and the service trees they build."""

import pytest
from twisted.application.service import IServiceCollection, IServiceMaker, MultiService
from twisted.plugin import getPlugins
from twisted.python import usage

from bazaar.catalog.service import CatalogService
from bazaar.reactor.group_commit import GroupCommitter
from bazaar.order.service import OrderReplicaService
from bazaar.plugins import catalog, order
from bazaar.rpc.services import Channels, GrpcServerService

CONFIG = '[replicas]\n1 = "127.0.0.1:7101"\n2 = "127.0.0.1:7102"\n'


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
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
    (service,) = children(root)
    assert isinstance(service, CatalogService)
    writer, server = children(service)
    assert isinstance(writer, GroupCommitter) and isinstance(server, GrpcServerService)
    assert str(server.address) == "127.0.0.1:56892"
    assert service.store is None and server.server is None, "nothing is opened before startService"


def test_the_order_tree_serves_the_replicas_address(config_file) -> None:
    root = order.makeService(parse(order, "--config", config_file, "--id", "2"))
    (service,) = children(root)
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
