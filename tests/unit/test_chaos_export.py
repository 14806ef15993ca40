"""`bazaar chaos --out`: the records written as attempts.csv and faults.json, and read back by the
evaluation's reader (a fault of two processes is one entry there, its hits listed)."""

import csv
import json

from bazaar.chaos import export
from bazaar.chaos.clients import NO_CONNECTION, OK, Attempt, Records, Trade
from bazaar.chaos.faults import FREEZE, KILL, LEADER_CATALOG, SINGLE, TWO_REPLICAS, Fault, Hit
from bazaar.chaos.invariants import Check
from bazaar.chaos.run import ChaosSettings, PhaseResult
from bazaar.chaos.traffic import Pause
from bazaar.evaluation.inputs import read_chaos

FE = "fe-" + "0" * 32


def single(at, kind, target, was_leader, pause, back):
    return Fault(at, SINGLE, (Hit(kind, target, was_leader, at, pause, back),), back)


def written(tmp_path):
    records = Records()
    records.attempts += [
        Attempt(0, "k0", 0.5, 0.525, OK, 0, "k0", "k0"),
        Attempt(1, "", 1.0, 1.5, NO_CONNECTION),
        Attempt(1, FE, 1.6, 1.7, "504 outcome unknown: retry with the same Idempotency-Key", None, None, FE),
        Attempt(1, FE, 1.8, 1.82, OK, 1, FE, FE),
        Attempt(0, "k2", 6.5, 7.5, "503 no order leader with a majority is available", None, "k2", "k2"),
    ]
    records.trades.update(k0=Trade("tesla", "buy", 3), k2=Trade("ford", "sell", 1), **{FE: Trade("ford", "sell", 1)})
    records.acknowledged.update({"k0": 0, FE: 1})
    records.not_executed.add("k2")
    records.lost.append(Trade("nike", "buy", 2))
    double = Fault(6.0, TWO_REPLICAS, (Hit(FREEZE, "order-1", False, 6.0, 2.0, 8.0),
                                       Hit(KILL, "order-2", True, 6.2, 1.0, 9.0)), 9.0, idle=True)
    faults = [single(1.0, KILL, "order-3", True, 0.4, 1.9), double,
              Fault(11.0, LEADER_CATALOG, (Hit(FREEZE, "order-2", True, 11.0, 1.0, 12.0),
                                           Hit(FREEZE, "catalog", False, 11.1, 3.0, 14.1)), 14.1)]
    checks = [Check("I1", "every order", note="2 acknowledged"), Check("I5", "identical", problems=["r2 differs"])]
    settings = ChaosSettings(duration=20.0, clients=2, fault_every=5.0)
    phase = PhaseResult(records, faults, converged_after=0.25, served={}, caught_up_after=0.5, keyless=1,
                        pauses=[Pause(6.0, 7.5)])
    document = export.faults_document(settings, 7, phase, [0.82, 2.5, None], checks)
    return export.write(tmp_path / "out", records.attempts, document)


def test_attempts_csv_has_one_row_per_attempt(tmp_path):
    attempts_path, _ = written(tmp_path)
    with open(attempts_path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["client", "key", "sent", "done", "latency_ms", "outcome", "number", "sent_key", "header"]
    assert rows[1] == ["0", "k0", "0.500000", "0.525000", "25.000", "ok", "0", "k0", "k0"]
    assert rows[2] == ["1", "", "1.000000", "1.500000", "500.000", "connection error", "", "", ""]
    assert rows[3][1] == FE and rows[3][5].startswith("504") and rows[3][7:] == ["", FE]
    assert len(rows) == 6


def test_faults_json_has_the_faults_their_hits_failovers_and_verdicts(tmp_path):
    _, faults_path = written(tmp_path)
    doc = json.loads(faults_path.read_text())
    assert doc["duration"] == 20.0 and doc["seed"] == 7
    first = doc["faults"][0]
    assert {k: first[k] for k in ("at", "kind", "target", "was_leader", "pause", "back", "class")} == {
        "at": 1.0, "kind": "kill", "target": "order-3", "was_leader": True, "pause": 0.4, "back": 1.9,
        "class": "single"}
    double = doc["faults"][1]
    assert double["kind"] == "stop+kill" and double["target"] == "order-1+order-2" and double["was_leader"]
    assert double["class"] == "two replicas" and double["idle"] and double["pause"] == 2.0 and double["back"] == 9.0
    assert [h["target"] for h in double["hits"]] == ["order-1", "order-2"]
    assert double["hits"][1] == {"target": "order-2", "kind": "kill", "was_leader": True, "at": 6.2, "pause": 1.0,
                                 "back": 9.0}
    assert double["answers"] == {"200": 0, "4xx": 0, "503": 1, "504": 0, "other 5xx": 0, "no answer": 0}
    assert doc["faults"][2]["kind"] == "stop" and doc["faults"][2]["target"] == "order-2+catalog"
    assert doc["failovers"] == [0.82, 2.5, None]
    assert doc["invariants"] == [
        {"name": "I1", "passed": True, "detail": "every order (2 acknowledged)"},
        {"name": "I5", "passed": False, "detail": "identical; r2 differs"},
    ]
    assert doc["orders"] == {"acknowledged": 2, "refused": 0, "in_doubt": 0, "not_executed": 1, "lost": 1}
    assert doc["answers"] == {"200": 2, "4xx": 0, "503": 1, "504": 1, "other 5xx": 0, "no answer": 1}
    assert doc["clients"] == 2 and doc["keyless_clients"] == 1 and doc["fault_every"] == 5.0
    assert doc["converged_after"] == 0.25 and doc["caught_up_after"] == 0.5 and doc["idle_pauses"] == [[6.0, 7.5]]


def test_the_evaluation_reads_what_chaos_writes(tmp_path):
    written(tmp_path)
    chaos = read_chaos(tmp_path / "out")
    assert [a.ok for a in chaos.attempts] == [True, False, False, True, False]
    assert chaos.attempts[3].number == 1 and chaos.attempts[1].number is None
    assert [f.was_leader for f in chaos.faults] == [True, True, True]
    assert [f.target for f in chaos.faults] == ["order-3", "order-1+order-2", "order-2+catalog"]
    assert chaos.faults[1].at == 6.0 and chaos.faults[1].back == 9.0
    assert chaos.failovers == [0.82, 2.5, None] and chaos.extra["clients"] == 2


def test_an_out_path_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    from bazaar.tools.cli import main

    (tmp_path / "file").write_text("")
    try:
        code = main(["chaos", "--out", str(tmp_path / "file")])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "exists and is not a directory" in err
