"""The `bazaar` command: parsing, errors, dump-orders, and the cluster commands' pidfile
handling (with stand-in processes, no real services)."""

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bazaar.tools import cluster
from bazaar.tools.cli import build_parser, main
from bazaar.config import load_config
from bazaar.core.chain import Kind, Record, chained
from bazaar.core.orders import Order
from bazaar.core.stock import table_id
from bazaar.order.store import OrderStore
from tests.unit.ports import refusing_ports


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.fixture
def closed_ports():
    """The processes' ports (catalog, replicas 1 and 2, front end), refusing connections for the
    test's duration: `status` finds nothing running even beside a cluster on the default ports."""
    with refusing_ports(4) as ports:
        yield ports


@pytest.fixture
def closed_port(closed_ports):
    return closed_ports[3]


@pytest.fixture
def config_file(tmp_path, closed_ports):
    catalog, one, two, frontend = closed_ports
    path = tmp_path / "bazaar.toml"
    path.write_text(textwrap.dedent(f"""
        data_dir = "data"
        [catalog]
        address = "127.0.0.1:{catalog}"
        [frontend]
        address = "127.0.0.1:{frontend}"
        [replicas]
        1 = "127.0.0.1:{one}"
        2 = "127.0.0.1:{two}"
    """))
    return path


# ---- parsing ------------------------------------------------------------------------------


def test_client_arguments():
    args = build_parser().parse_args(
        ["client", "--url", "http://127.0.0.1:56893/", "-n", "5", "-p", "0.25", "--seed", "7", "--verbose"]
    )
    assert (args.url, args.iterations, args.probability, args.seed, args.verbose) == (
        "http://127.0.0.1:56893", 5, 0.25, 7, True,
    )
    assert args.timeout > 0


def test_demo_defaults():
    args = build_parser().parse_args(["demo"])
    assert (args.iterations, args.probability, args.seed) == (100, 0.5, None)


@pytest.mark.parametrize(
    "argv, complaint",
    [
        ([], "required: COMMAND"),
        (["trade"], "invalid choice: 'trade'"),
        (["client", "--config", "/nonexistent/b.toml", "-n", "1", "-p", "0.5"], "no such configuration file"),
        (["client", "--url", "localhost:56893", "-n", "1", "-p", "0.5"], "--url: expected"),
        (["client", "--url", "ftp://h:1", "-n", "1", "-p", "0.5"], "--url: expected"),
        (["client", "--url", "http://h:99999", "-n", "1", "-p", "0.5"], "--url: expected"),
        (["client", "--url", "http://h:1/stocks", "-n", "1", "-p", "0.5"], "without a path"),
        (["client", "--url", "http://h:1", "-n", "-1", "-p", "0.5"], "-n: expected a whole number >= 0"),
        (["client", "--url", "http://h:1", "-n", "many", "-p", "0.5"], "-n: expected a whole number"),
        (["client", "--url", "http://h:1", "-n", "1", "-p", "1.5"], "-p: expected a probability"),
        (["client", "--url", "http://h:1", "-n", "1", "-p", "nan"], "-p: expected a probability"),
        (["client", "--url", "http://h:1", "-n", "1", "-p", "0.5", "--timeout", "0"], "--timeout"),
        (["client", "--url", "http://h:1", "-n", "1", "-p", "0.5", "--seed", "x"], "--seed"),
        (["dump-orders"], "required: --id"),
        (["dump-orders", "--id", "0"], "--id: expected a whole number >= 1"),
        (["dump-orders", "--id", "two"], "--id: expected a whole number >= 1"),
        (["demo", "-p", "-0.1"], "-p: expected a probability"),
        (["up", "--wait", "forever"], "--wait"),
    ],
)
def test_bad_arguments_get_one_line_and_status_2(capsys, argv, complaint):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert complaint in one_line_error(err)
    assert err.startswith("bazaar")


# ---- configuration errors -----------------------------------------------------------------


@pytest.mark.parametrize("command", [["up"], ["down"], ["status"], ["dump-orders", "--id", "1"]])
@pytest.mark.parametrize(
    "text, complaint",
    [
        ("bogus = 1\n", "unknown key 'bogus'"),
        ("[frontend]\naddress = 'nowhere'\n", "frontend.address"),
        ("data_dir = \n", "not valid TOML"),
    ],
)
def test_bad_config_is_refused_by_every_command(capsys, tmp_path, command, text, complaint):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code, out, err = run(capsys, *command, "--config", str(path))
    assert code == 2 and out == ""
    assert one_line_error(err).startswith(f"bazaar {command[0]}: {path}: ")
    assert complaint in err
    assert not (tmp_path / "var").exists()  # nothing was started or created


def test_missing_config_file_is_refused(capsys, tmp_path):
    code, _, err = run(capsys, "status", "--config", str(tmp_path / "missing.toml"))
    assert code == 2 and "no such configuration file" in one_line_error(err)


# ---- dump-orders --------------------------------------------------------------------------

ORDERS = [
    Order(0, "tesla", "buy", 5),
    Order(1, "imagine", "sell", 100),
    Order(2, "amc", "buy", 1),
]
# A log as a leader writes it: its leader entry, the trades, and a refusal kept for its key.
LOG = chained([
    Record(0, 1, Kind.LEADER, -1),
    Record(1, 1, Kind.TRADE, 0, "tesla", "buy", 5, "a"),
    Record(2, 1, Kind.REFUSED, 0, "amc", "buy", 5000, "b"),
    Record(3, 1, Kind.TRADE, 1, "imagine", "sell", 100, "c"),
    Record(4, 2, Kind.LEADER, 1),
    Record(5, 2, Kind.TRADE, 2, "amc", "buy", 1, ""),
])


def write_log(directory: Path, entries) -> None:
    config = load_config(None)
    store = OrderStore(directory, table_id(config.stocks))
    store.append(entries)
    store.close()


def test_dump_orders_prints_the_trades_as_json_lines_by_number(capsys, config_file):
    write_log(load_config(config_file).replica_dir(2), LOG)

    code, out, err = run(capsys, "dump-orders", "--config", str(config_file), "--id", "2")

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        '{"number": 0, "name": "tesla", "type": "buy", "quantity": 5}',
        '{"number": 1, "name": "imagine", "type": "sell", "quantity": 100}',
        '{"number": 2, "name": "amc", "type": "buy", "quantity": 1}',
    ]
    assert [json.loads(line) for line in out.splitlines()] == [o.as_json() for o in ORDERS]


def test_dump_orders_of_a_replica_without_a_log_is_empty(capsys, config_file):
    assert run(capsys, "dump-orders", "--config", str(config_file), "--id", "1") == (0, "", "")


def test_dump_orders_without_a_config_file_uses_the_defaults(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_log(tmp_path / "var" / "order-3", LOG[:2])
    code, out, _ = run(capsys, "dump-orders", "--id", "3")
    assert code == 0 and out == json.dumps(ORDERS[0].as_json()) + "\n"


def test_dump_orders_of_an_unknown_replica(capsys, config_file):
    code, out, err = run(capsys, "dump-orders", "--config", str(config_file), "--id", "3")
    assert code == 2 and out == ""
    assert one_line_error(err) == "bazaar dump-orders: no replica with id 3 (configured ids: 1, 2)\n"


def test_dump_orders_of_a_broken_log(capsys, config_file):
    log_dir = load_config(config_file).replica_dir(1)
    log_dir.mkdir(parents=True)
    (log_dir / OrderStore.FILENAME).write_text("this is not a database")
    code, _, err = run(capsys, "dump-orders", "--config", str(config_file), "--id", "1")
    assert code == 1 and "cannot read the order log" in one_line_error(err)


def test_dump_orders_of_a_log_of_the_previous_format(capsys, config_file):
    log_dir = load_config(config_file).replica_dir(1)
    log_dir.mkdir(parents=True)
    conn = sqlite3.connect(log_dir / OrderStore.FILENAME)
    conn.execute("CREATE TABLE orders (number INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    code, out, err = run(capsys, "dump-orders", "--config", str(config_file), "--id", "1")
    assert code == 1 and out == ""
    assert "written by another version of Bazaar" in one_line_error(err)


# ---- the cluster commands, with stand-in processes ---------------------------------------


def pidfile(config_file: Path, name: str) -> Path:
    return load_config(config_file).data_dir / "run" / f"{name}.pid"


def start_stand_in(pidfile_path: Path) -> subprocess.Popen:
    """A long sleeper whose command line names its pidfile, as a twistd started by `up` does."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", f"--pidfile={pidfile_path}"]
    )
    pidfile_path.parent.mkdir(parents=True, exist_ok=True)
    pidfile_path.write_text(str(process.pid))
    return process


@pytest.fixture
def stand_ins():
    started: list[subprocess.Popen] = []
    yield lambda path: started.append(start_stand_in(path)) or started[-1]
    for process in started:
        process.kill()
        process.wait()


def status_rows(capsys, config_file) -> tuple[int, dict]:
    code, out, _ = run(capsys, "status", "--json", "--config", str(config_file))
    document = json.loads(out)
    return code, {row["name"]: row for row in document["processes"]}


def test_status_and_down_when_nothing_runs(capsys, config_file):
    code, out, _ = run(capsys, "status", "--config", str(config_file))
    assert code == 3
    lines = out.splitlines()
    assert lines[0].split() == ["name", "running", "pid", "role", "epoch", "last", "committed", "lag", "applied",
                                "through", "metrics"]
    assert [line.split()[:3] for line in lines[1:5]] == [[name, "no", "-"] for name in
                                                        ("catalog", "order-1", "order-2", "frontend")]
    assert lines[5] == "leader: none"
    code, rows = status_rows(capsys, config_file)
    assert code == 3 and list(rows) == ["catalog", "order-1", "order-2", "frontend"]
    assert all(not row["running"] and row["pid"] is None and row["role"] is None for row in rows.values())
    for _ in range(2):  # down is idempotent
        assert run(capsys, "down", "--config", str(config_file)) == (0, "the cluster is not running\n", "")


def test_down_stops_a_running_process_and_status_shows_it(capsys, config_file, stand_ins):
    path = pidfile(config_file, "order-2")
    process = stand_ins(path)

    code, rows = status_rows(capsys, config_file)
    assert code == 3 and (rows["order-2"]["running"], rows["order-2"]["pid"]) == (True, process.pid)

    code, out, _ = run(capsys, "down", "--config", str(config_file))
    assert (code, out) == (0, f"order-2: stopped (pid {process.pid})\n")
    assert process.wait(timeout=5) == -15  # SIGTERM
    assert not path.exists()


def test_a_pidfile_naming_someone_elses_process_is_stale(capsys, config_file):
    # This test's own pid is alive but not a Bazaar process: never signal it.
    path = pidfile(config_file, "catalog")
    path.parent.mkdir(parents=True)
    path.write_text(str(os.getpid()))

    code, out, _ = run(capsys, "status", "--config", str(config_file))
    assert "no (stale pidfile)" in out.splitlines()[1]
    assert status_rows(capsys, config_file)[1]["catalog"]["stale_pidfile"] is True
    assert run(capsys, "down", "--config", str(config_file))[:2] == (0, "the cluster is not running\n")
    assert not path.exists()


def test_up_refuses_a_running_cluster(capsys, config_file, stand_ins, monkeypatch):
    process = stand_ins(pidfile(config_file, "catalog"))
    monkeypatch.setattr(cluster, "find_twistd", lambda: pytest.fail("up must not start anything"))

    code, _, err = run(capsys, "up", "--config", str(config_file))
    assert code == 1
    assert one_line_error(err) == (
        f"bazaar up: the cluster is already running: catalog (pid {process.pid}); "
        "`bazaar down` stops it\n"
    )


FAKE_TWISTD = """\
#!{python}
# Stands in for a daemonizing twistd: starts a sleeper that owns the pidfile, then exits 0,
# except for the plugin named in FAIL_PLUGIN, which fails at start like a real service would.
import subprocess, sys
options = dict(arg[2:].split("=", 1) for arg in sys.argv[1:] if arg.startswith("--") and "=" in arg)
plugin = next(arg for arg in sys.argv[1:] if arg.startswith("bazaar-"))
if plugin == {fail!r}:
    sys.exit("Address already in use, in " + plugin)
sleeper = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(60)", "--pidfile=" + options["pidfile"]],
    start_new_session=True, stdin=subprocess.DEVNULL,
)
open(options["pidfile"], "w").write(str(sleeper.pid))
open(options["logfile"], "a").write("started " + " ".join(sys.argv[1:]) + "\\n")
"""


def fake_twistd(tmp_path: Path, fail: str) -> str:
    path = tmp_path / "fake-twistd"
    path.write_text(FAKE_TWISTD.format(python=sys.executable, fail=fail))
    path.chmod(0o755)
    return str(path)


def test_up_reports_a_process_that_fails_and_stops_the_others(capsys, tmp_path, config_file, monkeypatch):
    monkeypatch.setattr(cluster, "find_twistd", lambda: fake_twistd(tmp_path, "bazaar-frontend"))
    monkeypatch.setattr(cluster, "replica_serving", lambda config, address, timeout: True)

    code, out, err = run(capsys, "up", "--config", str(config_file))

    assert code == 1
    assert err.startswith("bazaar up: frontend did not start (twistd exit status 1)")
    assert "Address already in use, in bazaar-frontend" in err
    assert "Traceback" not in err
    # The ones started before it were given their config file and stopped again.
    lines = out.splitlines()
    assert lines[0].startswith("certificates made in ") and lines[0].endswith(
        "ca, catalog, order-1, order-2, frontend, operator"), "made before anything starts"
    started = {line.split(":")[0] for line in lines[1:]}
    assert started == {"catalog", "order-1", "order-2"}
    for name in ("catalog", "order-1", "order-2"):
        assert not pidfile(config_file, name).exists()
    catalog_log = (load_config(config_file).data_dir / "log" / "catalog.log").read_text()
    assert f"bazaar-catalog --config {config_file}" in catalog_log
    assert "the cluster is not running" in run(capsys, "down", "--config", str(config_file))[1]


def test_twistd_command_lines(tmp_path, config_file, monkeypatch):
    config = load_config(config_file)
    run_dir, log_dir = config.data_dir / "run", config.data_dir / "log"
    commands = [cluster.twistd_command("twistd", p, config) for p in cluster.processes(config)]
    assert commands == [
        ["twistd", f"--pidfile={run_dir}/catalog.pid", f"--logfile={log_dir}/catalog.log",
         "bazaar-catalog", "--config", str(config_file)],
        ["twistd", f"--pidfile={run_dir}/order-1.pid", f"--logfile={log_dir}/order-1.log",
         "bazaar-order", "--config", str(config_file), "--id", "1"],
        ["twistd", f"--pidfile={run_dir}/order-2.pid", f"--logfile={log_dir}/order-2.log",
         "bazaar-order", "--config", str(config_file), "--id", "2"],
        ["twistd", f"--pidfile={run_dir}/frontend.pid", f"--logfile={log_dir}/frontend.log",
         "bazaar-frontend", "--config", str(config_file)],
    ]
    # Without a file, the services find the same built-in defaults in the same directory.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    defaults = load_config(None)
    assert cluster.twistd_command("twistd", cluster.processes(defaults)[0], defaults)[3:] == ["bazaar-catalog"]


def test_down_ends_a_process_that_lost_its_pidfile(capsys, config_file, stand_ins):
    # A twistd whose service failed at start removes its pidfile, yet may live on.
    path = pidfile(config_file, "order-1")
    process = stand_ins(path)
    path.unlink()

    code, out, _ = run(capsys, "down", "--config", str(config_file))
    assert (code, out) == (0, f"order-1: stopped (pid {process.pid})\n")
    assert process.wait(timeout=5) == -15
