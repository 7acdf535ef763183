"""The EgressAllowList kind's own cross-document checks: entries inside a gateway's internal ranges, the same
destination listed twice, entries that make no sense (expired, a private name), and look-alike domains.

Each check takes the valid resources (with the document each came from) and returns located problems.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from reconciler.errors import Problem, Severity
from reconciler.loading.cross_checks import Placed, of_kind
from reconciler.loading.locator import DocRef, Locator
from reconciler.model import EgressAllowList, EgressGateway
from reconciler.model.egress_allow_list import AllowEntry
from reconciler.model.egress_gateway import ALL_LISTS
from reconciler.model.internal_ranges import AddressRanges


@dataclass(frozen=True, slots=True)
class PartialList:
    """An allow-list document with errors elsewhere: its entries that are valid on their own (by index), so that
    their internal-range errors are reported in the same run as the other errors."""

    name: str
    ref: DocRef
    entries: tuple[tuple[int, AllowEntry], ...]


def _names(placed: Sequence[Placed], kind: type[EgressAllowList]) -> list[str]:
    return [p.resource.metadata.name for p in of_kind(placed, kind)]


def _gateway_ranges(placed: Sequence[Placed], default: AddressRanges) -> Mapping[str, list[tuple[str, AddressRanges]]]:
    """For each allow-list name, the internal ranges of every gateway that enforces it."""
    lists = _names(placed, EgressAllowList)
    ranges: dict[str, list[tuple[str, AddressRanges]]] = {name: [] for name in lists}
    for item in of_kind(placed, EgressGateway):
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
        for item in of_kind(placed, EgressAllowList)
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
    for item in of_kind(placed, EgressAllowList):
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
