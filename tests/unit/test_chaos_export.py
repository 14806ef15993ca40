"""`bazaar chaos --out`: the records written as attempts.csv and faults.json, and read back by the
evaluation's reader."""

import csv
import json

from bazaar.chaos import export
from bazaar.chaos.clients import NO_CONNECTION, OK, Attempt, Records, Trade
from bazaar.chaos.faults import FREEZE, KILL, Fault
from bazaar.chaos.invariants import Check
from bazaar.chaos.run import ChaosSettings, PhaseResult
from bazaar.evaluation.inputs import read_chaos


def written(tmp_path):
    records = Records()
    records.attempts += [
        Attempt(0, "k0", 0.5, 0.525, OK, 0),
        Attempt(1, "k1", 1.0, 1.5, NO_CONNECTION),
        Attempt(1, "k1", 1.6, 1.7, "503 the order service cannot take trades right now"),
        Attempt(1, "k1", 1.8, 1.82, OK, 1),
    ]
    records.trades.update(k0=Trade("tesla", "buy", 3), k1=Trade("ford", "sell", 1))
    records.acknowledged.update(k0=0, k1=1)
    faults = [Fault(1.0, KILL, "order-3", True, 0.4, 1.9), Fault(6.0, FREEZE, "catalog", False, 2.0, 8.0),
              Fault(11.0, FREEZE, "order-2", True, 1.0, 12.0)]
    checks = [Check("I1", "every order", note="2 acknowledged"), Check("I5", "identical", problems=["r2 differs"])]
    settings = ChaosSettings(duration=20.0, clients=2, fault_every=5.0)
    phase = PhaseResult(records, faults, converged_after=0.25, served={})
    document = export.faults_document(settings, 7, phase, [0.82, None], checks)
    paths = export.write(tmp_path / "out", records.attempts, document)
    return paths


def test_attempts_csv_has_one_row_per_attempt(tmp_path):
    attempts_path, _ = written(tmp_path)
    with open(attempts_path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["client", "key", "sent", "done", "latency_ms", "outcome", "number"]
    assert rows[1] == ["0", "k0", "0.500000", "0.525000", "25.000", "ok", "0"]
    assert rows[2] == ["1", "k1", "1.000000", "1.500000", "500.000", "connection error", ""]
    assert rows[3][5] == "503 the order service cannot take trades right now"
    assert len(rows) == 5


def test_faults_json_has_the_faults_failovers_and_verdicts(tmp_path):
    _, faults_path = written(tmp_path)
    doc = json.loads(faults_path.read_text())
    assert doc["duration"] == 20.0 and doc["seed"] == 7
    assert doc["faults"][0] == {"at": 1.0, "kind": "kill", "target": "order-3", "was_leader": True,
                                "pause": 0.4, "back": 1.9}
    assert [f["kind"] for f in doc["faults"]] == ["kill", "stop", "stop"]
    assert doc["failovers"] == [0.82, None]
    assert doc["invariants"] == [
        {"name": "I1", "passed": True, "detail": "every order (2 acknowledged)"},
        {"name": "I5", "passed": False, "detail": "identical; r2 differs"},
    ]
    assert doc["orders"] == {"acknowledged": 2, "refused": 0, "in_doubt": 0}
    assert doc["clients"] == 2 and doc["fault_every"] == 5.0 and doc["converged_after"] == 0.25


def test_the_evaluation_reads_what_chaos_writes(tmp_path):
    written(tmp_path)
    chaos = read_chaos(tmp_path / "out")
    assert [a.ok for a in chaos.attempts] == [True, False, False, True]
    assert chaos.attempts[3].number == 1 and chaos.attempts[1].number is None
    assert [f.was_leader for f in chaos.faults] == [True, False, True]
    assert chaos.failovers == [0.82, None] and chaos.extra["clients"] == 2


def test_an_out_path_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    from bazaar.tools.cli import main

    (tmp_path / "file").write_text("")
    try:
        code = main(["chaos", "--out", str(tmp_path / "file")])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "exists and is not a directory" in err
