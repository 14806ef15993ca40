"""[frontend]'s limits of the public port and its TLS files (docs/api.md, Configuration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bazaar.config import ConfigError, FrontendConfig, parse_config


def frontend(text: str, base: Path) -> FrontendConfig:
    return parse_config(f"[frontend]\n{text}\n", base).frontend


def test_the_defaults(tmp_path):
    limits = frontend("", tmp_path)
    assert (limits.read_timeout, limits.idle_timeout) == (10.0, 30.0)
    assert (limits.max_connections, limits.max_connections_per_peer) == (1000, 256)
    assert limits.certificate is None and limits.key is None


def test_every_limit_is_read(tmp_path):
    limits = frontend("read_timeout = 1\nidle_timeout = 2.5\nmax_connections = 50\nmax_connections_per_peer = 5",
                      tmp_path)
    assert (limits.read_timeout, limits.idle_timeout) == (1.0, 2.5)
    assert (limits.max_connections, limits.max_connections_per_peer) == (50, 5)


def test_tls_files_are_relative_to_the_config_files_folder(tmp_path):
    (tmp_path / "tls").mkdir()
    for name in ("fe.pem", "fe.key"):
        (tmp_path / "tls" / name).write_text("-")
    limits = frontend('certificate = "tls/fe.pem"\nkey = "tls/fe.key"', tmp_path)
    assert (limits.certificate, limits.key) == (tmp_path / "tls" / "fe.pem", tmp_path / "tls" / "fe.key")


@pytest.mark.parametrize("text, message", [
    ("read_timeout = 0", "frontend.read_timeout: expected seconds in (0, 3600]"),
    ("read_timeout = true", "frontend.read_timeout: expected seconds"),
    ("idle_timeout = 3601", "frontend.idle_timeout: expected seconds in (0, 3600]"),
    ("idle_timeout = \"5\"", "frontend.idle_timeout: expected seconds"),
    ("max_connections = 0", "frontend.max_connections: expected a whole number >= 1"),
    ("max_connections = 1.5", "frontend.max_connections: expected a whole number"),
    ("max_connections_per_peer = -1", "frontend.max_connections_per_peer: expected a whole number"),
    ('certificate = "a.pem"', "frontend.certificate: given without frontend.key"),
    ('key = "a.key"', "frontend.key: given without frontend.certificate"),
    ('certificate = "absent.pem"\nkey = "absent.key"', "frontend.certificate: no such file"),
    ('certificate = ""\nkey = "a.key"', "frontend.certificate: expected a path to a PEM file"),
    ("certificate = 5\nkey = 6", "frontend.certificate: expected a path to a PEM file"),
    ("max_body = 5", "unknown key 'frontend.max_body'"),
])
def test_bad_values_are_refused_naming_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as refused:
        frontend(text, tmp_path)
    assert message in str(refused.value)


def test_a_missing_key_file_is_named(tmp_path):
    (tmp_path / "fe.pem").write_text("-")
    with pytest.raises(ConfigError, match="frontend.key: no such file"):
        frontend('certificate = "fe.pem"\nkey = "fe.key"', tmp_path)
