"""Who is editing: bearer tokens from a file of hashed tokens, or a user name a trusted reverse proxy sets in a
header; sessions for the pages, each with its own CSRF token.

The tokens file has one token per line: ``sha256:<hex of the token's SHA-256> <user name> <e-mail>`` (``#``
starts a comment). Make a line with ``printf %s "$TOKEN" | sha256sum``. The user name and e-mail are the commit's
author.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import SettingsError
from reconciler.settings import GitIdentity

SESSION_COOKIE = "reconciler_console"


@dataclass(frozen=True)
class Session:
    user: GitIdentity
    csrf: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenBook:
    def __init__(self, entries: Iterable[tuple[str, GitIdentity]] = ()) -> None:
        self.entries = list(entries)

    @classmethod
    def read(cls, path: Path | None) -> TokenBook:
        if path is None:
            return cls()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"cannot read the tokens file {path}: {exc.strerror}") from exc
        entries = []
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) != 3 or not words[0].startswith("sha256:") or len(words[0]) != 7 + 64:
                raise SettingsError(f"{path}:{number}: expected 'sha256:<64 hex digits> <user> <e-mail>'")
            entries.append((words[0].removeprefix("sha256:").lower(), GitIdentity(words[1], words[2])))
        return cls(entries)

    def user(self, token: str) -> GitIdentity | None:
        digest = hash_token(token)
        found = None
        for known, identity in self.entries:  # every line compared, in constant time each
            if hmac.compare_digest(known, digest):
                found = identity
        return found


class Sessions:
    """Page sessions, in memory (a restart logs people out)."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}

    def start(self, user: GitIdentity) -> tuple[str, Session]:
        key = secrets.token_urlsafe(32)
        session = self.sessions[key] = Session(user, secrets.token_urlsafe(32))
        return key, session

    def get(self, key: str | None) -> Session | None:
        return self.sessions.get(key) if key else None

    def end(self, key: str | None) -> None:
        if key:
            self.sessions.pop(key, None)


def trusted(remote: str | None, proxies: Iterable[str]) -> bool:
    """Whether the peer is one of the reverse proxies allowed to name the user."""
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(proxy, strict=False) for proxy in proxies)
