"""Where each process listens and serves metrics, and several front ends, in the config."""

from __future__ import annotations

import pytest

from bazaar.config import Address, ConfigError, FrontendAddresses, load_config, parse_config


def test_the_defaults_put_each_metrics_endpoint_on_loopback_at_its_port_plus_ten(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None)
    assert {name: str(config.metrics_address(name)) for name in config.addresses_of()} == {
        "catalog": "127.0.0.1:56902", "order-1": "127.0.0.1:56904", "order-2": "127.0.0.1:56905",
        "order-3": "127.0.0.1:56906", "frontend": "127.0.0.1:56903",
    }
    assert config.bind("order-1", config.replicas[1]) == config.replicas[1]


def test_listen_and_metrics_per_process(tmp_path):
    config = parse_config("""
[catalog]
address = "cat.example:7000"
listen = "0.0.0.0"
metrics = "0.0.0.0:9100"
[replicas]
1 = { address = "r1.example:7001", listen = "::", metrics = false }
2 = "r2.example:7001"
3 = { address = "r3.example:7001" }
""", tmp_path)
    assert config.bind("catalog", config.catalog) == Address("0.0.0.0", 7000)
    assert config.bind("order-1", config.replicas[1]) == Address("::", 7001)
    assert config.bind("order-2", config.replicas[2]) == Address("r2.example", 7001)
    assert config.metrics_address("catalog") == Address("0.0.0.0", 9100)
    assert config.metrics_address("order-1") is None
    # On three hosts, the three replicas' default metrics share one loopback port: no clash.
    assert {config.metrics_address(f"order-{i}") for i in (2, 3)} == {Address("127.0.0.1", 7011)}


def test_several_front_ends(tmp_path):
    config = parse_config("""
[frontend]
cache_size = 4
[frontends.1]
address = "127.0.0.1:7001"
internal = "127.0.0.1:7002"
[frontends.2]
address = "127.0.0.1:7003"
internal = "127.0.0.1:7004"
listen = "0.0.0.0"
metrics = "127.0.0.1:7005"
""", tmp_path)
    assert config.frontends == {
        1: FrontendAddresses(Address("127.0.0.1", 7001), Address("127.0.0.1", 7002)),
        2: FrontendAddresses(Address("127.0.0.1", 7003), Address("127.0.0.1", 7004)),
    }
    assert config.frontend.cache_size == 4
    assert config.bind("frontend-2", config.frontends[2].internal) == Address("0.0.0.0", 7004)
    assert config.metrics_address("frontend-2") == Address("127.0.0.1", 7005)
    assert config.metrics_address("frontend") == Address("127.0.0.1", 7011)
    with pytest.raises(ConfigError, match="no front end with id 3"):
        config.frontend_address(3)


def test_metrics_on_every_interface_clash_only_on_one_host(tmp_path):
    # One host per process (docs/deploy.md): each serves its metrics on 0.0.0.0 at the same port.
    def front_ends(second_host: str, second_port: int) -> str:
        return f"""
[frontends.1]
address = "fe1.example:56893"
internal = "fe1.example:56897"
metrics = "0.0.0.0:56903"
[frontends.2]
address = "{second_host}:{second_port}"
internal = "{second_host}:{second_port + 1}"
metrics = "0.0.0.0:56903"
"""
    config = parse_config(front_ends("fe2.example", 56893), tmp_path)
    assert config.metrics_address("frontend") == config.metrics_address("frontend-2") == Address("0.0.0.0", 56903)
    with pytest.raises(ConfigError, match=r"frontends\.2\.metrics: 0\.0\.0\.0:56903 is already used by frontends\.1"):
        parse_config(front_ends("fe1.example", 56993), tmp_path)


@pytest.mark.parametrize("text, key", [
    ('[frontend]\naddress = "127.0.0.1:7001"\n[frontends.1]\naddress = "127.0.0.1:7002"\ninternal = "127.0.0.1:7003"',
     "frontend.address: with [frontends]"),
    ('[frontends.1]\naddress = "127.0.0.1:7002"', "frontends.1.internal: required"),
    ('[frontends.0]\naddress = "127.0.0.1:7002"\ninternal = "127.0.0.1:7003"', "frontends.0: ids are whole numbers"),
    ('[frontends.1]\naddress = "127.0.0.1:7002"\ninternal = "127.0.0.1:7003"\ncache = true', "unknown key 'frontends.1.cache'"),
    ("frontends = 3", "frontends: expected tables"),
    ('[frontends]\n1 = "127.0.0.1:7002"', "frontends.1: expected a table"),
    ('[replicas]\n1 = { listen = "0.0.0.0" }', "replicas.1.address: required"),
    ('[replicas]\n1 = { address = "127.0.0.1:7001", port = 3 }', "unknown key 'replicas.1.port'"),
    ('[replicas]\n1 = { address = "127.0.0.1:7001", listen = "0.0.0.0:7001" }', "replicas.1.listen: expected a host"),
    ('[catalog]\nlisten = 7', "catalog.listen: expected a host"),
    ('[catalog]\nmetrics = "nowhere"', "catalog.metrics: expected"),
    ('[catalog]\nmetrics = true', "catalog.metrics: expected"),
    ('[catalog]\nmetrics = "127.0.0.1:56894"', "catalog.metrics: 127.0.0.1:56894 is already used by replicas.1"),
    ('[frontend]\nmetrics = "127.0.0.1:56904"', "is already used by"),
    ('[replicas]\n1 = "127.0.0.1:56892"', "replicas.1: 127.0.0.1:56892 is already used by catalog.address"),
])
def test_bad_placements_are_refused_naming_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        parse_config(text, tmp_path)


@pytest.mark.parametrize("text, refused", [
    # The deploy file's style, a replica's metrics at its own gRPC port: both bind 0.0.0.0.
    ("""
[replicas]
1 = { address = "order-1:56894", listen = "0.0.0.0", metrics = "0.0.0.0:56894" }
2 = "order-2:56895"
3 = "order-3:56896"
""", "replicas.1.metrics: 0.0.0.0:56894 is already used by replicas.1"),
    # Metrics on every interface at the catalog's own loopback port.
    ('[catalog]\naddress = "127.0.0.1:56892"\nmetrics = "0.0.0.0:56892"\n',
     "catalog.metrics: 0.0.0.0:56892 is already used by catalog.address"),
    # A front end's metrics at its own internal port, which it binds on every interface.
    ('[frontend]\naddress = "fe1:56893"\ninternal = "fe1:56897"\nlisten = "0.0.0.0"\nmetrics = "0.0.0.0:56897"\n',
     "frontend.metrics: 0.0.0.0:56897 is already used by frontend.internal"),
    # Listening on every IPv6 interface takes the port on every address, 127.0.0.1 too.
    ('[catalog]\naddress = "cat:7000"\nlisten = "::"\nmetrics = "127.0.0.1:7000"\n',
     "catalog.metrics: 127.0.0.1:7000 is already used by catalog.address"),
    # localhost is 127.0.0.1: the front end's default metrics (port + 10) is replica 1's port.
    ('[frontend]\naddress = "localhost:7001"\n[replicas]\n1 = "127.0.0.1:7011"\n2 = "127.0.0.1:7012"\n',
     "frontend.metrics: 127.0.0.1:7011 is already used by replicas.1"),
    # Every loopback host is one machine, and [::1] is ::1.
    ('[catalog]\naddress = "[::1]:7000"\nmetrics = "::1:7000"\n',
     "catalog.metrics: [::1]:7000 is already used by catalog.address"),
])
def test_a_port_one_machine_binds_twice_is_refused_naming_both_keys(tmp_path, text, refused):
    with pytest.raises(ConfigError) as raised:
        parse_config(text, tmp_path)
    assert str(raised.value) == refused


def test_one_port_on_two_hosts_of_one_machine_is_no_clash(tmp_path):
    config = parse_config("""
[catalog]
address = "127.0.0.1:7000"
metrics = "127.0.0.2:7000"
[replicas]
1 = { address = "order-1:7001", listen = "10.0.0.1", metrics = "127.0.0.1:7001" }
2 = { address = "order-2:7001", listen = "0.0.0.0", metrics = "0.0.0.0:7002" }
3 = { address = "order-3:7001", listen = "0.0.0.0", metrics = "0.0.0.0:7002" }
""", tmp_path)
    assert config.metrics_address("catalog") == Address("127.0.0.2", 7000)


@pytest.mark.parametrize("text, key", [
    ('[replicas]\n1 = "127.0.0.1:7001"\n01 = "127.0.0.1:7002"\n2 = "127.0.0.1:7003"\n', "replicas.01"),
    ('[replicas]\n007 = "127.0.0.1:7001"\n', "replicas.007"),
    ('[frontends.1]\naddress = "127.0.0.1:7001"\ninternal = "127.0.0.1:7002"\n'
     '[frontends.01]\naddress = "127.0.0.1:7003"\ninternal = "127.0.0.1:7004"\n', "frontends.01"),
])
def test_an_id_with_leading_zeros_is_refused_not_merged(tmp_path, text, key):
    with pytest.raises(ConfigError, match=rf"^{key.replace('.', '[.]')}: write the id without leading zeros"):
        parse_config(text, tmp_path)


@pytest.mark.parametrize("text, bound", [
    ('[catalog]\nlisten = "::"\n', "[::]:56892"),
    ('[catalog]\nlisten = "[::]"\n', "[::]:56892"),
    ('[catalog]\nlisten = "::1"\n', "[::1]:56892"),
    ('[tls]\ninsecure = true\n[catalog]\naddress = "[::1]:7000"\n', "[::1]:7000"),
    ('[tls]\ninsecure = true\n[catalog]\naddress = "::1:7000"\n', "[::1]:7000"),
    ('[catalog]\nlisten = "0.0.0.0"\n', "0.0.0.0:56892"),
])
def test_an_ipv6_host_is_bracketed_where_grpc_binds_it(tmp_path, text, bound):
    config = parse_config(text, tmp_path)
    assert str(config.bind("catalog", config.catalog)) == bound
