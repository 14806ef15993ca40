"""A bench run that stops early keeps its processes' logs, and nothing else of its folder."""

from __future__ import annotations

from pathlib import Path

from bench.main import keep_logs


def test_the_logs_are_kept_in_their_folders_and_the_data_is_not(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "history" / "seeded" / "data").mkdir(parents=True)
    (run / "history" / "seeded" / "order-2.log").write_text("cannot listen\n")
    (run / "history" / "seeded" / "data" / "log.sqlite").write_bytes(b"\0" * 100)
    (run / "frontend.log").write_text("started\n")
    kept = tmp_path / "latest-logs"
    (kept / "old").mkdir(parents=True)  # what an earlier run kept goes

    assert keep_logs(run, kept) == kept
    files = sorted(str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file())
    assert files == ["frontend.log", "history/seeded/order-2.log"]
    assert (kept / "history" / "seeded" / "order-2.log").read_text() == "cannot listen\n"


def test_logs_that_cannot_be_copied_are_reported_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert keep_logs(tmp_path / "missing", blocker / "logs") is None
