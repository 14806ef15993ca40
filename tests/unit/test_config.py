from pathlib import Path

import pytest

from bazaar.config import Address, Config, ConfigError, load_config, parse_config

FULL = """
data_dir = "state"

[catalog]
address = "127.0.0.1:7000"

[frontend]
address = "localhost:7001"
cache = false
cache_size = 3

[replicas]
1 = "127.0.0.1:7011"
4 = "127.0.0.1:7014"

[timeouts]
rpc = 1.5
probe = 0.2
http = 3
"""


def test_a_full_file_is_read(tmp_path: Path) -> None:
    config = parse_config(FULL, tmp_path)
    assert config.data_dir == tmp_path / "state"
    assert config.catalog == Address("127.0.0.1", 7000)
    assert (config.frontend.address, config.frontend.cache, config.frontend.cache_size) == (
        Address("localhost", 7001), False, 3
    )
    assert config.replicas == {1: Address("127.0.0.1", 7011), 4: Address("127.0.0.1", 7014)}
    assert (config.timeouts.rpc, config.timeouts.probe, config.timeouts.http) == (1.5, 0.2, 3.0)
    assert config.replica_dir(4) == tmp_path / "state" / "order-4"


def test_no_file_means_the_loopback_defaults_under_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config("bazaar.toml")
    assert config == Config(data_dir=tmp_path / "var")
    assert str(config.catalog) == "127.0.0.1:56892"
    assert str(config.frontend.address) == "127.0.0.1:56893"
    assert {i: str(a) for i, a in config.replicas.items()} == {
        1: "127.0.0.1:56894", 2: "127.0.0.1:56895", 3: "127.0.0.1:56896"
    }
    assert config.frontend.cache and config.frontend.cache_size == 8 and config.source is None


def test_a_relative_data_dir_is_relative_to_the_files_folder(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "c.toml").write_text('data_dir = "../data"\n')
    monkeypatch.chdir("/")
    config = load_config(tmp_path / "etc" / "c.toml")
    assert config.data_dir.resolve() == tmp_path / "data"
    assert config.source == tmp_path / "etc" / "c.toml"


def test_a_named_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "text, names",
    [
        ("colour = 1", "'colour'"),
        ("[frontend]\ncahce = true", "'frontend.cahce'"),
        ("[catalog]\nport = 1", "'catalog.port'"),
        ("[timeouts]\nforever = 1", "'timeouts.forever'"),
        ("[catalog]\naddress = 56892", "catalog.address"),
        ('[catalog]\naddress = "localhost"', "catalog.address"),
        ('[catalog]\naddress = ":80"', "catalog.address"),
        ('[catalog]\naddress = "h:0"', "catalog.address"),
        ('[catalog]\naddress = "h:70000"', "catalog.address"),
        ('[catalog]\naddress = "h:\u00b2"', "catalog.address"),  # a Unicode digit
        ('[replicas]\n"\u0661" = "h:1"', "replicas.\u0661"),
        ('[frontend]\ncache = "yes"', "frontend.cache"),
        ("[frontend]\ncache_size = 0", "frontend.cache_size"),
        ("[frontend]\ncache_size = true", "frontend.cache_size"),
        ("[frontend]\ncache_size = 2.5", "frontend.cache_size"),
        ("catalog = 5", "catalog"),
        ('[replicas]\nx = "h:1"', "replicas.x"),
        ('[replicas]\n0 = "h:1"', "replicas.0"),
        ("[replicas]\n1 = 5", "replicas.1"),
        ("replicas = {}", "replicas"),
        ("data_dir = 5", "data_dir"),
        ('data_dir = ""', "data_dir"),
        ("[timeouts]\nrpc = 0", "timeouts.rpc"),
        ("[timeouts]\nprobe = -1", "timeouts.probe"),
        ("[timeouts]\nhttp = true", "timeouts.http"),
        ('[replicas]\n1 = "127.0.0.1:56892"', "replicas.1"),  # the catalog's address
        ("= broken", "not valid TOML"),
    ],
)
def test_bad_files_are_refused_with_the_key_named(tmp_path: Path, text: str, names: str) -> None:
    path = tmp_path / "bazaar.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert names in str(caught.value)
    assert str(path) in str(caught.value)


def test_an_unknown_replica_id_is_named_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no replica with id 9 \(configured ids: 1, 2, 3\)"):
        Config().replica_address(9)
