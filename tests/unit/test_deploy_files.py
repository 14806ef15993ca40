"""The deployment files agree with each other and with the code (read statically: no container
engine or systemd runs here). deploy/bazaar.toml names the processes; deploy/compose.yaml runs
each with its plugin, id, certificate, health check and data volume; the Dockerfile's entry
point and paths are the ones compose and the configuration use; the systemd units start the
right plugins. tests/integration/test_deployment.py runs the same topology for real."""

from __future__ import annotations

import configparser
import json
import shlex
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml

from bazaar.config import load_config, parse_config
from bazaar.plugins import frontend as frontend_plugin
from bazaar.tls.identity import CATALOG, frontend_name, replica_name

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
IMAGE_CONFIG = PurePosixPath("/etc/bazaar/bazaar.toml")
IMAGE_CERTS = PurePosixPath("/etc/bazaar/certs")
IMAGE_DATA = PurePosixPath("/var/lib/bazaar")
PLUGINS = {"catalog": "bazaar-catalog", "order": "bazaar-order", "frontend": "bazaar-frontend"}


@pytest.fixture(scope="module")
def config():
    # As the image sees it: the file at /etc/bazaar/bazaar.toml.
    return parse_config((DEPLOY / "bazaar.toml").read_text(), Path(IMAGE_CONFIG.parent))


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def dockerfile():
    """Each instruction and its argument, continuation lines joined, comments dropped."""
    lines, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            keyword, _, argument = pending.strip().partition(" ")
            lines.append((keyword.upper(), argument))
            pending = ""
    return lines


def process_of(command: list[str]) -> str:
    """The process a twistd plugin command runs: catalog, order-N, frontend or frontend-N."""
    plugin = command[0]
    given = dict(zip(command[1::2], command[2::2]))
    assert set(given) <= {"--config", "--id"}, command
    if plugin == "bazaar-catalog":
        assert "--id" not in given
        return CATALOG
    ident = int(given["--id"])
    return replica_name(ident) if plugin == "bazaar-order" else frontend_name(ident)


def mounts(service: dict) -> dict[str, tuple[str, str]]:
    """Where each volume or bind goes in the container: target -> (source, options)."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *options = volume.split(":")
        found[target] = (source, ",".join(options))
    return found


def test_the_deploy_config_is_one_host_per_process_on_every_interface(config):
    assert list(config.addresses_of()) == ["catalog", "order-1", "order-2", "order-3", "frontend", "frontend-2"]
    hosts = [address.host for address in config.addresses_of().values()]
    assert hosts == ["catalog", "order-1", "order-2", "order-3", "frontend-1", "frontend-2"]
    assert [f.internal.host for f in config.frontends.values()] == ["frontend-1", "frontend-2"]
    for name in config.addresses_of():
        assert config.listen[name] == "0.0.0.0"
        assert config.metrics_address(name).host == "0.0.0.0"
    assert config.data_dir == Path(IMAGE_DATA) and config.tls_dir == Path(IMAGE_CERTS) and not config.tls.insecure


def test_compose_runs_every_process_of_the_config_with_its_plugin_and_id(compose, config):
    services = compose["services"]
    assert list(services) == ["catalog", "order-1", "order-2", "order-3", "frontend-1", "frontend-2"]
    running = {}
    for service_name, service in services.items():
        command = service["command"]
        process = process_of(command)
        running[process] = service_name
        assert command[command.index("--config") + 1] == str(IMAGE_CONFIG)
        # Its hostname is the host its peers dial it at.
        assert service["hostname"] == service_name == config.addresses_of()[process].host
        assert service["restart"] == "on-failure"
        assert service["image"] == "bazaar:latest" and service["build"]["dockerfile"] == "Dockerfile"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == ROOT / "Dockerfile"
    assert sorted(running) == sorted(config.addresses_of())


def test_each_service_is_health_checked_by_bazaar_probe_naming_itself(compose):
    for service in compose["services"].values():
        check = service["healthcheck"]
        assert check["test"] == ["CMD", "bazaar", "probe", "--config", str(IMAGE_CONFIG), process_of(service["command"])]
        assert int(check["timeout"].rstrip("s")) > 3  # the probe's own deadline is 3 s


def test_each_service_gets_the_config_ca_and_its_own_certificate_only_read_only(compose):
    for service in compose["services"].values():
        process = process_of(service["command"])
        binds = {t: s for t, s in mounts(service).items() if s[0].startswith("./")}
        assert binds.pop(str(IMAGE_CONFIG)) == ("./bazaar.toml", "ro")
        # Nothing else of deploy/certs: not ca.key, not another process's key.
        assert binds == {str(IMAGE_CERTS / f): (f"./certs/{f}", "ro") for f in ("ca.pem", f"{process}.pem", f"{process}.key")}


def test_each_durable_process_has_a_named_volume_of_its_own_on_the_data_dir(compose, config):
    declared = compose["volumes"]
    seen = []
    for service in compose["services"].values():
        process = process_of(service["command"])
        named = {t: s for t, s in mounts(service).items() if not s[0].startswith("./")}
        if process.startswith("frontend"):
            assert named == {}, "a front end keeps nothing durable"
            continue
        assert list(named) == [str(IMAGE_DATA)] and named[str(IMAGE_DATA)][1] == ""
        assert Path(IMAGE_DATA) / process == config.service_dir(process)
        seen.append(named[str(IMAGE_DATA)][0])
    assert sorted(seen) == sorted(declared) and len(set(seen)) == 4


def test_compose_starts_the_catalog_then_the_replicas_then_the_front_ends(compose):
    services = compose["services"]
    healthy = {"condition": "service_healthy"}
    assert "depends_on" not in services["catalog"]
    for name in ("order-1", "order-2", "order-3"):
        assert services[name]["depends_on"] == {"catalog": healthy}
    for name in ("frontend-1", "frontend-2"):
        assert services[name]["depends_on"] == {f"order-{i}": healthy for i in (1, 2, 3)}


def test_only_the_front_ends_public_ports_are_published(compose, config):
    published = {}
    for service in compose["services"].values():
        process = process_of(service["command"])
        for port in service.get("ports", []):
            host_port, container_port = port.split(":")
            published[host_port] = (process, int(container_port))
    assert sorted(published.values()) == sorted((f"frontend{s}", config.frontends[i].address.port)
                                                 for i, s in ((1, ""), (2, "-2")))
    for service in compose["services"].values():
        if process_of(service["command"]).startswith("frontend"):
            limit = service["ulimits"]["nofile"]
            assert limit["soft"] == limit["hard"] >= frontend_plugin.descriptors_needed(config.frontend)


def test_the_image_is_the_package_alone_run_by_twistd_as_a_user(dockerfile, compose):
    instructions = dict(dockerfile)  # the last of each kind
    assert dockerfile[0] == ("FROM", "python:3.11-slim")
    assert json.loads(instructions["ENTRYPOINT"]) == ["twistd", "-n", "--pidfile="]
    # Its default command is compose's catalog command.
    assert json.loads(instructions["CMD"]) == compose["services"]["catalog"]["command"]
    assert instructions["USER"] not in ("root", "0") and json.loads(instructions["VOLUME"]) == [str(IMAGE_DATA)]
    runs = " ".join(argument for keyword, argument in dockerfile if keyword == "RUN")
    assert "pip install /src " in runs and "[" not in runs.split("pip install", 1)[1].split("&&")[0]  # no extras
    assert f"mkdir -p {IMAGE_DATA} {IMAGE_CERTS}" in runs
    copied = [source for keyword, argument in dockerfile if keyword == "COPY" for source in argument.split()[:-1]]
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored and {f"!{source}" for source in copied} <= set(ignored)
    assert {"pyproject.toml", "bazaar", "twisted"} <= set(copied)


def test_the_image_copies_every_file_the_package_is_built_with(dockerfile):
    """pyproject.toml's readme and license-files: without them in the copy, the installed
    package's metadata lacks its README or its LICENSE (setuptools only warns)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    named = [project["readme"], *project["license-files"]]
    copied = {source for keyword, argument in dockerfile if keyword == "COPY" for source in argument.split()[:-1]}
    ignored = set((ROOT / ".dockerignore").read_text().splitlines())
    assert "LICENSE" in named and all((ROOT / name).is_file() for name in named)
    assert [name for name in named if name not in copied or f"!{name}" not in ignored] == []


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # systemd's keys are case-sensitive
    assert parser.read(DEPLOY / "systemd" / name) == [str(DEPLOY / "systemd" / name)]
    return parser


@pytest.mark.parametrize("name, plugin, instance", [
    ("bazaar-catalog.service", "bazaar-catalog", []),
    ("bazaar-order@.service", "bazaar-order", ["--id", "%i"]),
    ("bazaar-frontend@.service", "bazaar-frontend", ["--id", "%i"]),
])
def test_the_systemd_units_run_their_plugin_in_the_foreground(name, plugin, instance):
    service = unit(name)["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv == ["/opt/bazaar/bin/twistd", "-n", "--pidfile=", plugin, "--config", str(IMAGE_CONFIG), *instance]
    assert (service["User"], service["Restart"], service["Type"]) == ("bazaar", "on-failure", "simple")
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes"
    assert "[Install]" in (DEPLOY / "systemd" / name).read_text()


def test_only_the_durable_services_may_write_and_only_the_data_dir(config):
    for name in ("bazaar-catalog.service", "bazaar-order@.service"):
        service = unit(name)["Service"]
        assert service["ReadWritePaths"] == str(config.data_dir) and service["StateDirectory"] == "bazaar"
    front_end = unit("bazaar-frontend@.service")["Service"]
    assert "ReadWritePaths" not in front_end and "StateDirectory" not in front_end
    assert int(front_end["LimitNOFILE"]) >= frontend_plugin.descriptors_needed(config.frontend)


def test_the_admin_machine_makes_the_certificates_beside_the_config():
    # `bazaar certs --config deploy/bazaar.toml` writes deploy/certs, which compose mounts and git ignores.
    assert load_config(DEPLOY / "bazaar.toml").tls_dir == DEPLOY / "certs"
    assert "deploy/certs/" in (ROOT / ".gitignore").read_text().splitlines()
