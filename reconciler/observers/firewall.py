"""What the kernel holds of ours: sets (entry counts, members when needed, counters), chains, jump rules and
whether it forwards. Reads only, through the command seam (``ipset``, ``iptables -S``, ``sysctl``).

Reading 100,000 members takes ~0.1 s, so members are read again only for a set whose entry count differs from
what the caller already knows: a flushed or hand-edited set changes its count and is read in full.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from reconciler.errors import CommandError, ObserveError
from reconciler.model.observed import ChainFacts, FirewallFacts
from reconciler.system.commands import CommandRunner

TIMEOUT = 30.0
LIST = {4: "iptables", 6: "ip6tables"}
FORWARDING = {4: "net.ipv4.ip_forward", 6: "net.ipv6.conf.all.forwarding"}
Chain = tuple[str, str, str]  # table, built-in chain, our chain


def normalise(member: str) -> str:
    """An ipset member as a network: a host gets its /32 or /128 (ipset prints hosts bare)."""
    if "/" in member:
        return member
    return member + ("/128" if ":" in member else "/32")


def bare(member: str) -> str:
    """A network as ipset prints a member and the old tool labelled it: a host without its /32 or /128."""
    return member.removesuffix("/32").removesuffix("/128")


def _run(runner: CommandRunner, argv: Sequence[str]) -> str:
    try:
        return runner.run(argv, timeout=TIMEOUT).check().stdout.decode(errors="replace")
    except CommandError as exc:
        raise ObserveError(str(exc)) from exc


def set_entries(runner: CommandRunner, prefix: str) -> dict[str, int]:
    """Our sets (names starting with ``prefix``) -> how many entries each holds."""
    entries: dict[str, int] = {}
    name = ""
    for line in _run(runner, ["ipset", "list", "-t"]).splitlines():
        if line.startswith("Name: "):
            name = line.removeprefix("Name: ").strip()
        elif line.startswith("Number of entries: ") and name.startswith(prefix):
            entries[name] = int(line.removeprefix("Number of entries: "))
    return entries


def set_counters(runner: CommandRunner, name: str) -> dict[str, tuple[int, int]]:
    """A set's members -> (packets, bytes); members of a set without counters count (0, 0)."""
    found: dict[str, tuple[int, int]] = {}
    for line in _run(runner, ["ipset", "list", "-o", "save", name]).splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0] != "add" or fields[1] != name:
            continue
        extra = dict(zip(fields[3::2], fields[4::2], strict=False))
        found[normalise(fields[2])] = (int(extra.get("packets", 0)), int(extra.get("bytes", 0)))
    return found


def _listed(runner: CommandRunner, family: int, table: str, chain: str) -> list[str] | None:
    """The rules of one chain as ``iptables -S`` prints them (None: no such chain). Listing one chain costs ~2 ms
    whatever else the table holds; ``iptables-save`` reads every rule of the machine (0.6 s with 100,000)."""
    result = runner.run([LIST[family], "-w", "10", "-t", table, "-S", chain], timeout=TIMEOUT)
    if result.returncode != 0:
        return None
    prefix = f"-A {chain} "
    return [
        line[len(prefix) :] for line in result.stdout.decode(errors="replace").splitlines() if line.startswith(prefix)
    ]


def chains(runner: CommandRunner, family: int, wanted: Sequence[Chain]) -> dict[str, ChainFacts]:
    """'table family' -> our chain in that table: its rules and the jump rules into it."""
    found = {}
    for table, builtin, chain in wanted:
        ours = _listed(runner, family, table, chain)
        into = _listed(runner, family, table, builtin) or []
        jumps = sum(1 for rule in into if rule == f"-j {chain}")
        found[f"{table} {family}"] = ChainFacts(ours is not None, tuple(ours or ()), jumps)
    return found


def forwarding(runner: CommandRunner, family: int) -> bool:
    result = runner.run(["sysctl", "-n", FORWARDING[family]], timeout=TIMEOUT)
    return result.returncode == 0 and result.stdout.strip() == b"1"


def read_firewall(
    runner: CommandRunner,
    *,
    prefix: str,
    wanted: Sequence[Chain],
    known: Mapping[str, frozenset[str]],
    families: Sequence[int] = (4, 6),
) -> FirewallFacts:
    """Everything of ours in the kernel; ``known``: members already known per set (read again if the count
    differs)."""
    entries = set_entries(runner, prefix)
    members = {
        name: known[name] if name in known and len(known[name]) == count else frozenset(set_counters(runner, name))
        for name, count in entries.items()
    }
    found: dict[str, ChainFacts] = {}
    for family in families:
        found.update(chains(runner, family, wanted))
    return FirewallFacts(entries, members, found, {family: forwarding(runner, family) for family in families})
