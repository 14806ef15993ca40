"""`bazaar load`'s options: defaults, and one clear line with status 2 for each bad one."""

from pathlib import Path

import pytest

from bazaar.tools.cli import build_parser
from bazaar.evaluation import run as load
from bazaar.evaluation.run import LoadSettings, UsageError, cache_modes, output_directory
from tests.unit.ports import refusing_ports
from tests.unit.test_cli import run as run_cli


def test_defaults():
    args = build_parser().parse_args(["load"])
    assert (args.url, args.clients, args.p, args.requests, args.cache, args.out, args.seed) == (
        None, 5, [0.0, 0.2, 0.4, 0.6, 0.8], 200, None, None, None)


def test_every_option():
    args = build_parser().parse_args([
        "load", "--url", "http://127.0.0.1:9/", "--clients", "2", "--p", "1, 0.5,0", "--requests", "10",
        "--cache", "off", "--out", "here", "--seed", "4"])
    assert (args.url, args.clients, args.p, args.requests, args.cache, args.out, args.seed) == (
        "http://127.0.0.1:9", 2, [1.0, 0.5, 0.0], 10, "off", "here", 4)


@pytest.mark.parametrize("argv, complaint", [
    (["--clients", "0"], "argument --clients: expected a whole number >= 1, got '0'"),
    (["--requests", "many"], "argument --requests: expected a whole number >= 1, got 'many'"),
    (["--p", "0.2,1.5"], "argument --p: expected a probability between 0 and 1, got '1.5'"),
    (["--p", ""], "argument --p: expected a probability between 0 and 1, got ''"),
    (["--p", "0,,1"], "argument --p: expected a probability between 0 and 1, got ''"),
    (["--p", "nan"], "argument --p: expected a probability between 0 and 1, got 'nan'"),
    (["--p", "0.5,0.50"], "argument --p: 0.5 is given twice in '0.5,0.50'"),
    (["--cache", "maybe"], "argument --cache: invalid choice: 'maybe'"),
    (["--url", "127.0.0.1:56893"], "argument --url: expected the front end's address"),
    (["--seed", "x"], "argument --seed: invalid int value: 'x'"),
    (["--url", "http://127.0.0.1:56893", "--cache", "both"], "--cache both needs its own clusters"),
])
def test_bad_arguments_get_one_line_and_status_2(capsys, argv, complaint):
    code, out, err = run_cli(capsys, "load", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("bazaar load: ") and "Traceback" not in err
    assert complaint in err


def test_own_clusters_run_both_modes_unless_told(monkeypatch):
    assert cache_modes(LoadSettings()) == ["on", "off"]
    assert cache_modes(LoadSettings(cache="both")) == ["on", "off"]
    assert cache_modes(LoadSettings(cache="off")) == ["off"]


def test_with_a_url_the_front_ends_mode_is_used_and_a_mismatch_refused(monkeypatch):
    monkeypatch.setattr(load, "frontend_cache_enabled", lambda url: False)
    assert cache_modes(LoadSettings(url="http://127.0.0.1:9")) == ["off"]
    assert cache_modes(LoadSettings(url="http://127.0.0.1:9", cache="off")) == ["off"]
    with pytest.raises(UsageError, match="has its cache off, but --cache is on"):
        cache_modes(LoadSettings(url="http://127.0.0.1:9", cache="on"))


def test_a_cache_mismatch_is_a_usage_error_on_the_command_line(capsys, monkeypatch):
    monkeypatch.setattr(load, "frontend_cache_enabled", lambda url: True)
    code, out, err = run_cli(capsys, "load", "--url", "http://127.0.0.1:9", "--cache", "off")
    assert code == 2 and err.count("\n") == 1
    assert "has its cache on, but --cache is off; leave --cache out or say --cache on" in err


def test_an_unreachable_front_end_is_one_line_and_status_1(capsys, unused_port):
    code, out, err = run_cli(capsys, "load", "--url", f"http://127.0.0.1:{unused_port}")
    assert code == 1 and err.count("\n") == 1
    assert err == f"bazaar load: cannot reach the front end at http://127.0.0.1:{unused_port}: Connection refused\n"


def test_out_must_be_a_directory(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    code, out, err = run_cli(capsys, "load", "--out", str(tmp_path / "file"))
    assert code == 2 and err == f"bazaar load: --out {tmp_path / 'file'}: exists and is not a directory\n"


def test_the_default_output_directory_is_new(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = output_directory(None)
    second = output_directory(None)
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.startswith("bazaar-load-")
    assert output_directory(tmp_path / "a" / "b") == tmp_path / "a" / "b"


@pytest.fixture
def unused_port():
    with refusing_ports(1) as ports:
        yield ports[0]


@pytest.mark.parametrize("cache", [True, False])
def test_the_own_clusters_config_has_the_cache_on_or_off(tmp_path, cache):
    from bazaar.chaos.processes import config_text
    from bazaar.config import load_config

    path = tmp_path / "bazaar.toml"
    path.write_text(config_text(1001, 1002, {1: 1003, 2: 1004, 3: 1005}, cache=cache))
    config = load_config(path)
    assert config.frontend.cache is cache
    assert config.frontends[1].address.port == 1002


def finished_run():
    from bazaar.evaluation.results import RequestRecord, RunResult

    return RunResult("on", 0.0, 1.0, [RequestRecord("on", 0.0, 0, "lookup", 0.0, 1.0, 200, "ok")],
                     {"capacity": 8, "hits": 0, "misses": 0, "evictions": 0, "names": []},
                     {"capacity": 8, "hits": 1, "misses": 0, "evictions": 0, "names": ["ford"]})


def stand_in_reactor_phase(monkeypatch, then):
    """Replace the reactor phase: it records one finished run, then `then()` decides."""

    def all_runs(reactor, settings, modes, seed, root, clusters, progress, completed):
        completed.append(finished_run())

    monkeypatch.setattr(load, "_all_runs", all_runs)
    monkeypatch.setattr(load, "run_on_reactor", lambda work: (work(None), (then(), None))[1])


def test_an_interrupted_load_keeps_the_finished_runs(tmp_path, monkeypatch, capsys):
    stand_in_reactor_phase(monkeypatch, lambda: False)
    code = load.main(LoadSettings(out=tmp_path, p=(0.0, 0.5), cache="on", seed=1))
    out, err = capsys.readouterr()
    assert code == 130 and "interrupted after 1 of 2 runs" in err
    assert (tmp_path / "summary.json").exists() and f"wrote {tmp_path / 'requests.csv'}" in out


def test_a_failing_load_keeps_the_finished_runs_and_its_error(tmp_path, monkeypatch, capsys):
    def fail():
        raise load.LoadError("the second cluster would not start")

    stand_in_reactor_phase(monkeypatch, fail)
    with pytest.raises(load.LoadError):
        load.main(LoadSettings(out=tmp_path, seed=1))
    assert (tmp_path / "requests.csv").read_text().count("\n") == 2
    cluster_directory = capsys.readouterr().err.split("cluster directory: ")[1].split()[0]
    assert not Path(cluster_directory).exists()
