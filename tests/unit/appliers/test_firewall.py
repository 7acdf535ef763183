"""The firewall applier through FakeCommandRunner (no root): the commands it runs, in order, for each operation;
their effect on a real kernel is tested in a namespace (tests/integration/test_egress_gateway_kernel.py)."""

from __future__ import annotations

import pytest

from reconciler.appliers.firewall import FirewallApplier
from reconciler.errors import ApplyError
from reconciler.planning.firewall import Jump
from reconciler.render.firewall import SetSpec
from reconciler.system.commands import CommandResult
from reconciler.testing import FakeCommandRunner


def _result(argv: tuple[str, ...], code: int = 0, out: bytes = b"", err: bytes = b"") -> CommandResult:
    return CommandResult(argv, code, out, err)


def _failing(*argv: str) -> tuple[tuple[str, ...], CommandResult]:
    return argv, _result(argv, 1)


SPEC = SetSpec("RECON-a-4", 4, frozenset({"203.0.113.10/32"}), True, "counting out ipv4")


def test_a_first_load_renames_the_temporary_set_into_place() -> None:
    runner = FakeCommandRunner(dict([_failing("ipset", "list", "-n", "RECON-a-4-new")]))
    FirewallApplier(runner).load_set(SPEC, "create RECON-a-4-new hash:net\n", exists=False)
    assert runner.calls == [
        ("ipset", "list", "-n", "RECON-a-4-new"),
        ("ipset", "-exist", "restore"),
        ("ipset", "rename", "RECON-a-4-new", "RECON-a-4"),
    ]


def test_a_reload_carries_counters_over_and_swaps_after_removing_a_leftover() -> None:
    saved = b"create RECON-a-4 hash:net counters\nadd RECON-a-4 203.0.113.10 packets 7 bytes 700\n"
    runner = FakeCommandRunner({("ipset", "list", "-o", "save", "RECON-a-4"): _result((), out=saved)})
    FirewallApplier(runner).load_set(SPEC, "create RECON-a-4-new hash:net counters\n", exists=True)
    assert runner.calls == [
        ("ipset", "list", "-o", "save", "RECON-a-4"),
        ("ipset", "list", "-n", "RECON-a-4-new"),  # answers 0: left over by an apply cut short
        ("ipset", "destroy", "RECON-a-4-new"),
        ("ipset", "-exist", "restore"),
        ("ipset", "swap", "RECON-a-4-new", "RECON-a-4"),
        ("ipset", "destroy", "RECON-a-4-new"),
    ]


def test_a_missing_jump_is_inserted_first_and_extra_copies_go() -> None:
    jump = Jump("filter", 4, "FORWARD", "RECON-EGRESS")
    missing = FakeCommandRunner(dict([_failing("iptables", "-w", "10", "-t", "filter", "-C", "FORWARD")]))
    FirewallApplier(missing).ensure_jump(jump)
    assert missing.calls[-1] == ("iptables", "-w", "10", "-t", "filter", "-I", "FORWARD", "1", "-j", "RECON-EGRESS")

    listed = b"-P FORWARD ACCEPT\n-A FORWARD -j RECON-EGRESS\n-A FORWARD -j RECON-EGRESS\n-A FORWARD -j RECON-EGRESS\n"
    doubled = FakeCommandRunner({("iptables", "-w", "10", "-t", "filter", "-S", "FORWARD"): _result((), out=listed)})
    FirewallApplier(doubled).ensure_jump(jump)
    deletes = [c for c in doubled.calls if "-D" in c]
    assert deletes == [("iptables", "-w", "10", "-t", "filter", "-D", "FORWARD", "-j", "RECON-EGRESS")] * 2


def test_removal_takes_our_jumps_chains_and_sets_only_and_lists_them_first() -> None:
    check = ("iptables", "-w", "10", "-t", "filter", "-C", "FORWARD", "-j", "RECON-EGRESS")
    runner = FakeCommandRunner(
        {
            ("iptables", "-w", "10", "-t", "nat", "-C"): _result((), 1),  # no NAT jump left, its chain is there
            ("ipset", "list", "-n"): _result((), out=b"RECON-a-4\nunrelated\nRECON-b-4\n"),
        },
        in_turn={check: [_result(check), _result(check), _result(check, 1)]},  # made; remove: there, then gone
    )
    applier = FirewallApplier(runner)
    made = applier.made(families=(4,))
    assert made == [
        "IPv4 filter jump FORWARD -j RECON-EGRESS",
        "IPv4 filter chain RECON-EGRESS",
        "IPv4 nat chain RECON-EGRESS-NAT",
        "set RECON-a-4",
        "set RECON-b-4",
    ]
    runner.calls.clear()
    applier.remove(families=(4,))
    changed = [c for c in runner.calls if any(flag in c for flag in ("-D", "-F", "-X", "destroy"))]
    assert changed == [
        ("iptables", "-w", "10", "-t", "filter", "-D", "FORWARD", "-j", "RECON-EGRESS"),
        ("iptables", "-w", "10", "-t", "filter", "-F", "RECON-EGRESS"),
        ("iptables", "-w", "10", "-t", "filter", "-X", "RECON-EGRESS"),
        ("iptables", "-w", "10", "-t", "nat", "-F", "RECON-EGRESS-NAT"),
        ("iptables", "-w", "10", "-t", "nat", "-X", "RECON-EGRESS-NAT"),
        ("ipset", "destroy", "RECON-a-4"),  # not 'unrelated'
        ("ipset", "destroy", "RECON-b-4"),
    ]


def test_a_cut_lists_the_table_once_and_deletes_only_what_it_holds() -> None:
    table = (
        b"tcp      6 431999 ESTABLISHED src=10.88.0.2 dst=203.0.113.20 sport=4000 dport=80 src=203.0.113.20 "
        b"dst=10.88.0.2 sport=80 dport=4000 [ASSURED] mark=0 use=1\n"
        b"tcp      6 431999 ESTABLISHED src=10.88.0.2 dst=203.0.113.10 sport=4001 dport=80 src=203.0.113.10 "
        b"dst=10.88.0.2 sport=80 dport=4001 [ASSURED] mark=0 use=1\n"
        b"udp      17 29 src=10.88.0.2 dst=198.51.100.9 sport=5000 dport=53 [UNREPLIED] src=198.51.100.9 "
        b"dst=10.88.0.2 sport=53 dport=5000 mark=0 use=1\n"
    )
    runner = FakeCommandRunner({("conntrack", "-L"): _result((), out=table)})
    cut = FirewallApplier(runner).cut(4, ["203.0.113.20/32", "198.51.100.0/24", "192.0.2.1/32"])
    assert cut == 2
    assert [c for c in runner.calls if "-D" in c] == [
        ("conntrack", "-D", "-f", "ipv4", "--orig-dst", "198.51.100.9"),
        ("conntrack", "-D", "-f", "ipv4", "--orig-dst", "203.0.113.20"),
    ]


def test_a_command_that_fails_is_an_apply_error_with_its_words() -> None:
    argv = ("ipset", "-exist", "restore")
    runner = FakeCommandRunner({argv: _result(argv, 1, err=b"ipset v7.17: Syntax error: line 1")})
    with pytest.raises(ApplyError, match="Syntax error"):
        FirewallApplier(runner).edit_set("add RECON-a-4 nonsense\n")
