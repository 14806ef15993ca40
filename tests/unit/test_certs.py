"""The cluster's certificates (bazaar.tls.certs) and how a process reads its own (files.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bazaar.config import ConfigError, parse_config
from bazaar.tls.certs import AuthorityKeyMissing, certificate_path, key_path, make_certificates
from bazaar.tls.files import TlsError, load_credentials

NAMES = ["catalog", "order-1", "frontend", "operator"]


def cert(directory: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(certificate_path(directory, name).read_bytes())


def test_each_name_gets_a_certificate_of_the_clusters_authority(tmp_path):
    assert make_certificates(tmp_path, NAMES) == ["ca", *NAMES]
    ca = cert(tmp_path, "ca")
    for name in NAMES:
        issued = cert(tmp_path, name)
        issued.verify_directly_issued_by(ca)
        assert issued.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
        san = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [f"{name}.bazaar"]
        usage = issued.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usage)
        assert stat.S_IMODE(key_path(tmp_path, name).stat().st_mode) == 0o600, "keys are the owner's only"


def test_making_them_again_adds_only_what_is_missing_and_force_makes_all_anew(tmp_path):
    make_certificates(tmp_path, NAMES)
    before = certificate_path(tmp_path, "order-1").read_bytes()
    assert make_certificates(tmp_path, [*NAMES, "order-2"]) == ["order-2"]
    assert certificate_path(tmp_path, "order-1").read_bytes() == before
    assert make_certificates(tmp_path, NAMES, force=True) == ["ca", *NAMES]
    cert(tmp_path, "order-1").verify_directly_issued_by(cert(tmp_path, "ca"))


def test_a_process_without_its_credentials_is_told_the_command_that_makes_them(tmp_path):
    config = parse_config('data_dir = "d"\n', tmp_path)
    with pytest.raises(TlsError, match=r"missing ca.pem, order-1.pem, order-1.key\): make them with `bazaar certs --config "):
        load_credentials(config, "order-1")
    make_certificates(config.tls_dir, ["order-1"])
    assert config.tls_dir == tmp_path / "d" / "certs"
    credentials = load_credentials(config, "order-1")
    assert credentials is not None and credentials.key.startswith(b"-----BEGIN PRIVATE KEY")


def test_the_tls_folder_may_be_named_and_tls_turned_off_on_loopback_only(tmp_path):
    assert parse_config('[tls]\ndir = "/etc/bazaar/tls"\n', tmp_path).tls_dir == Path("/etc/bazaar/tls")
    assert parse_config('[tls]\ndir = "tls"\n', tmp_path).tls_dir == tmp_path / "tls"
    insecure = parse_config("[tls]\ninsecure = true\n", tmp_path)
    assert load_credentials(insecure, "order-1") is None
    parse_config('[tls]\ninsecure = true\n[catalog]\naddress = "[::1]:7000"\n', tmp_path)
    with pytest.raises(ConfigError, match=r"tls.insecure: allowed only when every address is loopback, but "
                                          r"replicas.2 is 10.0.0.2:7000"):
        parse_config('[tls]\ninsecure = true\n[replicas]\n1 = "127.0.0.1:7001"\n2 = "10.0.0.2:7000"\n', tmp_path)
    with pytest.raises(ConfigError, match="tls.insecure: allowed only"):
        parse_config('[tls]\ninsecure = true\n[frontend]\ninternal = "127.evil.example:1"\n', tmp_path)
    for bad in ('[tls]\ninsecure = "yes"\n', '[tls]\ndir = ""\n', '[tls]\nca = "x"\n'):
        with pytest.raises(ConfigError, match="tls"):
            parse_config(bad, tmp_path)


@pytest.mark.parametrize("spoil, message", [
    (lambda d: (d / "order-1.pem").write_text("junk"), r"order-1.pem is not a PEM certificate: make new ones with `bazaar certs --force"),
    (lambda d: (d / "ca.pem").write_text("junk"), r"ca.pem is not a PEM certificate"),
    (lambda d: (d / "order-1.key").write_bytes((d / "order-2.key").read_bytes()), r"order-1.key is not the key of .*order-1.pem"),
    (lambda d: (d / "order-1.pem").write_bytes((d / "order-2.pem").read_bytes()), r"order-1.pem is not order-1's certificate \(it names order-2\)"),
    (lambda d: (d / "order-1.key").chmod(0o644), r"order-1.key may be read by others than its owner: `chmod 600` it"),
])
def test_credentials_that_cannot_serve_are_refused_at_start_naming_the_file(tmp_path, spoil, message):
    config = parse_config('data_dir = "d"\n', tmp_path)
    make_certificates(config.tls_dir, ["order-1", "order-2"])
    spoil(config.tls_dir)
    with pytest.raises(TlsError, match=message):
        load_credentials(config, "order-1")


def test_a_certificate_of_another_authority_is_refused_at_start(tmp_path):
    config = parse_config('data_dir = "d"\n', tmp_path)
    make_certificates(config.tls_dir, ["order-1"])
    make_certificates(tmp_path / "other", ["order-1"])
    for suffix in (".pem", ".key"):
        (config.tls_dir / f"order-1{suffix}").write_bytes((tmp_path / "other" / f"order-1{suffix}").read_bytes())
    with pytest.raises(TlsError, match=r"order-1.pem was not issued by the authority of .*ca.pem"):
        load_credentials(config, "order-1")


def test_an_authority_kept_elsewhere_is_never_replaced_unasked(tmp_path):
    # security.md: ca.key stays off the service hosts. `bazaar up` there must not remake it all.
    make_certificates(tmp_path, ["order-1", "order-2"])
    (tmp_path / "ca.key").unlink()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert make_certificates(tmp_path, ["order-1", "order-2"]) == []
    with pytest.raises(AuthorityKeyMissing, match=r"lacks certificates for order-3, and the authority's key"):
        make_certificates(tmp_path, ["order-1", "order-2", "order-3"])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before, "nothing changed"
