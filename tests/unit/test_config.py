from pathlib import Path

import pytest

from bazaar.config import Address, Config, ConfigError, load_config, parse_config
from bazaar.core.snapshot import SNAPSHOT_GAP
from bazaar.core.stock import DEFAULT_STOCKS, Stock

FULL = """
data_dir = "state"

[catalog]
address = "127.0.0.1:7000"

[frontend]
address = "localhost:7001"
cache = false
cache_size = 3

[replicas]
1 = "127.0.0.1:7021"
4 = "127.0.0.1:7024"

[timeouts]
rpc = 1.5
probe = 0.2
http = 3
"""


def test_a_full_file_is_read(tmp_path: Path) -> None:
    config = parse_config(FULL, tmp_path)
    assert config.data_dir == tmp_path / "state"
    assert config.catalog == Address("127.0.0.1", 7000)
    assert (config.frontends[1].address, config.frontend.cache, config.frontend.cache_size) == (
        Address("localhost", 7001), False, 3
    )
    assert config.replicas == {1: Address("127.0.0.1", 7021), 4: Address("127.0.0.1", 7024)}
    assert (config.timeouts.rpc, config.timeouts.probe, config.timeouts.http) == (1.5, 0.2, 3.0)
    assert config.replica_dir(4) == tmp_path / "state" / "order-4"


def test_no_file_means_the_loopback_defaults_under_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config("bazaar.toml")
    assert config == Config(data_dir=tmp_path / "var")
    assert str(config.catalog) == "127.0.0.1:56892"
    assert str(config.frontends[1].address) == "127.0.0.1:56893"
    assert {i: str(a) for i, a in config.replicas.items()} == {
        1: "127.0.0.1:56894", 2: "127.0.0.1:56895", 3: "127.0.0.1:56896"
    }
    assert config.frontend.cache and config.frontend.cache_size == 8 and config.source is None
    assert config.stocks == DEFAULT_STOCKS


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
        ("[replication]\nsnapshot_gap = 0", "replication.snapshot_gap"),
        ("[replication]\nsnapshot_gap = true", "replication.snapshot_gap"),
        ("[replication]\nsnapshot_gap = 1.5", "replication.snapshot_gap"),
        ("[replication]\nsnapshot = 5", "'replication.snapshot'"),
        ('[replicas]\n1 = "127.0.0.1:56892"', "replicas.1"),  # the catalog's address
        ("= broken", "not valid TOML"),
    ],
)
def test_bad_files_are_refused_with_the_key_named(tmp_path: Path, text: str, names: str) -> None:
    message = _refusal(tmp_path, text)
    assert names in message
    assert str(tmp_path / "bazaar.toml") in message


def _refusal(tmp_path: Path, text: str) -> str:
    """The message load_config refuses `text` with, as a file in `tmp_path`."""
    path = tmp_path / "bazaar.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def test_an_unknown_replica_id_is_named_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no replica with id 9 \(configured ids: 1, 2, 3\)"):
        Config().replica_address(9)


def test_a_file_without_stocks_gets_the_seeds_table(tmp_path: Path) -> None:
    assert parse_config(FULL, tmp_path).stocks == DEFAULT_STOCKS


def test_a_stock_table_replaces_the_default_in_the_files_order(tmp_path: Path) -> None:
    text = """
[stocks]
zeta = { price = 2, quantity = 0, volume = 7 }
"imagine company" = { price = 0.5, quantity = 1000000000000000 }
alpha = { price = 1000000000, quantity = 3 }
"""
    assert parse_config(text, tmp_path).stocks == (
        Stock("zeta", 2.0, 0, 7),
        Stock("imagine company", 0.5, 10**15, 0),
        Stock("alpha", 1e9, 3, 0),
    )
    assert isinstance(parse_config(text, tmp_path).stocks[0].price, float)


def test_inline_and_dotted_stock_tables_are_the_same(tmp_path: Path) -> None:
    inline = """
[stocks]
tesla = { price = 183.26, quantity = 1000, volume = 100 }
ford = { price = 11.93, quantity = 1000 }
"""
    dotted = """
[stocks.tesla]
price = 183.26
quantity = 1000
volume = 100

[stocks.ford]
price = 11.93
quantity = 1000
"""
    expected = (Stock("tesla", 183.26, 1000, 100), Stock("ford", 11.93, 1000, 0))
    assert parse_config(inline, tmp_path).stocks == expected
    assert parse_config(dotted, tmp_path).stocks == expected


def test_the_stock_table_holds_at_most_ten_thousand(tmp_path: Path) -> None:
    def table(count: int) -> str:
        return "[stocks]\n" + "".join(f"s{i} = {{ price = 1, quantity = 1 }}\n" for i in range(count))

    assert len(parse_config(table(10_000), tmp_path).stocks) == 10_000
    with pytest.raises(ConfigError, match=r"^stocks: expected 1 to 10000 stocks, got 10001$"):
        parse_config(table(10_001), tmp_path)


def _stock_file(entry: str) -> str:
    return f"[stocks]\n{entry}\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("stocks = 5", "stocks: expected a table [stocks]"),
        ("stocks = []", "stocks: expected a table [stocks]"),
        ("[stocks]", "stocks: expected 1 to 10000 stocks, got 0"),
        (_stock_file("tesla = 5"), "stocks.tesla: expected a table"),
        (_stock_file("tesla = [1, 2]"), "stocks.tesla: expected a table"),
        (_stock_file('"" = { price = 1, quantity = 1 }'), 'stocks."": a stock name is 1 to 100'),
        (_stock_file(f'{"x" * 101} = {{ price = 1, quantity = 1 }}'), f"stocks.{'x' * 101}: a stock name"),
        (_stock_file('" tesla" = { price = 1, quantity = 1 }'), 'stocks." tesla": a stock name'),
        (_stock_file('"tesla " = { price = 1, quantity = 1 }'), 'stocks."tesla ": a stock name'),
        (_stock_file('"te\\tsla" = { price = 1, quantity = 1 }'), 'stocks."te\\tsla": a stock name'),
        (_stock_file('"te\\u0000sla" = { price = 1, quantity = 1 }'), 'stocks."te\\u0000sla": a stock name'),
        (_stock_file('"a/b" = { price = 1, quantity = 1 }'), 'stocks."a/b": a stock name is 1 to 100 printable characters, without leading or trailing spaces and without "/"'),
        (_stock_file("tesla = { price = 1, quantity = 1, colour = 1 }"), "unknown key 'stocks.tesla.colour'"),
        (_stock_file("tesla = { quantity = 1 }"), "stocks.tesla.price: expected a number in (0, 1,000,000,000], got nothing"),
        (_stock_file("tesla = { price = 0, quantity = 1 }"), "stocks.tesla.price: expected a number in (0, 1,000,000,000], got 0"),
        (_stock_file("tesla = { price = -2.5, quantity = 1 }"), "stocks.tesla.price: expected"),
        (_stock_file("tesla = { price = 1000000000.5, quantity = 1 }"), "stocks.tesla.price: expected"),
        (_stock_file("tesla = { price = nan, quantity = 1 }"), "stocks.tesla.price: expected"),
        (_stock_file("tesla = { price = inf, quantity = 1 }"), "stocks.tesla.price: expected"),
        (_stock_file("tesla = { price = true, quantity = 1 }"), "stocks.tesla.price: expected"),
        (_stock_file('tesla = { price = "1", quantity = 1 }'), "stocks.tesla.price: expected"),
        (_stock_file("tesla = { price = 1 }"), "stocks.tesla.quantity: expected a whole number in [0, 1,000,000,000,000,000], got nothing"),
        (_stock_file("tesla = { price = 1, quantity = -1 }"), "stocks.tesla.quantity: expected a whole number"),
        (_stock_file("tesla = { price = 1, quantity = 1000000000000001 }"), "stocks.tesla.quantity: expected"),
        (_stock_file("tesla = { price = 1, quantity = 2.0 }"), "stocks.tesla.quantity: expected"),
        (_stock_file("tesla = { price = 1, quantity = true }"), "stocks.tesla.quantity: expected"),
        (_stock_file("tesla = { price = 1, quantity = 1, volume = -1 }"), "stocks.tesla.volume: expected a whole number"),
        (_stock_file("tesla = { price = 1, quantity = 1, volume = 1.5 }"), "stocks.tesla.volume: expected"),
        (_stock_file("tesla = { price = 1, quantity = 1, volume = false }"), "stocks.tesla.volume: expected"),
        (_stock_file("tesla = { price = 1, quantity = 1, volume = 1000000000000001 }"), "stocks.tesla.volume: expected"),
    ],
)
def test_bad_stock_tables_are_refused_with_the_key_named(tmp_path: Path, text: str, message: str) -> None:
    assert _refusal(tmp_path, text).startswith(f"{tmp_path / 'bazaar.toml'}: {message}")


def test_a_config_named_through_dot_dot_is_the_same_cluster(tmp_path, monkeypatch):
    # `bazaar down --config ../bazaar.toml` must find the pidfiles `bazaar up` wrote.
    (tmp_path / "c").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "c" / "bazaar.toml").write_text('data_dir = "var"\n[tls]\ndir = "certs"\n')
    monkeypatch.chdir(tmp_path / "elsewhere")
    config = load_config("../c/bazaar.toml")
    assert config.data_dir == tmp_path.resolve() / "c" / "var"
    assert config.tls_dir == tmp_path.resolve() / "c" / "certs"


def test_the_snapshot_gap_is_read_and_has_a_default(tmp_path: Path) -> None:
    assert parse_config("[replication]\nsnapshot_gap = 10", tmp_path).snapshot_gap == 10
    assert parse_config("", tmp_path).snapshot_gap == SNAPSHOT_GAP
