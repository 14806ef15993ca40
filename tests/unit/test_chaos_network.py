"""`bazaar chaos --network` without root: the fault plans and the iptables rules they make, the
seeded schedule, the applier's commands (a fake runner), the injector on a fake clock, the
test hosts' names and commands, the delayer's netlink messages, and the report's gaps."""

import random
import struct

import numpy
import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from bazaar.chaos import delayer, hosts, network, report
from bazaar.chaos.clients import OK, Attempt
from bazaar.chaos.network import (
    IN, ISOLATE, LEADER_CUT, NET_CLASSES, ONE_WAY, OUT, SLOW_LINK, Firewall, NetPlan, NetSchedule, NetworkInjector,
    Rule, choose_net_fault, delays, net_fault_classes, rules,
)
from bazaar.chaos.processes import NAMES, SERVICE_PORTS, ChaosCluster, addresses_config_text, config_text
from bazaar.chaos.run import first_success_since
from bazaar.config import Address, Config, parse_config

REPLICAS = {"order-1", "order-2", "order-3"}
IPS = {"catalog": "10.213.0.1", "frontend": "10.213.0.2", "order-1": "10.213.0.11", "order-2": "10.213.0.12",
       "order-3": "10.213.0.13"}


# ---- plans and rules -----------------------------------------------------------------------------


def test_isolating_a_host_drops_everything_in_and_out_but_loopback():
    assert rules(NetPlan(ISOLATE, ("order-2",), True, 1.0), IPS.get) == [
        Rule("order-2", IN, ("!", "-i", "lo", "-j", "DROP")),
        Rule("order-2", OUT, ("!", "-o", "lo", "-j", "DROP")),
    ]


def test_a_leader_cut_drops_only_between_the_leader_and_its_followers():
    got = rules(NetPlan(LEADER_CUT, ("order-3", "order-1", "order-2"), True, 1.0), IPS.get)
    assert got == [
        Rule("order-3", IN, ("-s", "10.213.0.11", "-j", "DROP")),
        Rule("order-3", OUT, ("-d", "10.213.0.11", "-j", "DROP")),
        Rule("order-3", IN, ("-s", "10.213.0.12", "-j", "DROP")),
        Rule("order-3", OUT, ("-d", "10.213.0.12", "-j", "DROP")),
    ]
    # Nothing names the front end or the catalog: both still reach the leader.
    assert not any(IPS["frontend"] in r.spec or IPS["catalog"] in r.spec for r in got)


def test_a_one_way_cut_drops_one_direction_only():
    assert rules(NetPlan(ONE_WAY, ("order-1", "order-3"), False, 1.0), IPS.get) == [
        Rule("order-1", OUT, ("-d", "10.213.0.13", "-j", "DROP")),
    ]


def test_a_slow_link_loses_then_queues_each_way():
    plan = NetPlan(SLOW_LINK, ("order-1", "frontend"), True, 2.0, loss=0.125, delay_ms=80)
    got = rules(plan, IPS.get, queue=7)
    loss = ("-m", "statistic", "--mode", "random", "--probability", "0.1250", "-j", "DROP")
    queue = ("-j", "NFQUEUE", "--queue-num", "7", "--queue-bypass")
    assert got == [
        Rule("order-1", OUT, ("-d", "10.213.0.2", *loss)), Rule("order-1", OUT, ("-d", "10.213.0.2", *queue)),
        Rule("frontend", OUT, ("-d", "10.213.0.11", *loss)), Rule("frontend", OUT, ("-d", "10.213.0.11", *queue)),
    ]
    assert [(d.host, d.queue, d.delay_ms) for d in delays(plan, 7)] == [("order-1", 7, 80), ("frontend", 7, 80)]
    lossy_only = NetPlan(SLOW_LINK, ("order-1", "frontend"), True, 2.0, loss=0.2)
    assert all("NFQUEUE" not in r.spec for r in rules(lossy_only, IPS.get)) and delays(lossy_only) == []


def test_every_rule_drops_and_none_rejects():
    rng = random.Random(9)
    for i in range(200):
        plan = choose_net_fault(rng, 1 + i % 3, i % 2 == 0, NET_CLASSES[i % 4])
        for rule in rules(plan, IPS.get):
            assert "REJECT" not in rule.spec
            assert rule.spec[-2:] == ("-j", "DROP") or rule.spec[-5:-3] == ("-j", "NFQUEUE")
            assert rule.chain in (IN, OUT) and rule.host in IPS


def test_targets_read_as_the_report_shows_them():
    assert network.target_text(LEADER_CUT, ("order-2", "order-1", "order-3"), "order-2") == \
        "order-2* | order-1,order-3"
    assert network.target_text(ONE_WAY, ("order-1", "order-3"), "order-3") == "order-1 -> order-3*"
    assert NetPlan(SLOW_LINK, ("order-1", "frontend"), True, 1, 0.1, 40).detail == "loss 10%, +40 ms each way"


# ---- the schedule --------------------------------------------------------------------------------


def test_every_round_of_four_faults_holds_one_of_each_class():
    for seed in range(30):
        classes = net_fault_classes(seed, 12)
        for start in range(0, 12, 4):
            assert sorted(classes[start:start + 4]) == sorted(NET_CLASSES)


def test_the_schedule_is_reproducible():
    def plans(seed):
        s = NetSchedule(seed)
        return [s.plan(2, i % 2 == 0) for i in range(20)]

    assert plans(5) == plans(5)
    assert plans(5) != plans(6)


def test_fault_choice_hits_the_leader_whenever_the_previous_fault_missed_it():
    rng = random.Random(3)
    for i in range(400):
        fault_class = NET_CLASSES[i % 4]
        plan = choose_net_fault(rng, 2, False, fault_class)
        assert plan.was_leader and "order-2" in plan.hosts, plan
        assert len(set(plan.hosts)) == len(plan.hosts)


def test_each_class_touches_the_hosts_it_names():
    rng = random.Random(4)
    isolated, slow_peers = set(), set()
    for _ in range(300):
        cut = choose_net_fault(rng, 1, True, LEADER_CUT)
        assert cut.hosts == ("order-1", "order-2", "order-3") and cut.was_leader
        one_way = choose_net_fault(rng, 1, True, ONE_WAY)
        assert set(one_way.hosts) <= REPLICAS and len(set(one_way.hosts)) == 2
        isolated.add(choose_net_fault(rng, 1, True, ISOLATE).hosts)
        slow = choose_net_fault(rng, 1, True, SLOW_LINK)
        assert slow.hosts[0] == "order-1" and slow.was_leader
        slow_peers.add(slow.hosts[1])
        lo, hi = network.LOSS
        assert lo <= slow.loss <= hi and network.DELAY_MS[0] <= slow.delay_ms <= network.DELAY_MS[1]
        assert network.DURATION[0] <= cut.duration <= network.DURATION[1]
    assert isolated == {(n,) for n in NAMES}
    assert slow_peers == {"order-2", "order-3", "frontend"}
    assert choose_net_fault(rng, 1, True, SLOW_LINK, delay=False).delay_ms == 0


def test_without_a_known_leader_nothing_counts_as_the_leader():
    rng = random.Random(5)
    for fault_class in NET_CLASSES:
        plan = choose_net_fault(rng, None, False, fault_class)
        assert not plan.was_leader and plan.hosts[0] in REPLICAS


# ---- the applier, with a fake runner --------------------------------------------------------------


def firewall(run):
    return Firewall("ab12", {n: f"bz-ab12-{n}" for n in NAMES}, IPS.get, run=run)


def test_the_firewall_makes_a_chain_pair_per_namespace_jumped_to_first():
    commands = firewall(lambda argv: None).install_commands()
    assert len(commands) == 4 * len(NAMES)
    assert commands[:4] == [
        ["ip", "netns", "exec", "bz-ab12-catalog", "iptables", "-w", "-N", "BZ-ab12-IN"],
        ["ip", "netns", "exec", "bz-ab12-catalog", "iptables", "-w", "-I", "INPUT", "1", "-j", "BZ-ab12-IN"],
        ["ip", "netns", "exec", "bz-ab12-catalog", "iptables", "-w", "-N", "BZ-ab12-OUT"],
        ["ip", "netns", "exec", "bz-ab12-catalog", "iptables", "-w", "-I", "OUTPUT", "1", "-j", "BZ-ab12-OUT"],
    ]


def test_a_heal_deletes_exactly_the_rules_the_fault_added_latest_first():
    ran = []
    fw = firewall(ran.append)
    applied = fw.apply(NetPlan(LEADER_CUT, ("order-3", "order-1", "order-2"), True, 1.0))
    added = [argv for argv in ran if "-A" in argv]
    ran.clear()
    fw.heal(applied)
    assert [argv[argv.index("-D"):] for argv in ran] == [
        ["-D", *argv[argv.index("-A") + 1:]] for argv in reversed(added)
    ]
    assert applied.rules == []
    ran.clear()
    fw.heal_all()
    assert ran == fw.flush_commands() and all(argv[-2] == "-F" for argv in ran)


def test_a_fault_that_cannot_be_put_in_place_removes_what_it_added():
    ran = []

    def run(argv):
        ran.append(argv)
        if "-A" in argv and len([a for a in ran if "-A" in a]) == 2:
            raise network.ChaosError("no such chain")

    with pytest.raises(network.ChaosError):
        firewall(run).apply(NetPlan(ISOLATE, ("frontend",), False, 1.0))
    assert [argv[-6:] for argv in ran if "-D" in argv] == [["-D", "BZ-ab12-IN", "!", "-i", "lo", "-j", "DROP"][-6:]]


# ---- the injector on a fake clock -----------------------------------------------------------------


class FakeFirewall:
    def __init__(self, clock):
        self.clock = clock
        self.events = []

    def apply(self, plan):
        self.events.append((self.clock.seconds(), "apply", plan.fault_class))
        return plan

    def heal(self, applied):
        self.events.append((self.clock.seconds(), "heal", applied.fault_class))


class NoCluster:
    def reap_unexpected(self):
        return []


def run_injector(log_ends, until=40.0):
    clock = Clock()
    fw = FakeFirewall(clock)
    successes = []  # completion times of trades, each "sent" at its completion here

    def succeeded_since(t):
        return next((d for d in successes if d >= t), None)

    async def leader():
        return 2

    async def direct(f, *args):
        return f(*args)

    injector = NetworkInjector(clock, fw, NoCluster(), NetSchedule(11), 3.0, clock.seconds, leader, lambda s: None,
                               succeeded_since, log_ends, in_thread=direct)
    done = Deferred.fromCoroutine(injector.run(until))
    while not done.called:
        clock.advance(0.05)
        if int(clock.seconds() * 20) % 7 == 0:
            successes.append(clock.seconds())
    assert done.result is None
    return injector.faults, fw


def test_the_injector_heals_each_fault_after_its_length_and_waits_for_recovery():
    faults, fw = run_injector(lambda: [10, 10, 10])
    assert len(faults) >= 4 and sorted(f.fault_class for f in faults[:4]) == sorted(NET_CLASSES)
    assert [e[1] for e in fw.events] == ["apply", "heal"] * len(faults)
    for fault, nxt in zip(faults, faults[1:]):
        assert fault.back - fault.at == pytest.approx(fault.duration, abs=0.06)
        assert fault.recovered is not None and fault.recovered >= fault.back
        assert fault.synced == pytest.approx(fault.back, abs=0.06)
        assert nxt.at >= fault.at + 3.0 and nxt.at >= fault.recovered + network.MIN_GAP - 0.06
    assert all(f.leader == "order-2" for f in faults)


def test_a_replica_that_never_catches_up_holds_the_next_fault_back_for_the_deadline_only():
    # One replica stays one entry short of what the majority held at the heal.
    faults, _ = run_injector(lambda: [10, 10, 9], until=30.0)
    assert len(faults) == 2 and all(f.synced is None for f in faults)
    assert faults[1].at - faults[0].back == pytest.approx(network.RECOVERY_DEADLINE + network.MIN_GAP, abs=0.2)


# ---- test hosts: names and commands (no root) -------------------------------------------------------


def test_host_names_fit_linux_limits_and_addresses_are_distinct():
    names = hosts.run_names("0f3a")
    assert set(names) == {"switch", *NAMES} and all(n.startswith("bz-0f3a-") for n in names.values())
    assert len(hosts.root_link("0f3a")) <= hosts.IFNAMSIZ
    assert all(len(hosts.switch_port(n)) <= hosts.IFNAMSIZ for n in (*NAMES, hosts.CLIENT))
    assert len({hosts.switch_port(n) for n in (*NAMES, hosts.CLIENT)}) == len(NAMES) + 1
    addresses = {hosts.host_address(7, n) for n in (*NAMES, hosts.CLIENT)}
    assert len(addresses) == len(NAMES) + 1 and all(a.startswith("10.213.7.") for a in addresses)


def test_the_creation_commands_give_every_host_loopback_and_one_veth_on_the_bridge():
    cmds = hosts.creation_commands("0f3a", 7)
    assert all(c[0] == "ip" for c in cmds)
    for name in NAMES:
        ns = f"bz-0f3a-{name}"
        assert ["ip", "netns", "add", ns] in cmds
        assert ["ip", "-n", ns, "link", "set", "lo", "up"] in cmds
        assert ["ip", "-n", ns, "addr", "add", f"{hosts.host_address(7, name)}/24", "dev", "eth0"] in cmds
        assert ["ip", "-n", "bz-0f3a-sw", "link", "set", hosts.switch_port(name), "master", "br0"] in cmds
    assert ["ip", "addr", "add", "10.213.7.100/24", "dev", "bz0f3a"] in cmds


def test_a_run_may_ask_for_a_second_front_end_host():
    services = (*NAMES, "frontend-2")
    names = hosts.run_names("0f3a", services)
    assert names["frontend-2"] == "bz-0f3a-frontend-2" and len(hosts.switch_port("frontend-2")) <= hosts.IFNAMSIZ
    assert hosts.host_address(7, "frontend-2") == "10.213.7.3"
    assert len({hosts.host_address(7, n) for n in (*services, hosts.CLIENT)}) == len(services) + 1
    cmds = hosts.creation_commands("0f3a", 7, services)
    assert ["ip", "-n", "bz-0f3a-frontend-2", "addr", "add", "10.213.7.3/24", "dev", "eth0"] in cmds
    assert "bz-0f3a-frontend-2" not in str(hosts.creation_commands("0f3a", 7))  # chaos's five hosts only
    assert hosts.TestHosts("0f3a", services).names == names
    for bad in [(*NAMES, "frontend-9"), (*NAMES, "catalog"), ("client",)]:
        with pytest.raises(ValueError, match="test hosts are distinct names"):
            hosts.TestHosts("0f3a", bad)


def test_a_bad_run_id_is_refused():
    with pytest.raises(ValueError):
        hosts.TestHosts("bz-1")


def test_hosts_are_unavailable_without_root(monkeypatch):
    monkeypatch.setattr(hosts.os, "geteuid", lambda: 1000)
    with pytest.raises(hosts.HostsUnavailable, match="needs root"):
        hosts.check_available()


def test_hosts_are_unavailable_without_iptables(monkeypatch):
    monkeypatch.setattr(hosts.os, "geteuid", lambda: 0)
    monkeypatch.setattr(hosts.shutil, "which", lambda tool: None if tool == "iptables" else f"/usr/sbin/{tool}")
    with pytest.raises(hosts.HostsUnavailable, match="apt-get install iptables"):
        hosts.check_available()


class FakeHosts:
    def address(self, name):
        return IPS[name]

    def command_prefix(self, name):
        return ["ip", "netns", "exec", f"bz-ab12-{name}"]


def test_a_cluster_on_test_hosts_names_each_service_at_its_hosts_address(tmp_path):
    cluster = ChaosCluster(tmp_path, hosts=FakeHosts())
    config = parse_config(cluster.config_path.read_text(), tmp_path)
    assert str(config.catalog) == f"10.213.0.1:{SERVICE_PORTS['catalog']}"
    assert str(config.frontends[1].address) == f"10.213.0.2:{SERVICE_PORTS['frontend']}"
    assert {i: str(a) for i, a in config.replicas.items()} == {
        i: f"10.213.0.{10 + i}:{SERVICE_PORTS[f'order-{i}']}" for i in (1, 2, 3)}
    assert cluster.frontend_url == "http://10.213.0.2:56893"
    assert cluster.command("order-2")[:5] == ["ip", "netns", "exec", "bz-ab12-order-2", cluster.twistd]
    assert cluster.replica_id_at("10.213.0.12:56895") == 2
    assert cluster.replica_id_at("127.0.0.1:56895") is None


def test_the_loopback_config_names_every_service_at_its_port(tmp_path):
    config = parse_config(config_text(1001, 1002, {1: 1003, 2: 1004, 3: 1005}), tmp_path)
    assert (str(config.catalog), str(config.frontends[1].address)) == ("127.0.0.1:1001", "127.0.0.1:1002")
    assert {i: str(a) for i, a in config.replicas.items()} == {1: "127.0.0.1:1003", 2: "127.0.0.1:1004", 3: "127.0.0.1:1005"}
    assert config.frontend.cache and config.metrics == {}
    text = addresses_config_text({"catalog": "a:1", "frontend": "b:2", "order-1": "c:3"}, cache=False,
                                 metrics={"order-1": "127.0.0.1:9"})
    config = parse_config(text, tmp_path)
    assert not config.frontend.cache and config.metrics_address("order-1") == Address("127.0.0.1", 9)
    assert config.snapshot_gap == Config().snapshot_gap
    text = addresses_config_text({"catalog": "a:1", "frontend": "b:2", "order-1": "c:3"}, snapshot_gap=7)
    assert parse_config(text, tmp_path).snapshot_gap == 7


# ---- the delayer's netlink messages -------------------------------------------------------------------


def test_a_verdict_accepts_the_packet_by_id():
    msg = delayer.verdict(5, 0x01020304)
    length, kind, flags, _, _ = struct.unpack_from("=IHHII", msg)
    assert length == len(msg) == 16 + 4 + 12 and kind == (3 << 8) | 1 and flags == delayer.NLM_F_REQUEST
    assert struct.unpack_from("!BBH", msg, 16) == (0, 0, 5)
    assert struct.unpack_from("=HH", msg, 20) == (12, delayer.NFQA_VERDICT_HDR)
    assert struct.unpack_from("!II", msg, 24) == (delayer.NF_ACCEPT, 0x01020304)


def test_packets_and_errors_are_parsed_from_one_datagram():
    header = delayer.attribute(delayer.NFQA_PACKET_HDR, struct.pack("!IHB", 77, 0x0800, 3) + b"\0")
    other = delayer.attribute(9, b"\x01\x02\x03")
    packet = delayer.message(delayer.NFQNL_MSG_PACKET, 5, [other, header])
    ack = struct.pack("=IHHII", 36, delayer.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", 0) + b"\0" * 16
    error = struct.pack("=IHHII", 36, delayer.NLMSG_ERROR, 0, 2, 0) + struct.pack("=i", -1) + b"\0" * 16
    assert list(delayer.parse(packet + ack + error)) == [("packet", 77), ("error", 0), ("error", 1)]


def test_the_configuration_binds_copies_metadata_only_and_fails_open():
    bind, params, maxlen, flags = delayer.config_messages(9)
    assert all(struct.unpack_from("=HH", m, 4)[1] & delayer.NLM_F_ACK for m in (bind, params, maxlen, flags))
    assert struct.unpack_from("!BxH", bind, 24) == (delayer.NFQNL_CFG_CMD_BIND, 0)
    assert struct.unpack_from("!IB", params, 24) == (0, delayer.NFQNL_COPY_META)
    assert struct.unpack_from("!I", flags, 24) == (delayer.NFQA_CFG_F_FAIL_OPEN,)


# ---- the report ----------------------------------------------------------------------------------------


def attempt(sent, done, outcome=OK):
    return Attempt(0, "k", sent, done, outcome, 1 if outcome == OK else None, "k")


def test_gaps_count_from_the_fault_to_the_first_trade_sent_after_it():
    attempts = [attempt(0.0, 0.1), attempt(0.9, 3.0), attempt(1.1, 2.5, "timeout"), attempt(2.6, 2.7),
                attempt(3.1, 3.2)]
    faults = [network.NetFault(1.0, ISOLATE, "frontend", ("frontend",), False, 1.0, 2.0, 2.7)]
    assert report.failover_gaps(faults, attempts) == [pytest.approx(1.7)]
    assert report.longest_gap(attempts) == pytest.approx((2.6, 0.1, 2.7))
    assert first_success_since(attempts, 1.0) == 2.7
    assert first_success_since(attempts, 3.05) == 3.2
    assert first_success_since(attempts, 5.0) is None


def test_gap_percentiles_are_numpys():
    values = [0.02, 0.5, 0.03, 6.8, 0.6, 1.9, 0.04]
    line = report.summary_line("x", values)
    assert f"p50 {numpy.percentile(values, 50):.2f} s" in line
    assert f"p99 {numpy.percentile(values, 99):.2f} s" in line and "max 6.80 s" in line


def test_the_network_section_has_a_line_per_fault_and_a_summary_per_class():
    attempts = [attempt(t / 10, t / 10 + 0.02) for t in range(100)]
    faults = [
        network.NetFault(1.0, LEADER_CUT, "t", ("order-1", "order-2", "order-3"), True, 1.0, 2.0, 2.1, 2.5,
                         leader="order-1"),
        network.NetFault(4.0, SLOW_LINK, "t", ("order-1", "frontend"), True, 2.0, 6.0, 6.05, None, 0.2, 50,
                         leader="order-1"),
    ]
    lines = report.network_section(faults, attempts)
    assert lines[0].startswith("network faults: 2 (1 leader cut, 1 slow link; 2 touched the leader)")
    assert "order-1* | order-2,order-3: all dropped" in lines[2]
    assert "order-1* <-> frontend: loss 20%, +50 ms each way" in lines[3]
    assert lines[1].split()[:7] == ["at", "class", "lasted", "gap", "heal>ok", "in", "sync"]
    # lasted, gap (the trade sent at 1.0 s was acknowledged at 1.02 s), heal>ok, in sync, the answers
    assert lines[2].split()[:16] == ["1.0s", "leader", "cut", "1.0", "s", "0.02", "s", "0.10", "s", "0.50", "s",
                                     "11", "0", "0", "0", "0"]
    assert lines[3].split()[9] == "-"  # the slow link's replicas were never seen in sync
    title = lines.index("failover gap (fault start -> first trade sent after it acknowledged), by class:")
    by_class = [line.split() for line in lines[title + 1:title + 5]]
    assert by_class[0] == ["class", "n", "p50", "p99", "max", "no", "later", "success"]
    assert by_class[1] == ["leader", "cut", "1", "0.02", "s", "0.02", "s", "0.02", "s", "0"]
    assert by_class[2][:3] == ["slow", "link", "1"] and by_class[3][:3] == ["every", "fault", "2"]
    assert not any(line.strip().startswith("isolate") for line in lines)
    assert lines[-1].startswith("longest gap between two acknowledged trades: 0.10 s")
