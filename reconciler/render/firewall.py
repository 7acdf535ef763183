"""Firewall payloads (pure) from an egress plan: what ``ipset restore`` and ``iptables-restore --noflush`` read.

Everything we create is named ``RECON-...``: sets ``RECON-<id>-<family>`` (31 characters at most, the ipset
limit) and one chain per table, so that applying never touches anything else and removal knows what is ours.

The filter chain, jumped to from FORWARD by one rule the applier keeps in place:
1. established and related traffic is accepted (replies, and what was allowed when it started);
2. from each client network, each port class's set is accepted (a rule per client and class);
3. everything else from the clients meets ``defaultAction``: DROP, REJECT, or in audit mode (``log``) a LOG rule
   and nothing dropped;
4. traffic from elsewhere returns to FORWARD untouched.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Sequence

from reconciler.model.egress_gateway import EgressGateway
from reconciler.planning.egress import EgressPlan, Member, SetKey

CHAIN = "RECON-EGRESS"
NAT_CHAIN = "RECON-EGRESS-NAT"
LOG_PREFIX = "RECON-EGRESS-DENY "
MAX_SET_NAME = 31
FAMILIES = {4: "inet", 6: "inet6"}


def set_name(gateway: str, key: SetKey) -> str:
    """A stable, short name per gateway, family and port class."""
    digest = hashlib.sha256(f"{gateway}|{key.port_class}".encode()).hexdigest()[:12]
    name = f"RECON-{digest}-{key.family}"
    assert len(name) <= MAX_SET_NAME
    return name


def render_sets(gateway: str, plan: EgressPlan, family: int, *, suffix: str = "-new") -> dict[str, str]:
    """Per set of ``family``: its name and the ``ipset restore`` lines that create it under ``name + suffix``
    (the applier swaps it in)."""
    return {
        set_name(gateway, key): "\n".join(_set_lines(set_name(gateway, key) + suffix, family, members)) + "\n"
        for key, members in sorted(plan.sets.items())
        if key.family == family
    }


def _set_lines(name: str, family: int, members: Sequence[Member]) -> list[str]:
    create = f"create {name} hash:net family {FAMILIES[family]} counters maxelem {max(65536, 2 * len(members))}"
    return [create, *(f"add {name} {member.network}" for member in members)]


def render_ipset(gateway: str, plan: EgressPlan, family: int, *, suffix: str = "") -> str:
    """``ipset restore`` input that creates each set of ``family`` (named with ``suffix``, for a swap) with
    counters and its members. ``-exist`` keeps a re-run from failing on a set that is there already."""
    lines = []
    for key, members in sorted(plan.sets.items()):
        if key.family != family:
            continue
        name = set_name(gateway, key) + suffix
        lines.append(
            f"create {name} hash:net family {FAMILIES[family]} counters maxelem {max(65536, 2 * len(members))}"
        )
        lines += [f"add {name} {member.network}" for member in members]
    return "\n".join(lines) + ("\n" if lines else "")


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


def render_filter(gateway: EgressGateway, plan: EgressPlan, family: int) -> str:
    """``iptables-restore --noflush`` (or ``ip6tables-restore``) input that rewrites our filter chain whole."""
    name = gateway.metadata.name
    rules = [f"-A {CHAIN} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"]
    keys = [key for key in sorted(plan.sets) if key.family == family]
    clients = _clients(gateway, family)
    for client in clients:
        for key in keys:
            match = " ".join(_ports(key))
            rules.append(
                f"-A {CHAIN} -s {client}{' ' + match if match else ''} -m set --match-set {set_name(name, key)} dst "
                "-j ACCEPT"
            )
    for client in clients:
        rules += _refusal(client, gateway.spec.defaultAction, family)
    return _table("filter", CHAIN, rules)


def _refusal(client: str, action: str, family: int) -> list[str]:
    log = f'-A {CHAIN} -s {client} -j LOG --log-prefix "{LOG_PREFIX}"'
    if action == "log":
        return [log]  # audit mode: say what would be refused, refuse nothing
    if action == "reject":
        unreachable = "icmp-admin-prohibited" if family == 4 else "icmp6-adm-prohibited"
        return [f"-A {CHAIN} -s {client} -j REJECT --reject-with {unreachable}"]
    return [f"-A {CHAIN} -s {client} -j DROP"]


def render_nat(gateway: EgressGateway, plan: EgressPlan, family: int) -> str:
    """Masquerade what the allow-lists allow (when the gateway says so); an empty chain otherwise."""
    rules = []
    if gateway.spec.masquerade:
        names = [set_name(gateway.metadata.name, key) for key in sorted(plan.sets) if key.family == family]
        for client in _clients(gateway, family):
            rules += [f"-A {NAT_CHAIN} -s {client} -m set --match-set {name} dst -j MASQUERADE" for name in names]
    return _table("nat", NAT_CHAIN, rules)


def _table(table: str, chain: str, rules: Iterable[str]) -> str:
    return "\n".join([f"*{table}", f":{chain} - [0:0]", *rules, "COMMIT"]) + "\n"
