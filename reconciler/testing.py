"""Recording fakes of the seams in ``reconciler/system`` (clock, files, commands, git, DNS, TCP) and of a
capability, shipped for tests.

They behave like the real thing where tests rely on it (a published status with unchanged content makes no
commit; a fetch can fail; a revision can be unsigned) and record what was asked of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

from reconciler.agent.resource_states import ResourceStates
from reconciler.capabilities.base import AnyCapability, Capability, Observed
from reconciler.errors import FetchError, PublishError
from reconciler.model import DesiredState
from reconciler.model.common import Resource
from reconciler.model.observed import NameFacts, ResolvedAddress
from reconciler.model.source_tree import SourceFile, SourceTree
from reconciler.observers.firewall import bare
from reconciler.planning.plan import TargetPlan
from reconciler.status.state_file import CapabilityState
from reconciler.system.commands import CommandResult
from reconciler.system.http import Fetched
from reconciler.system.resolver import literal


@dataclass
class FakeClock:
    """A clock that moves only when told to."""

    wall: float = 1_800_000_000.0
    mono: float = 1000.0

    def now(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@dataclass
class FakeFileSystem:
    """Files in a dict; every write is recorded (and is atomic by construction)."""

    files: dict[Path, bytes] = field(default_factory=dict)
    writes: list[Path] = field(default_factory=list)

    def read_bytes(self, path: Path) -> bytes | None:
        return self.files.get(path)

    def write_atomic(self, path: Path, content: bytes) -> None:
        self.files[path] = content
        self.writes.append(path)

    def ensure_directory(self, path: Path) -> None:
        return None

    def keep_aside(self, path: Path, stamp: str, keep: int) -> Path | None:
        aside = path.with_name(f"{path.name}.damaged-{stamp}")
        self.files[aside] = self.files.pop(path)
        return aside


@dataclass
class FakeCommandRunner:
    """Answers commands from a table (argv prefix -> result; ``in_turn``: argv prefix -> results given one per
    call, before ``answers``) and records every call. Anything else succeeds with no output."""

    answers: dict[tuple[str, ...], CommandResult] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    in_turn: dict[tuple[str, ...], list[CommandResult]] = field(default_factory=dict)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        stdin: bytes | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        command = tuple(argv)
        self.calls.append(command)
        for prefix, results in self.in_turn.items():
            if command[: len(prefix)] == prefix and results:
                return results.pop(0)
        for prefix, result in self.answers.items():
            if command[: len(prefix)] == prefix:
                return result
        return CommandResult(command, 0, b"", b"")


@dataclass
class FakeSet:
    header: str  # what follows the name on its create line: "hash:net family inet ... counters"
    members: dict[str, tuple[int, int]] = field(default_factory=dict)  # bare member -> packets, bytes


@dataclass
class FakeKernel:
    """A kernel's ipsets, iptables chains, forwarding switches and tracked connections, changed and read through
    the commands the firewall applier and observer run (``ipset``, ``ip[6]tables[-restore]``, ``sysctl``,
    ``conntrack``), as a :class:`~reconciler.system.commands.CommandRunner`. It prints what it was given: how a
    real kernel rewrites rules is tested in a namespace. ``fail``: argv prefixes answered with exit status 1."""

    sets: dict[str, FakeSet] = field(default_factory=dict)
    # (family, table, chain) -> its rules as ``-S`` prints them after ``-A chain ``; built-in chains exist already
    chains: dict[tuple[int, str, str], list[str]] = field(default_factory=dict)
    sysctl: dict[str, str] = field(
        default_factory=lambda: {"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0"}
    )
    connections: dict[int, list[str]] = field(default_factory=lambda: {4: [], 6: []})  # destinations tracked
    fail: list[tuple[str, ...]] = field(default_factory=list)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    BUILTIN = (("filter", "INPUT"), ("filter", "FORWARD"), ("filter", "OUTPUT"), ("nat", "POSTROUTING"))

    def __post_init__(self) -> None:
        for family in (4, 6):
            for table, chain in self.BUILTIN:
                self.chains.setdefault((family, table, chain), [])

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        stdin: bytes | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        command = tuple(argv)
        self.calls.append(command)
        if any(command[: len(prefix)] == prefix for prefix in self.fail):
            return CommandResult(command, 1, b"", b"refused by the test")
        try:
            out = self._do(command, (stdin or b"").decode())
        except LookupError as exc:
            return CommandResult(command, 1, b"", str(exc).encode())
        return CommandResult(command, 0, out.encode(), b"")

    def _do(self, argv: tuple[str, ...], stdin: str) -> str:
        tool, rest = argv[0], list(argv[1:])
        family = 6 if tool.startswith("ip6") or "ipv6" in rest else 4
        if tool == "ipset":
            return self._ipset(rest, stdin)
        if tool.endswith("tables-restore"):
            self._restore(family, stdin)
            return ""
        if tool.endswith("tables"):
            return self._xtables(family, rest)
        if tool == "sysctl":
            return self._sysctl(rest)
        if tool == "conntrack":
            return self._conntrack(family, rest)
        raise LookupError(f"{tool}: not a command this kernel knows")

    def _sysctl(self, rest: list[str]) -> str:
        if rest[0] == "-w":
            key, _, value = rest[1].partition("=")
            self.sysctl[key] = value
            return ""
        return self.sysctl[rest[1]] + "\n"

    def _conntrack(self, family: int, rest: list[str]) -> str:
        if rest[0] == "-L":
            return "".join(
                f"tcp      6 431999 ESTABLISHED src=192.0.2.10 dst={d} sport=40000 dport=443\n"
                for d in self.connections[family]
            )
        address = rest[rest.index("--orig-dst") + 1]
        if address not in self.connections[family]:
            raise LookupError("0 flow entries have been deleted")
        self.connections[family] = [d for d in self.connections[family] if d != address]
        return ""

    def _set(self, name: str) -> FakeSet:
        if name not in self.sets:
            raise LookupError(f"The set with the given name does not exist: {name}")
        return self.sets[name]

    def _ipset(self, rest: list[str], stdin: str) -> str:
        rest = [a for a in rest if a != "-exist"]
        if rest[0] == "restore":
            for line in stdin.splitlines():
                if line.strip():
                    self._ipset(line.split(), "")
            return ""
        if rest[0] == "list":
            return self._ipset_list(rest[1:])
        self._ipset_edit(rest[0], rest[1], rest[2:])
        return ""

    def _ipset_list(self, rest: list[str]) -> str:
        if rest == ["-t"]:
            return "".join(
                f"Name: {n}\nType: {s.header.split()[0]}\nNumber of entries: {len(s.members)}\n"
                for n, s in sorted(self.sets.items())
            )
        if rest == ["-n"]:
            return "".join(f"{n}\n" for n in sorted(self.sets))
        name = rest[-1]
        found = self._set(name)
        if rest[0] == "-n":
            return f"{name}\n"
        counted = "counters" in found.header.split()
        lines = [f"create {name} {found.header}"]
        for member, (packets, size) in sorted(found.members.items()):
            lines.append(f"add {name} {member}" + (f" packets {packets} bytes {size}" if counted else ""))
        return "\n".join(lines) + "\n"

    def _ipset_edit(self, verb: str, name: str, rest: list[str]) -> None:
        if verb == "create":
            self.sets.setdefault(name, FakeSet(" ".join(rest)))
        elif verb == "add":
            extra = dict(zip(rest[1::2], rest[2::2], strict=False))
            self._set(name).members[bare(rest[0])] = (int(extra.get("packets", 0)), int(extra.get("bytes", 0)))
        elif verb == "del":
            self._set(name).members.pop(bare(rest[0]), None)
        elif verb == "flush":
            self._set(name).members.clear()
        elif verb == "destroy":
            self._set(name)
            del self.sets[name]
        elif verb == "swap":
            first, second = self._set(name), self._set(rest[0])
            self.sets[name], self.sets[rest[0]] = second, first
        elif verb == "rename":
            self.sets[rest[0]] = self._set(name)
            del self.sets[name]
        else:
            raise LookupError(f"ipset {verb}: not a command this kernel knows")

    def _restore(self, family: int, text: str) -> None:
        """``--noflush``: a chain declared (``:chain``) is emptied, rules appended; other chains stay."""
        table = ""
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":"):
                self.chains[(family, table, line[1:].split()[0])] = []
            elif line.startswith("-A "):
                chain, _, rule = line[3:].partition(" ")
                self.chains[(family, table, chain)].append(rule)

    def _chain(self, family: int, table: str, chain: str) -> list[str]:
        if (family, table, chain) not in self.chains:
            raise LookupError(f"iptables: No chain/target/match by that name ({chain}).")
        return self.chains[(family, table, chain)]

    def _xtables(self, family: int, rest: list[str]) -> str:
        rest = rest[2:] if rest[:1] == ["-w"] else rest
        table = "filter"
        if rest[:1] == ["-t"]:
            table, rest = rest[1], rest[2:]
        verb, chain, tail = rest[0], rest[1] if len(rest) > 1 else "", rest[2:]
        if verb == "-n":  # -n -L chain: does it exist
            self._chain(family, table, rest[2])
            return ""
        rules = self._chain(family, table, chain)
        if verb == "-S":
            builtin = (table, chain) in self.BUILTIN
            head = f"-P {chain} ACCEPT" if builtin else f"-N {chain}"
            return "".join(f"{line}\n" for line in [head, *(f"-A {chain} {r}" for r in rules)])
        if verb == "-C":
            if " ".join(tail) not in rules:
                raise LookupError("iptables: Bad rule (does a matching rule exist in that chain?).")
        elif verb == "-I":
            rules.insert(int(tail[0]) - 1, " ".join(tail[1:]))
        elif verb == "-D":
            rules.remove(" ".join(tail))
        elif verb == "-F":
            rules.clear()
        elif verb == "-X":
            del self.chains[(family, table, chain)]
        else:
            raise LookupError(f"iptables {verb}: not a command this kernel knows")
        return ""

    def rules(self, family: int, table: str, chain: str) -> list[str]:
        return list(self.chains.get((family, table, chain), []))

    def members(self, name: str) -> set[str]:
        return set(self.sets[name].members) if name in self.sets else set()


def tree_of(files: Mapping[str, str], root: str = "repo") -> SourceTree:
    """A SourceTree from {relative path: YAML text}."""
    return SourceTree(
        root, tuple(SourceFile(f"{root}/{path}", path, text.encode()) for path, text in sorted(files.items()))
    )


@dataclass
class FakeGit:
    """An in-memory remote: commits are SourceTrees; the status branch is a dict of files per commit."""

    commits: dict[str, SourceTree] = field(default_factory=dict)
    head: str | None = None
    unsigned: set[str] = field(default_factory=set)
    files: dict[str, str] = field(default_factory=dict)  # revision -> folder of its files (files_at)
    fail_fetch: bool = False
    fail_publish: bool = False
    status: dict[str, bytes] = field(default_factory=dict)
    status_commits: list[str] = field(default_factory=list)
    fetches: int = 0

    def push(self, files: Mapping[str, str], *, signed: bool = True) -> str:
        tree = tree_of(files)
        revision = hashlib.sha1(repr(sorted(files.items())).encode() + str(len(self.commits)).encode()).hexdigest()  # noqa: S324 - a fake commit id
        self.commits[revision] = tree
        if not signed:
            self.unsigned.add(revision)
        self.head = revision
        return revision

    def fetch(self) -> str:
        self.fetches += 1
        if self.fail_fetch or self.head is None:
            raise FetchError("cannot fetch main: remote unreachable")
        return self.head

    def tree_at(self, revision: str, *, max_file_bytes: int) -> SourceTree:
        return self.commits[revision]

    def verify(self, revision: str) -> str | None:
        return f"commit {revision[:12]} is not signed" if revision in self.unsigned else None

    def files_at(self, revision: str) -> str | None:
        return self.files.get(revision)

    def publish(self, files: Mapping[str, bytes], *, prefix: str, message: str) -> str | None:
        if self.fail_publish:
            raise PublishError("push rejected")
        updated = {p: c for p, c in self.status.items() if not p.startswith(prefix)} | dict(files)
        if updated == self.status:
            return None
        self.status = updated
        commit = hashlib.sha1(repr(sorted(updated.items())).encode()).hexdigest()  # noqa: S324 - a fake commit id
        self.status_commits.append(commit)
        return commit


@dataclass
class FakeResolver:
    """Answers from a table (name -> addresses, with a TTL); unknown names are NXDOMAIN. Records every question."""

    answers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ttl: int = 60
    delay: float = 0.0
    questions: list[str] = field(default_factory=list)

    async def resolve(self, name: str) -> NameFacts:
        self.questions.append(name)
        address = literal(name)
        if address is not None:
            return NameFacts(name, (ResolvedAddress(address, 0),))
        if self.delay:
            await asyncio.sleep(self.delay)
        found = self.answers.get(name)
        if found is None:
            return NameFacts(name, error=f"{name}: no such name (NXDOMAIN)")
        return NameFacts(name, tuple(ResolvedAddress(ip, self.ttl) for ip in map(literal, found) if ip is not None))


@dataclass
class FakeConnector:
    """TCP exchanges answered from a table ((host, port) -> answer bytes, or an OSError to raise)."""

    answers: dict[tuple[str, int], bytes | OSError] = field(default_factory=dict)
    calls: list[tuple[str, int]] = field(default_factory=list)

    async def exchange(self, host: str, port: int, *, send: bytes | None, expect: int, timeout: float) -> bytes:
        self.calls.append((host, port))
        answer = self.answers.get((host, port), ConnectionRefusedError(111, "Connection refused"))
        if isinstance(answer, OSError):
            raise answer
        return answer[:expect]


@dataclass
class RecordedState:
    """What RecordingCapability keeps per resource: how many times it was observed, over restarts."""

    observations: int = 0


@dataclass(eq=False)
class RecordingCapability(Capability[Resource, None, Any, RecordedState]):
    """A capability whose observations, plans and failures a test sets, and which records what it applied.

    ``observe_delay`` makes the observation of a named resource take that long (a slow or hanging observer)."""

    resource_type = Resource
    state_type = RecordedState

    kind: str
    targets: dict[str, list[TargetPlan[Any]]] = field(default_factory=dict)
    failing_observe: dict[str, BaseException] = field(default_factory=dict)
    failing_apply: dict[str, BaseException] = field(default_factory=dict)
    observe_delay: dict[str, float] = field(default_factory=dict)
    degraded: dict[str, tuple[str, str]] = field(default_factory=dict)
    interval: timedelta | None = None
    applied: list[tuple[str, TargetPlan[Any]]] = field(default_factory=list)
    observed: list[str] = field(default_factory=list)
    forgotten: list[tuple[str, str]] = field(default_factory=list)
    counted: list[tuple[str, int]] = field(default_factory=list)  # (name, its state's observations) at observe
    used: list[DesiredState] = field(default_factory=list)

    def use(self, desired: DesiredState) -> None:
        self.used.append(desired)

    def observe_interval(self, resource: Resource) -> timedelta | None:
        return self.interval

    async def observe(self, resource: Resource, state: RecordedState) -> Observed[None]:
        name = resource.metadata.name
        self.observed.append(name)
        state.observations += 1
        self.counted.append((name, state.observations))
        if name in self.observe_delay:
            await asyncio.sleep(self.observe_delay[name])
        if name in self.failing_observe:
            raise self.failing_observe[name]
        return Observed(None, {"observedBy": "RecordingCapability"}, degraded=self.degraded.get(name))

    def plan(self, resource: Resource, facts: None, state: RecordedState, *, now: float) -> Sequence[TargetPlan[Any]]:
        return list(self.targets.get(resource.metadata.name, []))

    async def apply(self, resource: Resource, target: TargetPlan[Any], state: RecordedState) -> None:
        """Fails as ``failing_apply`` says: by resource name, or by ``"<name> <target>"`` for one target."""
        name = resource.metadata.name
        failure = self.failing_apply.get(name) or self.failing_apply.get(f"{name} {target.target}")
        if failure is not None:
            raise failure
        self.applied.append((resource.metadata.name, target))

    async def forget(self, name: str, state: RecordedState | None) -> None:
        self.forgotten.append((self.kind, name))


@dataclass
class FakeFetcher:
    """Edges that all serve ``body``, each fetch taking a different time between ``fastest`` and ``slowest``
    seconds (as real edges do), from a seeded random source."""

    body: bytes = b"object"
    fastest: float = 0.02
    slowest: float = 0.3
    seed: int = 7
    fetches: int = 0

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    async def fetch(self, url: str, address: str, *, host: str, timeout: float, verify: bool) -> Fetched:
        self.fetches += 1
        seconds = self.random.uniform(self.fastest, self.slowest)
        md5 = hashlib.md5(self.body).hexdigest()  # noqa: S324 - the object's md5, as edgemanage checks it
        return Fetched(200, hashlib.sha256(self.body).hexdigest(), md5, seconds / 2, seconds)


@dataclass
class FakeRouteTable:
    """Our routes in memory (prefix -> next hop), with the calls made to change them."""

    routes: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def ours(self) -> dict[str, str]:
        return dict(self.routes)

    async def replace(self, prefix: str, via: str) -> None:
        self.calls.append(("replace", prefix))
        self.routes[prefix] = via

    async def delete(self, prefix: str) -> None:
        self.calls.append(("delete", prefix))
        self.routes.pop(prefix, None)


C = TypeVar("C", bound=AnyCapability)


class Driven(Generic[C]):
    """A capability driven as the agent drives it, through the framework's per-resource states (``states``):
    for tests that call observe, plan and apply themselves."""

    def __init__(self, capability: C, kind: str | None = None) -> None:
        self.capability = capability
        self.kind = kind or capability.resource_type.KIND
        self.states = ResourceStates({self.kind: capability})

    def state(self, name: str) -> Any:
        return self.states.of(self.kind, name)

    async def observe(self, resource: Resource) -> Observed[Any]:
        return await self.capability.observe(resource, self.state(resource.metadata.name))

    def plan(self, resource: Resource, facts: Any, *, now: float) -> Sequence[TargetPlan[Any]]:
        return self.capability.plan(resource, facts, self.state(resource.metadata.name), now=now)

    async def apply(self, resource: Resource, target: TargetPlan[Any]) -> None:
        await self.capability.apply(resource, target, self.state(resource.metadata.name))

    async def forget(self, name: str) -> None:
        await self.capability.forget(name, self.states.by_kind[self.kind].get(name))
        self.states.drop(self.kind, name)

    async def cycle(self, resource: Resource, *, now: float) -> list[TargetPlan[Any]]:
        """One pass: observe, plan, apply every target with changes; the targets planned."""
        observed = await self.observe(resource)
        targets = list(self.plan(resource, observed.facts, now=now))
        for target in targets:
            if target.changes:
                await self.apply(resource, target)
        return targets

    def saved(self) -> CapabilityState | None:
        """This kind's part of the state file, as the agent writes it (None: the kind keeps no state)."""
        return self.states.encode().get(self.kind)

    def restore(self, part: CapabilityState) -> None:
        self.states.restore({self.kind: part})
