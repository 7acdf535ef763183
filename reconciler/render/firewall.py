"""Firewall payloads (pure) from an egress plan: what ``ipset restore`` and ``iptables-restore --noflush`` read.

Everything we create is named ``RECON-...``: sets ``RECON-<id>-<family>`` (31 characters at most, the ipset
limit) and one chain per table, so that applying never touches anything else and removal knows what is ours.

Sets, per address family:
- one per port class (``tcp 443``, ``any``...): what the accept rules match, without counters;
- two counting sets holding every allowed destination of the family, with counters: ``out`` counts what clients
  send to a destination, ``in`` what comes back (the per-destination metrics read them).

The filter chain, jumped to from FORWARD by one rule the applier keeps in place:
0. a comment carrying the digest of the rules below (how an observer recognises our chain as rendered);
1. counting of tracked traffic: client to destination and back (a match without a target: the packet goes on);
2. established and related traffic is accepted (replies, and what was allowed when it started);
3. from each client network, each port class's set is accepted (a rule per client and class), and counted there:
   a packet refused below (a port the entry does not allow, say) is never counted under a destination;
4. everything else from the clients meets ``defaultAction``: DROP, REJECT, or in audit mode (``log``) a LOG rule
   and nothing dropped;
5. traffic from elsewhere returns to FORWARD untouched.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reconciler.model.egress_gateway import EgressGateway
from reconciler.planning.egress import EgressPlan, SetKey
from reconciler.planning.firewall import Ruleset

CHAIN = "RECON-EGRESS"
NAT_CHAIN = "RECON-EGRESS-NAT"
LOG_PREFIX = "RECON-EGRESS-DENY "
DIGEST_COMMENT = "reconciler "
MAX_SET_NAME = 31
FAMILIES = {4: "inet", 6: "inet6"}
COUNT_OUT = "out"
COUNT_IN = "in"


def _name(gateway: str, what: str, family: int) -> str:
    digest = hashlib.sha256(f"{gateway}|{what}".encode()).hexdigest()[:12]
    name = f"RECON-{digest}-{family}"
    assert len(name) <= MAX_SET_NAME
    return name


def set_name(gateway: str, key: SetKey) -> str:
    """A stable, short name per gateway, family and port class."""
    return _name(gateway, str(key.port_class), key.family)


def counting_set_name(gateway: str, family: int, direction: str) -> str:
    return _name(gateway, f"count {direction}", family)


@dataclass(frozen=True, slots=True)
class SetSpec:
    """One set as it should be: its members as normalised networks ('203.0.113.7/32')."""

    name: str
    family: int
    members: frozenset[str]
    counters: bool
    label: str  # what people read: 'tcp 443 ipv4', 'counting out ipv4'


def desired_sets(gateway: str, plan: EgressPlan) -> dict[str, SetSpec]:
    """Every set the plan needs, by name: the port-class sets, and per family with any member the two counting
    sets."""
    sets: dict[str, SetSpec] = {}
    union: dict[int, set[str]] = {}
    for key, members in sorted(plan.sets.items()):
        networks = frozenset(members)
        label = f"{key.port_class} ipv{key.family}"
        sets[set_name(gateway, key)] = SetSpec(set_name(gateway, key), key.family, networks, False, label)
        union.setdefault(key.family, set()).update(networks)
    for family, found in sorted(union.items()):
        networks = frozenset(found)
        for direction in (COUNT_OUT, COUNT_IN):
            name = counting_set_name(gateway, family, direction)
            sets[name] = SetSpec(name, family, networks, True, f"counting {direction} ipv{family}")
    return sets


def set_lines(
    spec: SetSpec,
    members: Iterable[str],
    *,
    name: str | None = None,
    counters: Mapping[str, tuple[int, int]] | None = None,
) -> str:
    """``ipset restore`` lines creating ``spec`` as ``name`` (default its own) with ``members``; a member found in
    ``counters`` (network -> packets, bytes) starts from those counts, so a swap does not reset them."""
    name = name or spec.name
    ordered = list(members)  # in the caller's order (plans pass them sorted as text)
    size = max(65536, 2 * len(ordered))
    # sized for its members up front: a set that grows from the default 1024 buckets rehashes on the way
    buckets = max(1024, 1 << (len(ordered) - 1).bit_length())
    extension = " counters" if spec.counters else ""
    header = f"hash:net family {FAMILIES[spec.family]} hashsize {buckets}{extension} maxelem {size}"
    lines = [f"create {name} {header}"]
    known = counters or {}
    for member in ordered:
        counted = known.get(member) if spec.counters else None
        lines.append(f"add {name} {member}" + (f" packets {counted[0]} bytes {counted[1]}" if counted else ""))
    return "\n".join(lines) + "\n"


def render_ipset(gateway: str, plan: EgressPlan, family: int) -> str:
    """``ipset restore`` input that creates every set of ``family`` with its members, under their own names: the
    whole family at once, as the golden-file and kernel-loading tests read it (the applier loads each changed set
    on its own, under a temporary name, from the target plan's payload)."""
    return "".join(
        set_lines(spec, sorted(spec.members)) for spec in desired_sets(gateway, plan).values() if spec.family == family
    )


def _ports(key: SetKey) -> list[str]:
    port_class = key.port_class
    if port_class.protocol == "any":
        return []
    match = ["-p", port_class.protocol]
    if port_class.ports:
        match += ["-m", "multiport", "--dports", ",".join(p.replace("-", ":") for p in port_class.ports)]
    return match


def _clients(gateway: EgressGateway, family: int) -> list[str]:
    return [str(c) for c in gateway.spec.clients if ipaddress.ip_network(str(c)).version == family]


def render_filter(gateway: EgressGateway, plan: EgressPlan, family: int) -> Ruleset:
    """``iptables-restore --noflush`` (or ``ip6tables-restore``) input that rewrites our filter chain whole."""
    name = gateway.metadata.name
    keys = [key for key in sorted(plan.sets) if key.family == family]
    clients = _clients(gateway, family)
    rules = []
    out, back = counting_set_name(name, family, COUNT_OUT), counting_set_name(name, family, COUNT_IN)
    tracked = "-m conntrack --ctstate ESTABLISHED,RELATED"
    if keys:
        for client in clients:
            rules.append(f"-A {CHAIN} -s {client} {tracked} -m set --match-set {out} dst")
            rules.append(f"-A {CHAIN} -d {client} {tracked} -m set --match-set {back} src")
    rules.append(f"-A {CHAIN} {tracked} -j ACCEPT")
    for client in clients:
        for key in keys:
            match = " ".join(_ports(key))
            # the counting match comes last: a set's counters move only when every match before it held, so a
            # new connection is counted when it is accepted, and a refused packet never is
            rules.append(
                f"-A {CHAIN} -s {client}{' ' + match if match else ''} -m set --match-set {set_name(name, key)} dst "
                f"-m set --match-set {out} dst -j ACCEPT"
            )
    for client in clients:
        rules += _refusal(client, gateway.spec.defaultAction, family)
    return _table("filter", CHAIN, family, rules)


def _refusal(client: str, action: str, family: int) -> list[str]:
    log = f'-A {CHAIN} -s {client} -j LOG --log-prefix "{LOG_PREFIX}"'
    if action == "log":
        return [log]  # audit mode: say what would be refused, refuse nothing
    if action == "reject":
        unreachable = "icmp-admin-prohibited" if family == 4 else "icmp6-adm-prohibited"
        return [f"-A {CHAIN} -s {client} -j REJECT --reject-with {unreachable}"]
    return [f"-A {CHAIN} -s {client} -j DROP"]


def render_nat(gateway: EgressGateway, plan: EgressPlan, family: int) -> Ruleset:
    """Masquerade what the allow-lists allow (when the gateway says so); an empty chain otherwise."""
    rules = []
    if gateway.spec.masquerade:
        names = [set_name(gateway.metadata.name, key) for key in sorted(plan.sets) if key.family == family]
        for client in _clients(gateway, family):
            rules += [f"-A {NAT_CHAIN} -s {client} -m set --match-set {name} dst -j MASQUERADE" for name in names]
    return _table("nat", NAT_CHAIN, family, rules)


def _table(table: str, chain: str, family: int, rules: list[str]) -> Ruleset:
    digest = hashlib.sha256("\n".join(rules).encode()).hexdigest()[:16]
    marked = [f'-A {chain} -m comment --comment "{DIGEST_COMMENT}{digest}"', *rules]
    text = "\n".join([f"*{table}", f":{chain} - [0:0]", *marked, "COMMIT"]) + "\n"
    return Ruleset(table, family, chain, text, digest, len(marked))
