"""`bazaar plot` on hand-made load and chaos folders: the four PNGs, the skipped ones, one-line
errors, and an evaluation page whose sentences follow the data."""

import json
import re
import sys

import pytest
from pathlib import Path

from bazaar.tools.cli import main
from bazaar.evaluation import document, inputs, observations
from bazaar.evaluation.plot import BENCH_SCALE, FIGURES
from tests.unit.evaluation_data import write_chaos_dir, write_load_dir

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def assert_png(path) -> None:
    assert path.is_file(), path
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_MAGIC), path


def page(tmp_path, *, chaos_kwargs=None, **load_kwargs) -> str:
    load = inputs.read_load(write_load_dir(tmp_path / "load", **load_kwargs))
    chaos = inputs.read_chaos(write_chaos_dir(tmp_path / "chaos", **(chaos_kwargs or {})))
    figures = {name: tmp_path / "docs" / "figures" / name for name in FIGURES}
    return document.render(load, chaos, figures, tmp_path / "docs" / "evaluation.md", machine_rows=[("CPU", "x")])


# ---- the figures -------------------------------------------------------------------------------------


def test_plot_draws_the_four_figures(tmp_path, capsys):
    load, chaos = write_load_dir(tmp_path / "load"), write_chaos_dir(tmp_path / "chaos")
    code, out, err = run(capsys, "plot", load, "--chaos", chaos)
    assert code == 0, err
    for name in FIGURES:
        assert_png(load / "figures" / name)
        assert f"wrote {load / 'figures' / name}" in out


def test_plot_skips_a_figure_whose_input_is_missing(tmp_path, capsys):
    load = write_load_dir(tmp_path / "load", events=False)
    figures = tmp_path / "figs"
    code, out, err = run(capsys, "plot", load, "--figures", figures)
    assert code == 0, err
    assert_png(figures / "latency_vs_p.png")
    assert_png(figures / "hit_rate_vs_p.png")
    assert not (figures / "lru_timeline.png").exists() and not (figures / "failover_timeline.png").exists()
    assert "skipped lru_timeline.png: no cache events" in out
    assert "skipped failover_timeline.png: no chaos folder given (--chaos DIR)" in out


def test_plot_writes_the_page_with_its_figures_beside_it(tmp_path, capsys):
    load, chaos = write_load_dir(tmp_path / "load"), write_chaos_dir(tmp_path / "chaos")
    doc = tmp_path / "docs" / "evaluation.md"
    code, out, err = run(capsys, "plot", load, "--chaos", chaos, "--doc", doc)
    assert code == 0, err
    text = doc.read_text()
    for name in FIGURES:
        assert_png(tmp_path / "docs" / "figures" / name)
        assert f"](figures/{name})" in text


def test_a_folder_without_summary_is_a_usage_error(tmp_path, capsys):
    code, _, err = run(capsys, "plot", tmp_path)
    assert code == 2 and "summary.json: not found" in one_line(err)
    code, _, err = run(capsys, "plot", tmp_path / "nowhere")
    assert code == 2 and "no such directory" in one_line(err)


def test_malformed_inputs_are_usage_errors(tmp_path, capsys):
    (tmp_path / "summary.json").write_text("{not json")
    code, _, err = run(capsys, "plot", tmp_path)
    assert code == 2 and "not valid JSON" in one_line(err)
    (tmp_path / "summary.json").write_text('{"settings": {}, "runs": [{"cache": "maybe", "p": 0}]}')
    code, _, err = run(capsys, "plot", tmp_path)
    assert code == 2 and "cache must be 'on' or 'off'" in one_line(err)
    load = write_load_dir(tmp_path / "load")
    code, _, err = run(capsys, "plot", load, "--chaos", tmp_path / "empty")
    assert code == 2 and "faults.json: not found" in one_line(err)


def test_without_matplotlib_the_command_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    code, _, err = run(capsys, "plot", write_load_dir(tmp_path / "load"))
    assert code == 1 and "pip install 'bazaar[evaluate]'" in one_line(err)


# ---- the page's sentences follow the data -----------------------------------------------------------


def test_a_faster_cache_is_called_faster(tmp_path):
    text = page(tmp_path, cache_faster=True)
    assert "Caching cut lookup p50 from 4.00 ms to 1.00 ms at p=0 (4.0× faster)." in text
    assert "Lookups were faster with the cache at every p measured (5 values)." in text


def test_a_slower_cache_is_called_slower(tmp_path):
    text = page(tmp_path, cache_faster=False)
    assert "Caching made lookups slower at p=0: p50 1.00 ms without the cache, 4.00 ms with it." in text
    assert "Caching cut" not in text
    assert "clearly faster with the cache at 0 of 5 values of p (p = none)" in text


def test_lookups_slowing_with_p_as_hits_fall_name_the_invalidations(tmp_path):
    text = page(tmp_path, on_trend=2.0, hit_rates=(0.9, 0.5))
    assert ("With the cache on, lookup p50 rises from 1.00 ms at p=0 to 2.60 ms at p=0.8, because more trades "
            "invalidate cached entries: the hit rate fell from 90% to 50%") in text


def test_lookups_getting_faster_with_p_are_said_to_fall(tmp_path):
    text = page(tmp_path, on_trend=-0.8, hit_rates=(0.9, 0.5))
    assert "With the cache on, lookup p50 falls from 1.00 ms at p=0 to 0.36 ms at p=0.8" in text
    assert "because more trades" not in text


def test_flat_lookups_and_hit_rate_are_within_noise(tmp_path):
    text = page(tmp_path, on_trend=0.05, hit_rates=(0.9, 0.89))
    assert ("With the cache on, lookup p50 stays within noise (1.00 ms at p=0, 1.04 ms at p=0.8); "
            "the hit rate stayed about the same (90% to 89%).") in text


def test_one_error_is_counted_in_the_singular():
    from bazaar.evaluation.inputs import ChaosData
    from bazaar.evaluation.observations import chaos_observations

    def attempt(outcome):
        return type("Attempt", (), {"outcome": outcome, "ok": outcome == "ok"})()

    chaos = ChaosData(directory=Path("."), duration=10, seed=1, faults=[], failovers=[], invariants=[],
                      attempts=[attempt("ok"), attempt("503 busy")], extra={})
    assert chaos_observations(chaos)[0] == (
        "With no fault injected the clients saw 1 error in 2 POST /orders attempts: 1 '503 busy'; "
        "1 answer was a 503: nothing executed.")


def test_each_error_is_put_down_to_the_fault_it_came_during():
    from bazaar.evaluation.inputs import ChaosData, Fault
    from bazaar.evaluation.observations import chaos_observations

    def attempt(sent, outcome):
        return type("Attempt", (), {"outcome": outcome, "ok": outcome == "ok", "sent": sent})()

    faults = [Fault(at=5.0, kind="kill", target="catalog", was_leader=False, pause=0.5, back=5.6),
              Fault(at=10.0, kind="stop", target="order-3", was_leader=True, pause=0.6, back=10.7)]
    attempts = [attempt(1.0, "ok"), attempt(5.2, "503 busy"), attempt(6.4, "503 busy"),
                attempt(10.1, "timeout"), attempt(20.0, "503 busy")]
    chaos = ChaosData(directory=Path("."), duration=30, seed=1, faults=faults, failovers=[0.7],
                      invariants=[], attempts=attempts, extra={})
    assert chaos_observations(chaos)[1] == (
        "Of these errors, 2 during the kill of catalog (not the leader) at 5.0 s, 1 during the stop of "
        "order-3 (the leader) at 10.0 s, 1 with no fault under way; 1 came during a fault of the leader "
        "(counting up to 1 s after the process was back).")


def test_the_chaos_sentences_count_errors_and_the_worst_failover(tmp_path):
    text = page(tmp_path)
    assert ("During 3 faults (1 kill, 2 stop; 2 of them of the leader) the clients saw 4 errors in 200 "
            "POST /orders attempts: 2 'connection error', 1 '503 no catalog', 1 'timeout'; "
            "3 answers left the trade in doubt (a retry under the same Idempotency-Key settles it) and "
            "1 answer was a 503: nothing executed.") in text
    assert "the worst failover was 1.60 s." in text
    assert "All replica logs ended identical: yes (invariant I5)." in text
    assert "Every invariant held (I1, I2, I3, I4, I5, I6)." in text


def test_diverged_replicas_are_reported(tmp_path):
    text = page(tmp_path, chaos_kwargs={"identical": False, "errors": False})
    assert "All replica logs ended identical: no (invariant I5: replica 2 differs" in text
    assert "Invariants failed: I5." in text
    assert "the clients saw no error in 200 POST /orders attempts" in text


def markdown_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row of `text`, header rows included, rules left out."""
    rows = [[c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
            for line in text.splitlines() if line.startswith("|")]
    return [r for r in rows if not all(set(c) == {"-"} for c in r)]


def test_the_page_has_the_machine_the_method_and_the_tables(tmp_path):
    text = page(tmp_path)
    rows = markdown_rows(text)
    assert ["CPU", "x"] in rows
    assert "bazaar chaos --duration 10 --clients 4 --fault-every 5 --seed 7 --out CHAOS_DIR" in text
    assert "bazaar load --cache both --out LOAD_DIR" in text
    assert ["cache", "p", "type", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "mean ms", "max ms"] in rows
    assert ["on", "0.2", "lookup", "1000", "0", "1.40", "2.80", "4.20", "1.68", "7.00"] in rows
    assert ["on", "0.4", "1800", "2.00", "600", "0", "70.0%", "700", "300", "40"] in rows
    assert ["2.0", "kill", "order-3", "yes", "1.00", "0.70"] in rows
    # numpy.percentile of [0.7, 1.6]: 0.7 + 0.5 * 0.9 and 0.7 + 0.99 * 0.9
    assert "Failover over 2 leader faults: p50 1.15 s, p99 1.59 s, max 1.60 s." in text
    assert "is numpy.percentile, linear interpolation" in text


def test_a_bar_in_a_cell_stays_in_its_cell(tmp_path):
    rows = markdown_rows("\n".join(document._table(("invariant", "detail"), [("I1", "a | b")])))
    assert rows == [["invariant", "detail"], ["I1", "a \\| b"]]


@pytest.mark.parametrize("before, after, verb", [
    (10.0, 10.9, "stays"), (10.0, 11.2, "rises"), (10.0, 8.9, "falls"), (0.0, 0.0, "stays"), (0.0, 1.0, "rises"),
])
def test_change_has_a_noise_band(before, after, verb):
    assert observations.change(before, after) == verb


# ---- the bench's scale curves -------------------------------------------------------------------------


def _load_json(per_second: float, p99: float) -> dict:
    return {"per_second": per_second, "requests": int(per_second * 10), "failures": 0, "seconds": 10.0,
            "p50": p99 / 4, "p99": p99}


def write_bench_json(path: Path) -> Path:
    """The shape bench/report.py's as_json writes (the keys the figure and the page read)."""
    path.write_text(json.dumps({
        "settings": {"seconds": 10.0},
        "trades": [{"connections": c, "measured": _load_json(100 * c ** 0.5, 0.01 * c),
                    "baseline": _load_json(3000, 0.002 * c), "ratio": None} for c in (64, 1, 16)],
        "history": [{"orders": 100_000, "trades": _load_json(1900, 0.05), "empty": _load_json(2000, 0.05)},
                    {"orders": 10_000, "trades": None, "empty": _load_json(2000, 0.05)}],
    }))
    return path


def test_the_bench_json_gives_the_curves_in_order(tmp_path):
    bench = inputs.read_bench(write_bench_json(tmp_path / "bench.json"))
    assert [p.at for p in bench.connections] == [1, 16, 64]
    assert (bench.connections[1].per_second, bench.connections[1].reference_per_second) == (400, 3000)
    assert bench.connections[2].p99 == 0.64 and bench.connections[0].reference_p99 == 0.002
    assert [(p.at, p.per_second, p.reference_per_second) for p in bench.history] == [
        (10_000, None, 2000), (100_000, 1900, 2000)]
    with pytest.raises(inputs.InputError, match="not found"):
        inputs.read_bench(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text('{"trades": []}')
    with pytest.raises(inputs.InputError, match="missing 'history'"):
        inputs.read_bench(tmp_path / "bad.json")


def test_plot_with_the_bench_draws_its_scale_curves_onto_the_page(tmp_path, capsys):
    load, chaos = write_load_dir(tmp_path / "load"), write_chaos_dir(tmp_path / "chaos")
    bench = write_bench_json(tmp_path / "bench.json")
    doc = tmp_path / "docs" / "evaluation.md"
    code, out, err = run(capsys, "plot", load, "--chaos", chaos, "--bench", bench, "--doc", doc)
    assert code == 0, err
    assert_png(tmp_path / "docs" / "figures" / BENCH_SCALE)
    text = doc.read_text()
    assert f"](figures/{BENCH_SCALE})" in text and "## Scale (the bench)" in text
    assert "--bench BENCH_DIR/bench.json --doc" in text
    rows = markdown_rows(text)
    assert ["16", "400", "3,000", "0.13×", "160.0", "32.0"] in rows
    assert ["100,000", "1,900", "2,000", "0.95×"] in rows and ["10,000", "-", "2,000", "-"] in rows


def test_without_the_bench_its_figure_is_skipped_and_the_page_has_no_scale_section(tmp_path, capsys):
    load = write_load_dir(tmp_path / "load")
    doc = tmp_path / "docs" / "evaluation.md"
    code, out, err = run(capsys, "plot", load, "--doc", doc)
    assert code == 0, err
    assert f"skipped {BENCH_SCALE}: no bench results given (--bench FILE)" in out
    assert "## Scale" not in doc.read_text()
