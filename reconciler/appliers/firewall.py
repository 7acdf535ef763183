"""The firewall applier: our ipsets and chains made to match rendered payloads, atomically and idempotently.

Order, so that no packet ever meets a rule whose set is missing:
1. each set whose members differ is loaded whole into a temporary set and swapped in (``ipset swap``: atomic;
   the new set's counters start at zero), or renamed into place the first time; an unchanged set is left alone,
   counters and all;
2. our chains are rewritten whole with ``iptables-restore --noflush`` (nobody else's rules are read or written);
3. the one jump rule per built-in chain is put back if it is missing (drift: a hand-deleted rule returns);
4. sets of ours that no rule uses any more are destroyed.
``remove`` takes out the jump rules, our chains and our sets, and nothing else.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler.errors import ApplyError, CommandError
from reconciler.render.firewall import CHAIN, NAT_CHAIN
from reconciler.system.commands import CommandRunner

TIMEOUT = 30.0
PREFIX = "RECON-"
TEMPORARY = "-new"
# built-in chain -> our chain, per table
JUMPS = (("filter", "FORWARD", CHAIN), ("nat", "POSTROUTING", NAT_CHAIN))
TOOLS = {4: ("iptables", "iptables-restore"), 6: ("ip6tables", "ip6tables-restore")}


@dataclass(frozen=True)
class FirewallPayload:
    """What one family should look like: set name -> ``ipset restore`` lines creating it (named with the
    temporary suffix), and the ``iptables-restore`` input of our filter and nat chains."""

    family: int
    sets: Mapping[str, str]
    filter: str
    nat: str


class FirewallApplier:
    def __init__(self, runner: CommandRunner) -> None:
        self.runner = runner

    def _run(self, argv: Sequence[str], stdin: bytes | None = None) -> bytes:
        try:
            # -w: wait for the xtables lock (another program changing rules) instead of failing at once
            return self.runner.run(argv, timeout=TIMEOUT, stdin=stdin).check().stdout
        except CommandError as exc:
            raise ApplyError(str(exc)) from exc

    def _ok(self, argv: Sequence[str]) -> bool:
        return self.runner.run(argv, timeout=TIMEOUT).returncode == 0

    def our_sets(self) -> set[str]:
        names = self._run(["ipset", "list", "-n"]).decode().split()
        return {n for n in names if n.startswith(PREFIX)}

    def apply(self, payloads: Sequence[FirewallPayload]) -> None:
        existing = self.our_sets()
        wanted: set[str] = set()
        for payload in payloads:
            for name, lines in sorted(payload.sets.items()):
                self._load_set(name, lines, existing)
                wanted.add(name)
        for payload in payloads:
            command, restore = TOOLS[payload.family]
            self._run([restore, "-w", "--noflush"], (payload.filter + payload.nat).encode())
            for table, builtin, chain in JUMPS:
                if not self._ok([command, "-w", "-t", table, "-C", builtin, "-j", chain]):
                    self._run([command, "-w", "-t", table, "-I", builtin, "1", "-j", chain])
        for name in sorted(existing - wanted):
            if not name.endswith(TEMPORARY):
                self._run(["ipset", "destroy", name])

    def members(self, name: str) -> set[str]:
        """The members of one of our sets, as networks ('203.0.113.10/32')."""
        return _members(self._run(["ipset", "save", name]).decode(), name)

    def _load_set(self, name: str, lines: str, existing: set[str]) -> None:
        if name in existing and self.members(name) == _members(lines, name + TEMPORARY):
            return  # nothing changed: no swap, so the members' counters are kept
        temporary = name + TEMPORARY
        if temporary in existing:  # left over by an apply that was cut short
            self._run(["ipset", "destroy", temporary])
        self._run(["ipset", "restore"], lines.encode())
        if name in existing:
            self._run(["ipset", "swap", temporary, name])
            self._run(["ipset", "destroy", temporary])
        else:
            self._run(["ipset", "rename", temporary, name])

    def remove(self, families: Sequence[int] = (4, 6)) -> None:
        """Everything we made, and nothing else."""
        for family in families:
            command, _ = TOOLS[family]
            for table, builtin, chain in JUMPS:
                while self._ok([command, "-w", "-t", table, "-C", builtin, "-j", chain]):
                    self._run([command, "-w", "-t", table, "-D", builtin, "-j", chain])
                if self._ok([command, "-w", "-t", table, "-n", "-L", chain]):
                    self._run([command, "-w", "-t", table, "-F", chain])
                    self._run([command, "-w", "-t", table, "-X", chain])
        for name in sorted(self.our_sets()):
            self._run(["ipset", "destroy", name])


def _members(save: str, name: str) -> set[str]:
    """Members of set ``name`` in ``ipset save`` / ``restore`` lines, normalised (a host is its /32 or /128)."""
    found = set()
    for line in save.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0] == "add" and fields[1] == name:
            found.add(str(ipaddress.ip_network(fields[2], strict=False)))
    return found
