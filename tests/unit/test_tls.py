"""HTTPS settings from [frontend] certificate and key: loaded, or refused naming the key; and the
front end listens with TLS when they are set."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from twisted.application.internet import SSLServer, TCPServer
from twisted.internet import ssl
from twisted.python import usage

from bazaar.config import ConfigError, load_config
from bazaar.tools.cluster import make_certificates
from bazaar.frontend.site import ApiSite
from bazaar.plugins import frontend as plugin
from bazaar.tls.public import TlsFileError, client_policy, server_options, stdlib_context
from tests.selfsigned import private_key, write_self_signed


def test_a_certificate_and_its_key_make_server_options(tmp_path):
    cert, key = write_self_signed(tmp_path)
    options = server_options(cert, key)
    assert isinstance(options, ssl.CertificateOptions)
    assert options.getContext() is not None


def test_a_chain_in_the_certificate_file_is_sent_after_the_certificate(tmp_path):
    cert, key = write_self_signed(tmp_path)
    other, _ = write_self_signed(tmp_path, "ca")
    cert.write_bytes(cert.read_bytes() + other.read_bytes())
    options = server_options(cert, key)
    assert len(options.extraCertChain) == 1


def test_a_key_that_is_not_the_certificates_is_refused(tmp_path):
    cert, _ = write_self_signed(tmp_path)
    _, other_key = write_self_signed(tmp_path, "other")
    with pytest.raises(ConfigError, match="frontend.key: not the private key of frontend.certificate"):
        server_options(cert, other_key)


def test_a_certificate_file_without_a_certificate_is_refused(tmp_path):
    cert, key = write_self_signed(tmp_path)
    cert.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="frontend.certificate: .* holds no valid PEM certificate"):
        server_options(cert, key)


def test_an_encrypted_key_is_refused(tmp_path):
    secret = private_key()
    cert, key = write_self_signed(tmp_path, key=secret)
    key.write_bytes(secret.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.BestAvailableEncryption(b"pass")))
    with pytest.raises(ConfigError, match="frontend.key: .* is not an unencrypted PEM private key"):
        server_options(cert, key)


def test_clients_trust_only_a_file_of_certificates(tmp_path):
    cert, _ = write_self_signed(tmp_path)
    assert client_policy(cert).creatorForNetloc(b"127.0.0.1", 443) is not None
    assert stdlib_context(cert).cert_store_stats()["x509"] == 1
    (tmp_path / "junk.pem").write_text("junk")
    for make in (client_policy, stdlib_context):
        with pytest.raises(TlsFileError, match="holds no valid PEM certificate"):
            make(tmp_path / "junk.pem")
        with pytest.raises(TlsFileError, match="cannot read"):
            make(tmp_path / "absent.pem")


def https_config(tmp_path, key_text: str | None = None):
    cert, key = write_self_signed(tmp_path)
    if key_text is not None:
        key.write_text(key_text)
    path = tmp_path / "tls.toml"
    path.write_text(f'[frontend]\naddress = "127.0.0.1:6101"\ncertificate = "{cert.name}"\nkey = "{key.name}"\n')
    make_certificates(load_config(path), say=lambda _: None)  # the cluster's own, for its links
    return path


def test_with_a_certificate_the_front_end_listens_with_tls(tmp_path):
    options = plugin.Options()
    options.parseOptions(["--config", str(https_config(tmp_path))])
    server = list(plugin.makeService(options))[1]
    assert isinstance(server, SSLServer)
    port, site, context = server.args
    assert port == 6101 and isinstance(site, ApiSite) and context is options["tls"]
    assert server.kwargs == {"backlog": plugin.BACKLOG, "interface": "127.0.0.1"}


def test_without_one_it_listens_in_plain_http(tmp_path):
    path = tmp_path / "plain.toml"
    path.write_text('[frontend]\naddress = "127.0.0.1:6101"\n')
    make_certificates(load_config(path), say=lambda _: None)
    options = plugin.Options()
    options.parseOptions(["--config", str(path)])
    server = list(plugin.makeService(options))[1]
    assert isinstance(server, TCPServer) and not isinstance(server, SSLServer)


def test_a_key_that_cannot_serve_stops_the_front_end_before_it_starts(tmp_path):
    with pytest.raises(usage.UsageError, match=r"tls\.toml: frontend\.key: "):
        plugin.Options().parseOptions(["--config", str(https_config(tmp_path, "garbage"))])


def test_bazaar_client_takes_a_ca_file_for_an_https_url(tmp_path):
    from bazaar.tools.cli import build_parser

    cert, _ = write_self_signed(tmp_path)
    args = build_parser().parse_args(["client", "--url", "https://127.0.0.1:56893", "-n", "1", "-p", "0",
                                      "--ca-file", str(cert)])
    assert (args.url, args.ca_file) == ("https://127.0.0.1:56893", cert)
    assert build_parser().parse_args(["client", "--url", "https://h:1", "-n", "1", "-p", "0"]).ca_file is None


def test_a_ca_file_without_certificates_is_a_usage_error(tmp_path, capsys):
    from bazaar.tools.cli import main

    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(SystemExit) as exited:
        main(["client", "--url", "https://h:1", "-n", "1", "-p", "0", "--ca-file", str(tmp_path / "junk.pem")])
    assert exited.value.code == 2
    assert "--ca-file: " in capsys.readouterr().err
