"""The firewall applier: the operations that make the kernel's sets, chains and jump rules what a plan says,
each atomic and safe to repeat. The egress capability calls them in the plan's order.

- A set is loaded whole into a temporary set and swapped in (``ipset swap``: atomic), or renamed into place the
  first time; counters of members that stay are carried over, so a change does not reset them.
- Our chains are rewritten whole with ``iptables-restore --noflush`` (nobody else's rules are read or written).
- Exactly one jump rule per built-in chain: a missing one is inserted first in its chain, extra copies deleted.
- Every command that changes rules waits for the xtables lock (``-w``, bounded) instead of failing or skipping.
``remove`` takes out the jump rules, our chains and our sets, and nothing else.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from reconciler.errors import ApplyError, CommandError
from reconciler.observers.firewall import FORWARDING, set_counters
from reconciler.planning.firewall import Jump, Ruleset
from reconciler.render.firewall import CHAIN, NAT_CHAIN, SetSpec
from reconciler.system.commands import CommandRunner

TIMEOUT = 30.0
LOCK_WAIT = "10"  # seconds to wait for the xtables lock held by another program
PREFIX = "RECON-"
TEMPORARY = "-new"
# built-in chain -> our chain, per table
JUMPS = (("filter", "FORWARD", CHAIN), ("nat", "POSTROUTING", NAT_CHAIN))
TOOLS = {4: ("iptables", "iptables-restore"), 6: ("ip6tables", "ip6tables-restore")}
CONNTRACK_FAMILY = {4: "ipv4", 6: "ipv6"}
_ORIGINAL_DST = re.compile(r"^\S+\s+\d+\s+.*?\bdst=(\S+)", re.MULTILINE)  # the first dst= of a line


def temporary_name(name: str) -> str:
    return name + TEMPORARY


def jumps(families: Iterable[int]) -> list[Jump]:
    return [Jump(table, family, builtin, chain) for family in sorted(families) for table, builtin, chain in JUMPS]


class FirewallApplier:
    def __init__(self, runner: CommandRunner) -> None:
        self.runner = runner

    def _run(self, argv: Sequence[str], stdin: bytes | None = None) -> bytes:
        try:
            return self.runner.run(argv, timeout=TIMEOUT, stdin=stdin).check().stdout
        except CommandError as exc:
            raise ApplyError(str(exc)) from exc

    def _ok(self, argv: Sequence[str]) -> bool:
        return self.runner.run(argv, timeout=TIMEOUT).returncode == 0

    def _xtables(self, family: int, *argv: str) -> list[str]:
        return [TOOLS[family][0], "-w", LOCK_WAIT, *argv]

    def our_sets(self) -> set[str]:
        names = self._run(["ipset", "list", "-n"]).decode().split()
        return {n for n in names if n.startswith(PREFIX)}

    def edit_set(self, lines: str) -> None:
        """Add and delete members of a live set (``delta_lines``): counters of the others stay as they are."""
        self._run(["ipset", "-exist", "restore"], lines.encode())

    def load_set(self, spec: SetSpec, lines: str, *, exists: bool) -> None:
        """Make set ``spec.name`` what ``lines`` (``set_lines`` under the temporary name: the plan's payload)
        create, in one step; counters of members that stay are carried over."""
        temporary = temporary_name(spec.name)
        if exists and spec.counters:
            counted = {m: c for m, c in set_counters(self.runner, spec.name).items() if c != (0, 0)}
            # -exist: a member added again takes the counters given (ipset updates them in place)
            lines += "".join(f"add {temporary} {m} packets {p} bytes {b}\n" for m, (p, b) in sorted(counted.items()))
        if self._ok(["ipset", "list", "-n", temporary]):  # left over by an apply that was cut short
            self._run(["ipset", "destroy", temporary])
        self._run(["ipset", "-exist", "restore"], lines.encode())
        if exists:
            self._run(["ipset", "swap", temporary, spec.name])
            self._run(["ipset", "destroy", temporary])
        else:
            self._run(["ipset", "rename", temporary, spec.name])

    def destroy_set(self, name: str) -> None:
        if self._ok(["ipset", "list", "-n", name]):
            self._run(["ipset", "destroy", name])

    def restore(self, ruleset: Ruleset) -> None:
        """Rewrite one of our chains whole."""
        self._run([TOOLS[ruleset.family][1], "-w", LOCK_WAIT, "--noflush"], ruleset.text.encode())

    def ensure_jump(self, jump: Jump) -> None:
        """Exactly one jump rule from ``jump.builtin`` to our chain (first in the built-in chain)."""
        check = self._xtables(jump.family, "-t", jump.table, "-C", jump.builtin, "-j", jump.chain)
        if not self._ok(check):
            self._run(self._xtables(jump.family, "-t", jump.table, "-I", jump.builtin, "1", "-j", jump.chain))
            return
        listed = self._run(self._xtables(jump.family, "-t", jump.table, "-S", jump.builtin)).decode().splitlines()
        extra = sum(1 for line in listed if line == f"-A {jump.builtin} -j {jump.chain}") - 1
        for _ in range(extra):  # never the last one: traffic never passes without our chain
            self._run(self._xtables(jump.family, "-t", jump.table, "-D", jump.builtin, "-j", jump.chain))

    def enable_forwarding(self, family: int) -> None:
        self._run(["sysctl", "-w", f"{FORWARDING[family]}=1"])

    def cut(self, family: int, networks: Iterable[str]) -> int:
        """End tracked connections to ``networks``, so that established flows to a removed address stop too.
        The table is listed once and only destinations found in it are deleted: removing 20,000 addresses must not
        cost 20,000 processes. Returns how many destinations were cut."""
        hosts: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
        nets = []
        for text in networks:
            network = ipaddress.ip_network(text)
            if network.prefixlen == network.max_prefixlen:
                hosts.add(network.network_address)
            else:
                nets.append(network)
        listed = self.runner.run(["conntrack", "-L", "-f", CONNTRACK_FAMILY[family]], timeout=TIMEOUT)
        if listed.returncode != 0:
            raise ApplyError(f"conntrack -L exited {listed.returncode}: {listed.stderr.decode(errors='replace')}")
        tracked = {ipaddress.ip_address(m.group(1)) for m in _ORIGINAL_DST.finditer(listed.stdout.decode())}
        doomed = sorted(str(a) for a in tracked if a in hosts or any(a in n for n in nets))
        for address in doomed:
            argv = ["conntrack", "-D", "-f", CONNTRACK_FAMILY[family], "--orig-dst", address]
            result = self.runner.run(argv, timeout=TIMEOUT)
            if result.returncode not in (0, 1):  # 1: ended meanwhile
                raise ApplyError(f"conntrack exited {result.returncode}: {result.stderr.decode(errors='replace')}")
        return len(doomed)

    def made(self, families: Sequence[int] = (4, 6)) -> list[str]:
        """What ``remove`` would take out, as people read it: jump rules, our chains, our sets."""
        found = []
        for family in families:
            for table, builtin, chain in JUMPS:
                if self._ok(self._xtables(family, "-t", table, "-C", builtin, "-j", chain)):
                    found.append(f"IPv{family} {table} jump {builtin} -j {chain}")
                if self._ok(self._xtables(family, "-t", table, "-n", "-L", chain)):
                    found.append(f"IPv{family} {table} chain {chain}")
        return found + [f"set {name}" for name in sorted(self.our_sets())]

    def remove(self, families: Sequence[int] = (4, 6)) -> None:
        """Everything we made, and nothing else."""
        for family in families:
            for table, builtin, chain in JUMPS:
                while self._ok(self._xtables(family, "-t", table, "-C", builtin, "-j", chain)):
                    self._run(self._xtables(family, "-t", table, "-D", builtin, "-j", chain))
                if self._ok(self._xtables(family, "-t", table, "-n", "-L", chain)):
                    self._run(self._xtables(family, "-t", table, "-F", chain))
                    self._run(self._xtables(family, "-t", table, "-X", chain))
        for name in sorted(self.our_sets()):
            self._run(["ipset", "destroy", name])
