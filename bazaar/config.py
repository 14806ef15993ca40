"""The cluster's TOML configuration (docs/api.md): parsed, validated, with loopback defaults.

Every process reads the same file; a bad file stops a process before it starts anything.
"""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bazaar.core.bounds import MAX_INDEX
from bazaar.core.snapshot import SNAPSHOT_GAP
from bazaar.core.stock import DEFAULT_STOCKS, Stock
from bazaar.tls.identity import CATALOG, Role, frontend_name, identity_of, replica_name

DEFAULT_CONFIG_PATH = "bazaar.toml"
MAX_STOCKS = 10_000
MAX_STOCK_NAME = 100  # characters: the front end finds no longer name (its MAX_NAME_LENGTH)
MAX_PRICE = 1e9
# Orders a front end may keep (frontend.order_cache_size): each costs about 300 bytes in its
# cache (its encoded answer of some 80 bytes, its number and the LRU's bookkeeping; measured
# with tracemalloc and RSS over 100,000 to 3,000,000 entries), 350-400 with a 100-character
# stock name: at most about 0.7-0.8 GB.
MAX_ORDER_CACHE = 2_000_000
MAX_SHARES = 10**15  # a stock's quantity or volume; far below where a float would round
# A process's metrics endpoint, unless its config names one: on loopback (counters are for the
# operator, not the public), at its own port plus this.
METRICS_PORT_OFFSET = 10


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class Address:
    host: str  # as written: an IPv6 host with or without its brackets
    port: int

    def __str__(self) -> str:
        """"host:port", an IPv6 host in brackets ("[::]:56892"): as gRPC binds and dials it,
        and as a URL names it. A listener on a socket takes the host without brackets."""
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.port}"

    @classmethod
    def parse(cls, text: Any, key: str) -> "Address":
        if not isinstance(text, str):
            raise ConfigError(f"{key}: expected a \"host:port\" string, got {text!r}")
        host, sep, port = text.rpartition(":")
        if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            raise ConfigError(f"{key}: expected \"host:port\" with a port 1-65535, got {text!r}")
        return cls(host, int(port))


@dataclass(frozen=True)
class Timeouts:
    """Deadlines in seconds. Short enough that a dead peer costs a fraction of a second."""

    rpc: float = 2.0  # an ordinary gRPC call (lookup, trade, propagate)
    probe: float = 0.3  # a health check during leader selection
    http: float = 2.0  # front end to client and leader to front end (invalidation, /leader)
    # A client's POST /orders, all attempts included: the front end answers within this, with
    # 504 (outcome unknown, retry under the same key) when it could not learn the outcome.
    request: float = 4.0


@dataclass(frozen=True)
class FrontendAddresses:
    """Where one front end is reached: its public port, and its internal listener (cache
    invalidation, the cache report: cluster certificates only)."""

    address: Address
    internal: Address


@dataclass(frozen=True)
class FrontendConfig:
    """What every front end shares; where each is, is Config.frontends."""

    cache: bool = True
    cache_size: int = 8
    # Committed orders a front end keeps to answer GET /orders/<n> again (0: none); about
    # 300 bytes each (MAX_ORDER_CACHE).
    order_cache_size: int = 10_000
    # The public port against slow and greedy clients, and TLS (docs/api.md, "Configuration").
    read_timeout: float = 10.0  # a connection's first request, or a request once begun, all in
    idle_timeout: float = 30.0  # a kept-alive connection waiting for its next request
    max_connections: int = 1000  # below the process's file descriptor limit
    max_connections_per_peer: int = 256  # one address cannot take every connection
    certificate: Path | None = None  # PEM; with `key`, the port speaks HTTPS
    key: Path | None = None


@dataclass(frozen=True)
class TlsConfig:
    """Mutual TLS on every gRPC link (docs/security.md). `dir` holds the authority and each
    process's certificate (`bazaar certs` makes them); None: `<data_dir>/certs`. `insecure`
    turns TLS off, for experiments on loopback only."""

    dir: Path | None = None
    insecure: bool = False


@dataclass(frozen=True)
class Config:
    data_dir: Path = field(default_factory=lambda: Path("var").resolve())
    catalog: Address = Address("127.0.0.1", 56892)
    frontend: FrontendConfig = FrontendConfig()
    frontends: dict[int, FrontendAddresses] = field(
        default_factory=lambda: {1: FrontendAddresses(Address("127.0.0.1", 56893), Address("127.0.0.1", 56897))}
    )
    replicas: dict[int, Address] = field(
        default_factory=lambda: {
            1: Address("127.0.0.1", 56894),
            2: Address("127.0.0.1", 56895),
            3: Address("127.0.0.1", 56896),
        }
    )
    timeouts: Timeouts = Timeouts()
    # Entries a rejoining replica may miss before it installs a snapshot of the leader's
    # committed log instead of streaming them one by one (bazaar.core.snapshot).
    snapshot_gap: int = SNAPSHOT_GAP
    tls: TlsConfig = TlsConfig()
    # The initial stock table, in the file's order; every process must be given the same.
    stocks: tuple[Stock, ...] = DEFAULT_STOCKS
    # The file this came from; None when running on built-in defaults.
    source: Path | None = None
    # Per process name (catalog, order-N, frontend, frontend-N): the host its listeners bind,
    # when not its address's (a process may listen on every interface, "0.0.0.0" or "::",
    # while its peers dial the routable name in its address).
    listen: dict[str, str] = field(default_factory=dict)
    # Per process name: where it serves /metrics, when not the default (metrics_address);
    # None: it serves none.
    metrics: dict[str, Address | None] = field(default_factory=dict)

    def service_dir(self, name: str) -> Path:
        """Where one service keeps its files: catalog/, order-1/, frontend/ ..."""
        return self.data_dir / name

    def replica_dir(self, replica_id: int) -> Path:
        return self.service_dir(replica_name(replica_id))

    def named_addresses(self) -> list[tuple[str, Address]]:
        """Every address a peer dials, with its key."""
        named = [("catalog.address", self.catalog)]
        for i, frontend in self.frontends.items():
            named += [(self.frontend_key(i, "address"), frontend.address),
                      (self.frontend_key(i, "internal"), frontend.internal)]
        return named + [(f"replicas.{i}", a) for i, a in self.replicas.items()]

    def addresses_of(self) -> dict[str, Address]:
        """Each process's name and the address its peers dial (a front end's: its public port)."""
        named = {CATALOG: self.catalog}
        named.update({replica_name(i): a for i, a in self.replicas.items()})
        named.update({frontend_name(i): f.address for i, f in self.frontends.items()})
        return named

    def bind(self, name: str, address: Address) -> Address:
        """Where process `name` listens for what its peers reach at `address`."""
        return Address(self.listen.get(name, address.host), address.port)

    def metrics_address(self, name: str) -> Address | None:
        """Where process `name` serves /metrics: as configured, else on loopback at its port
        plus METRICS_PORT_OFFSET."""
        if name in self.metrics:
            return self.metrics[name]
        port = self.addresses_of()[name].port + METRICS_PORT_OFFSET
        return Address("127.0.0.1", port) if port < 65536 else None

    def frontend_key(self, frontend_id: int, key: str) -> str:
        """How the file names a front end's key: [frontend]'s for a lone front end 1."""
        return f"frontend.{key}" if list(self.frontends) == [1] else f"frontends.{frontend_id}.{key}"

    def frontend_address(self, frontend_id: int) -> FrontendAddresses:
        try:
            return self.frontends[frontend_id]
        except KeyError:
            known = ", ".join(str(i) for i in sorted(self.frontends))
            raise ConfigError(f"no front end with id {frontend_id} (configured ids: {known})") from None

    @property
    def tls_dir(self) -> Path:
        return self.tls.dir if self.tls.dir is not None else self.data_dir / "certs"

    def replica_address(self, replica_id: int) -> Address:
        try:
            return self.replicas[replica_id]
        except KeyError:
            known = ", ".join(str(i) for i in sorted(self.replicas))
            raise ConfigError(f"no replica with id {replica_id} (configured ids: {known})") from None


# [frontend]'s limits of the public port and its TLS files; every one optional.
_FRONTEND_LIMITS = (
    "read_timeout", "idle_timeout", "max_connections", "max_connections_per_peer", "certificate", "key"
)
MAX_FRONTEND_SECONDS = 3600.0


def _frontend_limits(table: dict[str, Any], base: Path) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    for key in ("read_timeout", "idle_timeout"):
        if key in table:
            value = table[key]
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not 0 < value <= MAX_FRONTEND_SECONDS:
                raise ConfigError(f"frontend.{key}: expected seconds in (0, {MAX_FRONTEND_SECONDS:g}], got {value!r}")
            limits[key] = float(value)
    for key in ("max_connections", "max_connections_per_peer"):
        if key in table:
            limits[key] = _positive_int(table, key, 1)
    given = [key for key in ("certificate", "key") if key in table]
    if len(given) == 1:
        other = "key" if given == ["certificate"] else "certificate"
        raise ConfigError(f"frontend.{given[0]}: given without frontend.{other} (HTTPS needs both)")
    for key in given:
        value = table[key]
        if not isinstance(value, str) or not value:
            raise ConfigError(f"frontend.{key}: expected a path to a PEM file, got {value!r}")
        file = (base / value).resolve()  # relative to the config file's folder, as data_dir
        if not file.is_file():
            raise ConfigError(f"frontend.{key}: no such file {str(file)!r}")
        limits[key] = file
    return limits


# Where a process binds and serves its metrics, besides its address.
_PLACEMENT = ("listen", "metrics")

_SECTION_KEYS = {
    "": {"data_dir", "catalog", "frontend", "frontends", "replicas", "replication", "timeouts", "tls", "stocks"},
    "catalog": {"address", *_PLACEMENT},
    # address, internal, listen and metrics here are front end 1's, when there is no [frontends]
    "frontend": {"address", "internal", "cache", "cache_size", "order_cache_size", *_FRONTEND_LIMITS, *_PLACEMENT},
    "frontends.*": {"address", "internal", *_PLACEMENT},
    "replicas.*": {"address", *_PLACEMENT},
    "timeouts": {"rpc", "probe", "http", "request"},
    "replication": {"snapshot_gap"},
    "tls": {"dir", "insecure"},
    "stocks.*": {"price", "quantity", "volume"},  # each stock's table
}


def load_config(path: str | Path | None = None) -> Config:
    """Read `path` (default bazaar.toml in the working directory).

    A missing file means the built-in defaults, with data_dir relative to the working
    directory; any problem in an existing file raises ConfigError naming the key.
    """
    explicit = path is not None
    path = Path(path if explicit else DEFAULT_CONFIG_PATH)
    if not path.exists():
        if explicit and str(path) != DEFAULT_CONFIG_PATH:
            raise ConfigError(f"{path}: no such configuration file")
        return Config()
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return _build(raw, path.resolve())
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def parse_config(text: str, base: Path) -> Config:
    """Parse TOML text as if it were a file in folder `base` (for tests and tools)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"not valid TOML: {e}") from None
    return _build(raw, base / DEFAULT_CONFIG_PATH)


def _build(raw: dict[str, Any], path: Path) -> Config:
    _refuse_unknown(raw, "")
    defaults = Config()
    data_dir = raw.get("data_dir", "var")
    if not isinstance(data_dir, str) or not data_dir:
        raise ConfigError(f"data_dir: expected a non-empty path string, got {data_dir!r}")
    catalog = _section(raw, "catalog")
    frontend = _section(raw, "frontend")
    timeouts = _section(raw, "timeouts")
    replication = _section(raw, "replication")
    tls = _section(raw, "tls")
    placement = _Placement()
    placement.read(CATALOG, catalog, "catalog")
    replicas = _replicas(raw, placement) if "replicas" in raw else defaults.replicas
    return _check_loopback_if_insecure(_check_distinct(Config(
        data_dir=(path.parent / data_dir).resolve(),
        catalog=Address.parse(catalog["address"], "catalog.address")
        if "address" in catalog
        else defaults.catalog,
        frontends=_frontends(raw, frontend, placement, defaults.frontends[1]),
        frontend=FrontendConfig(
            cache=_bool(frontend, "cache", defaults.frontend.cache, "frontend"),
            cache_size=_positive_int(frontend, "cache_size", defaults.frontend.cache_size),
            order_cache_size=_whole(frontend, "order_cache_size", defaults.frontend.order_cache_size),
            **_frontend_limits(frontend, path.parent),
        ),
        replicas=replicas,
        timeouts=Timeouts(
            **{k: _seconds(timeouts, k) for k in ("rpc", "probe", "http", "request") if k in timeouts}
        ),
        snapshot_gap=_snapshot_gap(replication, defaults.snapshot_gap),
        tls=TlsConfig(
            dir=_folder(tls, "dir", path.parent) if "dir" in tls else None,
            insecure=_bool(tls, "insecure", False, "tls"),
        ),
        stocks=_stocks(raw["stocks"]) if "stocks" in raw else defaults.stocks,
        source=path,
        listen=placement.listen,
        metrics=placement.metrics,
    )))


class _Placement:
    """Collects each process's `listen` and `metrics` keys as its table is read."""

    def __init__(self) -> None:
        self.listen: dict[str, str] = {}
        self.metrics: dict[str, Address | None] = {}

    def read(self, name: str, table: dict[str, Any], key: str) -> None:
        if "listen" in table:
            self.listen[name] = _host(table["listen"], f"{key}.listen")
        if "metrics" in table:
            value = table["metrics"]
            self.metrics[name] = None if value is False else Address.parse(value, f"{key}.metrics")


def _host(value: Any, key: str) -> str:
    """An interface to bind: an IP address (IPv6 bare or in brackets) or a host name."""
    host = value.strip("[]") if isinstance(value, str) else ""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", host):
        return host
    raise ConfigError(f"{key}: expected a host or IP address to listen on (\"0.0.0.0\", \"::\"), got {value!r}")


def _frontends(raw: dict[str, Any], frontend: dict[str, Any], placement: _Placement,
               default: FrontendAddresses) -> dict[int, FrontendAddresses]:
    """[frontends.N] tables, or front end 1 from [frontend]'s address and internal."""
    own = [key for key in ("address", "internal", *_PLACEMENT) if key in frontend]
    if "frontends" not in raw:
        placement.read(frontend_name(1), frontend, "frontend")
        return {1: FrontendAddresses(
            Address.parse(frontend["address"], "frontend.address") if "address" in frontend else default.address,
            Address.parse(frontend["internal"], "frontend.internal") if "internal" in frontend else default.internal,
        )}
    if own:
        raise ConfigError(f"frontend.{own[0]}: with [frontends], give each front end's {own[0]} in its own table")
    frontends: dict[int, FrontendAddresses] = {}
    for frontend_id, section, value in _numbered(raw, "frontends", "tables [frontends.N] with address and internal"):
        if not isinstance(value, dict):
            raise ConfigError(f"{section}: expected a table {{ address = ..., internal = ... }}, got {value!r}")
        _refuse_unknown(value, section, "frontends.*")
        for required in ("address", "internal"):
            if required not in value:
                raise ConfigError(f"{section}.{required}: required")
        placement.read(frontend_name(frontend_id), value, section)
        frontends[frontend_id] = FrontendAddresses(
            Address.parse(value["address"], f"{section}.address"), Address.parse(value["internal"], f"{section}.internal"),
        )
    return dict(sorted(frontends.items()))


def _numbered(raw: dict[str, Any], name: str, expected: str) -> list[tuple[int, str, Any]]:
    """A table of processes by id ([replicas], [frontends]): (id, its key, its value) each."""
    table = raw[name]
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{name}: expected {expected}, got {table!r}")
    numbered = []
    for key, value in table.items():
        if not (key.isascii() and key.isdigit()) or not 1 <= int(key) <= 999_999_999:
            raise ConfigError(f"{name}.{key}: ids are whole numbers from 1 to 999999999")
        if key != str(int(key)):
            # "01" and "1" are two keys to TOML but one id: refused, not silently merged.
            raise ConfigError(f"{name}.{key}: write the id without leading zeros ({int(key)})")
        numbered.append((int(key), f"{name}.{key}", value))
    return numbered


def _folder(table: dict[str, Any], key: str, base: Path) -> Path:
    value = table[key]
    if not isinstance(value, str) or not value:
        raise ConfigError(f"tls.{key}: expected a non-empty path string, got {value!r}")
    return (base / value).resolve()


def _check_loopback_if_insecure(config: Config) -> Config:
    """Plaintext links are for experiments on one machine: every address must be loopback."""
    if not config.tls.insecure:
        return config
    named = config.named_addresses()
    for key, address in named:
        if not _loopback(address.host):
            raise ConfigError(
                f"tls.insecure: allowed only when every address is loopback, but {key} is {address}"
            )
    return config


def _check_distinct(config: Config) -> Config:
    """No two listeners one machine cannot bind both. A process's machine is its address's
    host (every loopback host is one machine); each of its listeners binds `listen` (else its
    address's host) for its service port and a front end's internal port, and its metrics
    address's host for metrics. Two listeners on one machine clash when their ports are equal
    and so are their hosts, or either host is every interface ("0.0.0.0", "::"). So two
    replicas on two hosts may both serve metrics on 127.0.0.1:56904, or 0.0.0.0:56904, but one
    process may not serve its metrics on 0.0.0.0 at a port it binds for gRPC."""
    machines = {name: _normal_host(address.host, machine=True) for name, address in config.addresses_of().items()}
    listeners = [(CATALOG, "catalog.address", config.catalog)]
    for i, frontend in config.frontends.items():
        listeners += [(frontend_name(i), config.frontend_key(i, "address"), frontend.address),
                      (frontend_name(i), config.frontend_key(i, "internal"), frontend.internal)]
    listeners += [(replica_name(i), f"replicas.{i}", address) for i, address in config.replicas.items()]
    bound = [(name, key, config.bind(name, address)) for name, key, address in listeners]
    for name in config.addresses_of():
        metrics = config.metrics_address(name)
        if metrics is not None:
            bound.append((name, _metrics_key(config, name), metrics))
    seen: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for name, key, address in bound:
        host = _normal_host(address.host)
        others = seen.setdefault((machines[name], address.port), [])
        for other_host, other_key in others:
            if host == other_host or _unspecified(host) or _unspecified(other_host):
                raise ConfigError(f"{key}: {address} is already used by {other_key}")
        others.append((host, key))
    return config


def _normal_host(host: str, machine: bool = False) -> str:
    """`host` as one spelling of it: no brackets, lower case, an IP address in its compressed
    form, localhost as 127.0.0.1; with `machine`, every loopback host as 127.0.0.1 (a process
    dialled on loopback runs on the machine of every process dialled on loopback)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    return "127.0.0.1" if machine and ip.is_loopback else ip.compressed


def _metrics_key(config: Config, name: str) -> str:
    identity = identity_of(name)
    assert identity is not None  # a name of config.addresses_of()
    if identity.role is Role.REPLICA:
        return f"replicas.{identity.replica_id}.metrics"
    if identity.role is Role.FRONTEND:
        return config.frontend_key(identity.frontend_id, "metrics")
    return "catalog.metrics"


def _unspecified(host: str) -> bool:
    """Every interface of the host it is bound on ("0.0.0.0", "::")."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: expected a table [{name}], got {value!r}")
    _refuse_unknown(value, name)
    return value


def _refuse_unknown(table: dict[str, Any], section: str, kind: str | None = None) -> None:
    """`kind` picks the allowed keys when `section` is one of many alike (stocks.*)."""
    for key in table:
        if key not in _SECTION_KEYS[kind or section]:
            name = f"{section}.{key}" if section else key
            raise ConfigError(f"unknown key {name!r}")


def _bool(table: dict[str, Any], key: str, default: bool, section: str) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{section}.{key}: expected true or false, got {value!r}")
    return value


def _positive_int(table: dict[str, Any], key: str, default: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"frontend.{key}: expected a whole number >= 1, got {value!r}")
    return value


def _snapshot_gap(table: dict[str, Any], default: int) -> int:
    value = table.get("snapshot_gap", default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INDEX:
        raise ConfigError(f"replication.snapshot_gap: expected a whole number in [1, 2^62], got {value!r}")
    return value


def _whole(table: dict[str, Any], key: str, default: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ORDER_CACHE:
        raise ConfigError(f"frontend.{key}: expected a whole number in [0, {MAX_ORDER_CACHE:,}], got {value!r}")
    return value


def _seconds(table: dict[str, Any], key: str) -> float:
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 60:
        raise ConfigError(f"timeouts.{key}: expected seconds in (0, 60], got {value!r}")
    return float(value)


def _replicas(raw: dict[str, Any], placement: _Placement) -> dict[int, Address]:
    """id = "host:port", or id = { address = "host:port", listen = ..., metrics = ... }."""
    replicas: dict[int, Address] = {}
    for replica_id, section, value in _numbered(raw, "replicas", 'a table of id = "host:port"'):
        if isinstance(value, dict):
            _refuse_unknown(value, section, "replicas.*")
            if "address" not in value:
                raise ConfigError(f"{section}.address: required")
            placement.read(replica_name(replica_id), value, section)
            value = value["address"]
            section += ".address"
        replicas[replica_id] = Address.parse(value, section)
    return dict(sorted(replicas.items()))


def _stocks(table: Any) -> tuple[Stock, ...]:
    if not isinstance(table, dict):
        raise ConfigError(
            f"stocks: expected a table [stocks] of name = {{ price, quantity }}, got {table!r}"
        )
    if not 1 <= len(table) <= MAX_STOCKS:
        raise ConfigError(f"stocks: expected 1 to {MAX_STOCKS} stocks, got {len(table)}")
    return tuple(_stock(name, value) for name, value in table.items())


def _stock(name: str, table: Any) -> Stock:
    key = _stock_key(name)
    # TOML's quoted keys allow any string; a name must also survive a URL path and a log line:
    # GET /stocks/<name> has one path segment, and a "/" (even as %2F) would make it two.
    if not 1 <= len(name) <= MAX_STOCK_NAME or not name.isprintable() or name != name.strip() or "/" in name:
        raise ConfigError(
            f"{key}: a stock name is 1 to {MAX_STOCK_NAME} printable characters, "
            "without leading or trailing spaces and without \"/\""
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{key}: expected a table {{ price = ..., quantity = ... }}, got {table!r}")
    _refuse_unknown(table, key, "stocks.*")
    return Stock(
        name,
        _price(table, key),
        _shares(table, "quantity", None, key),
        _shares(table, "volume", 0, key),
    )


def _stock_key(name: str) -> str:
    """The stock's dotted key as TOML would spell it, quoted when it is not a bare key."""
    bare = re.fullmatch(r"[A-Za-z0-9_-]+", name)
    return f"stocks.{name}" if bare else f"stocks.{json.dumps(name)}"


def _price(table: dict[str, Any], section: str) -> float:
    value = table.get("price")
    # The chained comparison also refuses nan and inf.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_PRICE:
        raise ConfigError(
            f"{section}.price: expected a number in (0, {MAX_PRICE:,.0f}], got {_got(table, 'price')}"
        )
    return float(value)


def _shares(table: dict[str, Any], key: str, default: int | None, section: str) -> int:
    """A count of shares; `default` None makes the key required."""
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SHARES:
        raise ConfigError(
            f"{section}.{key}: expected a whole number in [0, {MAX_SHARES:,}], got {_got(table, key)}"
        )
    return value


def _got(table: dict[str, Any], key: str) -> str:
    return repr(table[key]) if key in table else "nothing (the key is required)"
