"""Checks that need more than one document: references, port claims, internal ranges, duplicates, files.

Each check takes the valid resources (with the document each came from) and returns located problems.
"""

from __future__ import annotations

import difflib
import ipaddress
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from reconciler.errors import Problem, Severity
from reconciler.loading.locator import DocRef, Locator, PathElement
from reconciler.model import (
    EdgeNetwork,
    EgressAllowList,
    EgressGateway,
    EgressRoute,
    HealthStrategy,
    IPPool,
    TCPProxy,
)
from reconciler.model.common import Resource
from reconciler.model.egress_allow_list import AllowEntry
from reconciler.model.egress_gateway import ALL_LISTS
from reconciler.model.internal_ranges import AddressRanges
from reconciler.model.values import ListenAddress


@dataclass(frozen=True, slots=True)
class Placed:
    """A valid resource and the document it came from."""

    resource: Resource
    ref: DocRef


@dataclass(frozen=True, slots=True)
class PartialList:
    """An allow-list document with errors elsewhere: its entries that are valid on their own (by index), so that
    their internal-range errors are reported in the same run as the other errors."""

    name: str
    ref: DocRef
    entries: tuple[tuple[int, AllowEntry], ...]


Report = Callable[[DocRef, Sequence[PathElement], str], Problem]


@dataclass(frozen=True, slots=True)
class Declared:
    """A document with errors: the kind and name it declares, and the names it refers to as written (path,
    kind referred to, name), so that references are checked in the same run as the document's own errors."""

    kind: str
    name: str
    ref: DocRef
    references: tuple[tuple[tuple[PathElement, ...], str, str], ...] = ()


def declared_of(data: object, ref: DocRef) -> Declared | None:
    """What a document that failed validation declares and refers to, as far as it can be read."""
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return None
    metadata, spec = data.get("metadata"), data.get("spec")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str):
        return None
    references: list[tuple[tuple[PathElement, ...], str, str]] = []
    if isinstance(spec, dict) and data["kind"] == IPPool.KIND and isinstance(spec.get("strategy"), str):
        references.append((("spec", "strategy"), HealthStrategy.KIND, spec["strategy"]))
    if isinstance(spec, dict) and data["kind"] == EgressGateway.KIND and isinstance(spec.get("allowLists"), list):
        references += [
            (("spec", "allowLists", index), EgressAllowList.KIND, listed)
            for index, listed in enumerate(spec["allowLists"])
            if isinstance(listed, str) and listed != ALL_LISTS
        ]
    return Declared(data["kind"], name, ref, tuple(references))


def _of_kind(placed: Sequence[Placed], kind: type[Resource]) -> list[Placed]:
    return [p for p in placed if isinstance(p.resource, kind)]


def _names(placed: Sequence[Placed], kind: type[Resource]) -> list[str]:
    return [p.resource.metadata.name for p in _of_kind(placed, kind)]


def _missing(name: str, kind: type[Resource], known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f": did you mean '{close[0]}'?" if close else f" (defined: {', '.join(known) or 'none'})"
    return f"no {kind.KIND} named '{name}'{hint}"


def check_references(
    placed: Sequence[Placed], locator: Locator, declared: Sequence[Declared] = ()
) -> Iterator[Problem]:
    """IPPool.strategy names a HealthStrategy; EgressGateway.allowLists name EgressAllowLists. Documents with
    errors (``declared``) count as defined (their own errors are reported), and their references are checked."""
    strategies = _names(placed, HealthStrategy)
    lists = _names(placed, EgressAllowList)
    known = {HealthStrategy.KIND: strategies, EgressAllowList.KIND: lists}
    defined = {(d.kind, d.name) for d in declared}
    kinds: dict[str, type[Resource]] = {HealthStrategy.KIND: HealthStrategy, EgressAllowList.KIND: EgressAllowList}
    for item in _of_kind(placed, IPPool):
        assert isinstance(item.resource, IPPool)
        strategy = item.resource.spec.strategy
        if strategy not in strategies and (HealthStrategy.KIND, strategy) not in defined:
            yield locator.problem(item.ref, ("spec", "strategy"), _missing(strategy, HealthStrategy, strategies))
    for item in _of_kind(placed, EgressGateway):
        assert isinstance(item.resource, EgressGateway)
        for index, name in enumerate(item.resource.spec.allowLists):
            if name != ALL_LISTS and name not in lists and (EgressAllowList.KIND, name) not in defined:
                yield locator.problem(item.ref, ("spec", "allowLists", index), _missing(name, EgressAllowList, lists))
    for document in declared:
        for path, kind, name in document.references:
            if name not in known[kind] and (kind, name) not in defined:
                yield locator.problem(document.ref, path, _missing(name, kinds[kind], known[kind]))


@dataclass(frozen=True, slots=True)
class _Listener:
    address: ListenAddress
    item: Placed
    path: tuple[PathElement, ...]
    owner: str


def _listeners(placed: Sequence[Placed]) -> Iterator[_Listener]:
    for item in placed:
        resource = item.resource
        if isinstance(resource, TCPProxy):
            for a, app in enumerate(resource.spec.apps):
                for i, address in enumerate(app.listen):
                    owner = f"TCPProxy/{resource.metadata.name} app {app.name}"
                    yield _Listener(address, item, ("spec", "apps", a, "listen", i), owner)
        elif isinstance(resource, IPPool) and resource.spec.proxy is not None:
            owner = f"IPPool/{resource.metadata.name}"
            yield _Listener(resource.spec.proxy.listen, item, ("spec", "proxy", "listen"), owner)


def check_ports(placed: Sequence[Placed], locator: Locator) -> Iterator[Problem]:
    """A listening port is claimed by one listener per node (TCPProxy apps and IPPool proxies)."""
    claimed: list[_Listener] = []
    for listener in _listeners(placed):
        for earlier in claimed:
            if not listener.address.conflicts_with(earlier.address):
                continue
            if earlier.item is not listener.item and not listener.item.resource.spec.shares_nodes_with(
                earlier.item.resource.spec
            ):
                continue
            where = locator.position(earlier.item.ref, earlier.path)
            yield locator.problem(
                listener.item.ref,
                listener.path,
                f"{listener.address} overlaps {earlier.address}, already claimed by {earlier.owner} "
                f"({earlier.item.ref.file}:{where[0]}): a port belongs to one listener per node",
            )
            break
        else:
            claimed.append(listener)


def _gateway_ranges(placed: Sequence[Placed], default: AddressRanges) -> Mapping[str, list[tuple[str, AddressRanges]]]:
    """For each allow-list name, the internal ranges of every gateway that enforces it."""
    lists = _names(placed, EgressAllowList)
    ranges: dict[str, list[tuple[str, AddressRanges]]] = {name: [] for name in lists}
    for item in _of_kind(placed, EgressGateway):
        assert isinstance(item.resource, EgressGateway)
        spec = item.resource.spec
        own = AddressRanges(spec.internalRanges) if spec.internalRanges is not None else default
        selected = lists if ALL_LISTS in spec.allowLists else [n for n in spec.allowLists if n in ranges]
        for name in selected:
            ranges[name].append((f"EgressGateway/{item.resource.metadata.name}", own))
    return ranges


def check_internal_ranges(
    placed: Sequence[Placed], locator: Locator, default: AddressRanges, partial: Sequence[PartialList] = ()
) -> Iterator[Problem]:
    """Allow-list addresses and networks must be public for every gateway that enforces the list.

    A list no gateway uses is checked against the default ranges. ``partial`` lists (documents with other errors)
    are checked too, entry by entry.
    """
    ranges = _gateway_ranges(placed, default)
    lists = [
        (item.resource.metadata.name, item.ref, tuple(enumerate(item.resource.spec.entries)))
        for item in _of_kind(placed, EgressAllowList)
        if isinstance(item.resource, EgressAllowList)
    ]
    lists += [(p.name, p.ref, p.entries) for p in partial]
    for name, ref, entries in lists:
        enforcing = ranges.get(name) or [("", default)]
        for index, entry in entries:
            target = entry.ip if entry.ip is not None else entry.cidr
            if target is None:
                continue
            for gateway, internal in enforcing:
                hit = internal.overlapping(target)
                if hit is None:
                    continue
                field = "ip" if entry.ip is not None else "cidr"
                verb = (
                    "is an internal address"
                    if isinstance(target, ipaddress.IPv4Address | ipaddress.IPv6Address)
                    else "overlaps an internal range"
                )
                for_gateway = f" for {gateway}" if gateway else ""
                yield locator.problem(
                    ref,
                    ("spec", "entries", index, field),
                    f"{target} {verb} ({hit}){for_gateway}: allow-lists reach the public internet only",
                )
                break


def _entry_lists(
    placed: Sequence[Placed], partial: Sequence[PartialList]
) -> Iterator[tuple[DocRef, Sequence[tuple[int, AllowEntry]]]]:
    """Every allow-list's entries by index: the valid lists', and the valid entries of lists with other errors."""
    for item in _of_kind(placed, EgressAllowList):
        assert isinstance(item.resource, EgressAllowList)
        yield item.ref, list(enumerate(item.resource.spec.entries))
    for part in partial:
        yield part.ref, part.entries


def check_duplicate_entries(
    placed: Sequence[Placed], locator: Locator, partial: Sequence[PartialList] = ()
) -> Iterator[Problem]:
    """The same destination twice in one list is a warning: the second entry adds nothing, or confuses."""
    for ref, entries in _entry_lists(placed, partial):
        first: dict[str, int] = {}
        for index, entry in entries:
            key = entry.destination
            if key in first:
                line, _ = locator.position(ref, ("spec", "entries", first[key]))
                yield locator.problem(
                    ref,
                    ("spec", "entries", index),
                    f"duplicate entry: {key.replace(':', ' ', 1)} is already listed at line {line}",
                    severity=Severity.WARNING,
                )
            else:
                first[key] = index


# Names that resolve only inside a machine or a site, never on the public internet.
_PRIVATE_SUFFIXES = (".local", ".internal", ".localhost", ".localdomain", ".lan", ".home.arpa")


def _private_name(domain: str) -> str:
    """Why ``domain`` cannot be a public name, or empty."""
    name = domain.removeprefix("*.").rstrip(".").lower()
    if name == "localhost":
        return "localhost is this machine"
    if "." not in name:
        return "a single-label name is resolved through search domains, not on the public internet"
    for suffix in _PRIVATE_SUFFIXES:
        if name.endswith(suffix):
            return f"names under {suffix} are not public"
    return ""


def check_entry_sense(
    placed: Sequence[Placed], locator: Locator, today: date | None, partial: Sequence[PartialList] = ()
) -> Iterator[Problem]:
    """Warnings for entries that cannot do what they say: an expiry in the past (``today`` given), a domain that
    cannot be public."""
    for ref, entries in _entry_lists(placed, partial):
        for index, entry in entries:
            if today is not None and entry.expires is not None and entry.expires < today:
                yield locator.problem(
                    ref,
                    ("spec", "entries", index, "expires"),
                    f"expired on {entry.expires.isoformat()}: the entry is no longer enforced; remove it or move "
                    "the date",
                    severity=Severity.WARNING,
                )
            why = _private_name(str(entry.domain)) if entry.domain is not None else ""
            if why:
                yield locator.problem(
                    ref,
                    ("spec", "entries", index, "domain"),
                    f"{entry.domain} cannot be reached on the public internet ({why})",
                    severity=Severity.WARNING,
                )


def _scripts(label: str) -> list[str]:
    """The scripts of a label's letters, by their Unicode names (LATIN, CYRILLIC, GREEK, ...)."""
    return sorted({unicodedata.name(c, "UNKNOWN").split(" ")[0] for c in label if c.isalpha()})


def _unicode_name(domain: str) -> str:
    try:
        return domain.encode("ascii").decode("idna")
    except UnicodeError:
        return domain


# Letters of other scripts drawn like a Latin letter or digit (after NFKD and without marks), from Unicode's
# confusables for the scripts seen in homoglyph attacks on names: Cyrillic, Greek, Armenian, and Latin's own
# IPA letters. A short table of our own: what matters here is "looks like a listed name", not Unicode's full
# skeleton algorithm (UTS #39), whose data no maintained library ships in a form worth the dependency.
_LOOKALIKE_NAMES = {  # Latin letter -> the letters drawn like it (named: the source holds no homoglyph)
    "a": ("CYRILLIC SMALL LETTER A", "LATIN SMALL LETTER ALPHA", "GREEK SMALL LETTER ALPHA"),
    "b": ("CYRILLIC SMALL LETTER SOFT SIGN",),
    "c": ("CYRILLIC SMALL LETTER ES", "GREEK LUNATE SIGMA SYMBOL"),
    "d": ("CYRILLIC SMALL LETTER KOMI DE",),
    "e": ("CYRILLIC SMALL LETTER IE", "CYRILLIC SMALL LETTER ABKHASIAN CHE"),
    "g": ("LATIN SMALL LETTER SCRIPT G",),
    "h": ("CYRILLIC SMALL LETTER SHHA", "ARMENIAN SMALL LETTER HO"),
    "i": (
        "CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I",
        "GREEK SMALL LETTER IOTA",
        "LATIN SMALL LETTER IOTA",
    ),
    "j": ("CYRILLIC SMALL LETTER JE",),
    "k": ("GREEK SMALL LETTER KAPPA",),
    "l": ("CYRILLIC SMALL LETTER PALOCHKA",),
    "n": ("ARMENIAN SMALL LETTER VO", "ARMENIAN SMALL LETTER RA"),
    "o": ("CYRILLIC SMALL LETTER O", "GREEK SMALL LETTER OMICRON", "ARMENIAN SMALL LETTER OH"),
    "p": ("CYRILLIC SMALL LETTER ER", "GREEK SMALL LETTER RHO"),
    "q": ("CYRILLIC SMALL LETTER QA",),
    "s": ("CYRILLIC SMALL LETTER DZE",),
    "u": ("GREEK SMALL LETTER UPSILON", "ARMENIAN SMALL LETTER SEH", "LATIN SMALL LETTER V WITH HOOK"),
    "v": ("GREEK SMALL LETTER NU", "CYRILLIC SMALL LETTER IZHITSA"),
    "w": ("CYRILLIC SMALL LETTER WE", "CYRILLIC SMALL LETTER OMEGA"),
    "x": ("CYRILLIC SMALL LETTER HA", "GREEK SMALL LETTER CHI"),
    "y": ("CYRILLIC SMALL LETTER U", "GREEK SMALL LETTER GAMMA"),
}
_LOOKALIKES = str.maketrans(
    {unicodedata.lookup(name): latin for latin, names in _LOOKALIKE_NAMES.items() for name in names}
)


def skeleton(name: str) -> str:
    """What a name looks like: decomposed, marks dropped, lower case, look-alike letters made Latin."""
    decomposed = unicodedata.normalize("NFKD", name.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).translate(_LOOKALIKES)


def check_confusable_domains(placed: Sequence[Placed], locator: Locator) -> Iterator[Problem]:
    """A warning for a domain that can be taken for another: one that looks like a listed (or protected) domain
    of any list but is not it, and one with a label that mixes scripts (a Cyrillic letter among Latin ones)."""
    lists = [(item, item.resource) for item in placed if isinstance(item.resource, EgressAllowList)]
    idns = [
        (item, index, str(entry.domain))
        for item, allow_list in lists
        for index, entry in enumerate(allow_list.spec.entries)
        if entry.domain is not None and "xn--" in str(entry.domain)
    ]
    if not idns:  # the common tree: nothing to compare (50,000 skeletons would cost ~0.13 s a load)
        return
    listed: dict[str, tuple[str, str, bool]] = {}  # skeleton -> (domain as shown, its list, protected)
    for _, allow_list in lists:
        for entry in allow_list.spec.entries:
            name = str(entry.domain) if entry.domain is not None else ""
            if name and "xn--" not in name:  # an ASCII name is its own skeleton, in lower case
                listed.setdefault(name.lower(), (name, allow_list.metadata.name, entry.protected))
    for item, index, domain in idns:
        shown = _unicode_name(domain)
        message = _look_alike(f"{shown} ({domain})", listed.get(skeleton(shown)), shown.split("."))
        if message:
            yield locator.problem(item.ref, ("spec", "entries", index, "domain"), message, severity=Severity.WARNING)


def _look_alike(written: str, twin: tuple[str, str, bool] | None, labels: Sequence[str]) -> str:
    """Why a name can be taken for another: the listed domain it looks like, else its first mixed-script label."""
    if twin is not None:
        other, in_list, protected = twin
        return (
            f"{written} looks like {other}, {'protected ' if protected else ''}in list {in_list}, but is another "
            "name: check it is the one meant"
        )
    for label in labels:
        scripts = _scripts(label)
        if len(scripts) > 1:
            return (
                f"{written} mixes {' and '.join(s.title() for s in scripts)} letters in '{label}': it can be made "
                "to look like another name; check it is the one meant"
            )
    return ""


_ONE_PER_NODE: tuple[tuple[type[Resource], str, str], ...] = (
    (EgressRoute, "routes the public address space", "route"),
    (EgressGateway, "holds the egress chains and sets", "gateway"),
)


def check_route_conflicts(placed: Sequence[Placed], locator: Locator) -> Iterator[Problem]:
    """Two EgressRoutes (or two EgressGateways) on one node would fight over the same routes (chains, sets)."""
    for kind, what, noun in _ONE_PER_NODE:
        seen: list[Placed] = []
        for item in _of_kind(placed, kind):
            for earlier in seen:
                if item.resource.spec.shares_nodes_with(earlier.resource.spec):
                    yield locator.problem(
                        item.ref,
                        ("spec", "nodes"),
                        f"{kind.KIND}/{earlier.resource.metadata.name} already {what} on these nodes: give each "
                        f"{noun} disjoint nodes",
                    )
                    break
            else:
                seen.append(item)


def _file_references(resource: Resource) -> Iterator[tuple[tuple[PathElement, ...], str]]:
    if isinstance(resource, IPPool):
        members = resource.spec.members
        if members.nginxConf is not None:
            yield ("spec", "members", "nginxConf"), members.nginxConf
        if members.upstream is not None:
            yield ("spec", "members", "upstream", "file"), members.upstream.file
    elif isinstance(resource, EdgeNetwork):
        for index, zone in enumerate(resource.spec.zones):
            for field in ("include", "template"):
                value = getattr(zone, field)
                if value is not None:
                    yield ("spec", "zones", index, field), value


def check_files(placed: Sequence[Placed], locator: Locator, known: frozenset[str]) -> Iterator[Problem]:
    """Relative file paths point into the desired-state tree, so they must exist there."""
    for item in placed:
        for path, value in _file_references(item.resource):
            if value.startswith("/"):
                continue
            normalized = "/".join(p for p in value.split("/") if p not in ("", "."))
            if ".." in normalized.split("/"):
                yield locator.problem(item.ref, path, f"'{value}' leaves the desired-state tree; use a path inside it")
            elif normalized not in known:
                yield locator.problem(
                    item.ref,
                    path,
                    f"'{value}' does not exist in the desired-state tree (relative paths start at its root)",
                )
