"""`bazaar chaos --network` on real test hosts: one network namespace per service, iptables faults.

Needs root, iproute2 and iptables (CI runs as root and installs both); skips with the reason
elsewhere. The first test builds the hosts and checks a fault's rules and their heal by hand;
the second runs a short network chaos (seed 60: its first four faults are one of each class,
each under 2.5 s, so all four fit in 20 s) and checks the invariants, the classes and that
nothing of the run is left behind: no namespace, no veth, no claim, no chain in the root
namespace. Whatever happens, the hosts of a run whose process is gone are removed at the end.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bazaar.chaos import hosts
from bazaar.chaos.network import ISOLATE, NET_CLASSES, Firewall, NetPlan, net_fault_classes
from bazaar.chaos.processes import NAMES

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("test_hosts_available")]

ROOT = Path(__file__).resolve().parents[2]
SEED = 60
INVARIANTS = ["I1", "I2", "I3", "I4", "I5", "I6", "I7"]
RUN_TIMEOUT = 110  # seconds for the whole chaos run (it takes about 35)


def left_of(run_id: str) -> list[str]:
    """Whatever of run `run_id` is still there."""
    found = [ns for ns in hosts.namespaces() if ns.startswith(f"bz-{run_id}-")]
    found += [link for link in hosts.root_links() if link == hosts.root_link(run_id)]
    if (hosts.CLAIMS / run_id).exists():
        found.append(str(hosts.CLAIMS / run_id))
    return found


def root_chains() -> str:
    return subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True, timeout=10).stdout


def connects(h: hosts.TestHosts, source: str, destination: str, port: int) -> bool:
    probe = (f"import socket; s = socket.socket(); s.settimeout(0.5); "
             f"print(s.connect_ex(({h.address(destination)!r}, {port})))")
    out = subprocess.run([*h.command_prefix(source), sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=10).stdout
    return out.strip() == "0"


def test_hosts_reach_each_other_a_fault_cuts_them_and_a_heal_restores_exactly():
    with hosts.TestHosts() as h:
        run_id = h.run_id
        assert len(left_of(run_id)) == len(NAMES) + 3  # the services' and the switch's, the veth, the claim
        firewall = Firewall(run_id, {n: h.netns(n) for n in NAMES}, h.address)
        firewall.install()
        listener = subprocess.Popen(
            [*h.command_prefix("order-2"), sys.executable, "-c",
             f"import socket, sys; s = socket.socket(); s.bind(({h.address('order-2')!r}, 5999)); s.listen(); "
             "print('up', flush=True); sys.stdin.read()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert listener.stdout.readline().strip() == "up"
            before = subprocess.run(firewall.iptables("order-2", "-S"), capture_output=True, text=True).stdout
            assert connects(h, "order-1", "order-2", 5999)
            applied = firewall.apply(NetPlan(ISOLATE, ("order-2",), False, 1.0))
            assert not connects(h, "order-1", "order-2", 5999)
            firewall.heal(applied)
            assert subprocess.run(firewall.iptables("order-2", "-S"), capture_output=True, text=True).stdout == before
            assert connects(h, "order-1", "order-2", 5999)
        finally:
            listener.stdin.close()
            listener.wait(10)
    assert left_of(run_id) == []


def test_a_short_network_chaos_run_passes_every_invariant_and_leaves_nothing(tmp_path):
    assert sorted(net_fault_classes(SEED, 4)) == sorted(NET_CLASSES)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "bazaar", "chaos", "--network", "--duration", "20", "--clients", "4",
         "--fault-every", "4", "--seed", str(SEED), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=RUN_TIMEOUT,
    )
    out = run.stdout
    match = re.search(r"\(run ([0-9a-f]{4})\)", out)
    assert match, out[-3000:] + run.stderr[-2000:]
    run_id = match.group(1)
    assert run.returncode == 0, out[-5000:] + run.stderr[-2000:]
    assert time.monotonic() - started < 60, "the network chaos run took a minute or more"
    verdicts = [line for line in out.splitlines() if line[:1] == "I" and line[1:2].isdigit()]
    assert [v.split()[0] for v in verdicts] == INVARIANTS, out
    assert all(v.split()[1] == "PASS" for v in verdicts), out
    assert "ALL INVARIANTS PASS" in out and "Traceback" not in run.stderr

    document = json.loads((tmp_path / "out" / "network-faults.json").read_text())
    faults = document["faults"]
    assert [f["class"] for f in faults[:4]] == net_fault_classes(SEED, 4), faults
    assert {f["class"] for f in faults} == set(NET_CLASSES)
    for f in faults:
        assert f["back"] > f["at"] and f["lasted"] > 0.5
        assert f["gap"] is None or f["gap"] >= 0
    assert document["orders"]["acknowledged"] > 0
    assert [c["name"] for c in document["invariants"]] == INVARIANTS

    # Torn down: nothing of the run is left, and the root namespace never had a chain of it.
    assert left_of(run_id) == []
    assert f"BZ-{run_id}" not in root_chains()
    assert "test hosts of run" in out and "removed" in out


def test_without_test_hosts_the_command_says_why_in_one_line(tmp_path):
    # Not root: the command refuses at once with one line, before making anything.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    probe = ("import os, sys; os.geteuid = lambda: 1000; from bazaar.tools.cli import main; "
             "sys.exit(main(['chaos', '--network', '--duration', '5']))")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "bazaar chaos: network chaos needs root (it makes network namespaces and iptables rules)"]
    assert run.stdout == ""
