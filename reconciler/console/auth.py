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
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import SettingsError
from reconciler.settings import GitIdentity
from reconciler.system.clock import SystemClock

SESSION_COOKIE = "reconciler_console"


@dataclass(frozen=True)
class Session:
    user: GitIdentity
    csrf: str
    started: float = 0.0


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

    def identity_of(self, name: str) -> GitIdentity | None:
        """The tokens file's identity for a user name (a trusted proxy's user's e-mail comes from here)."""
        return next((identity for _, identity in self.entries if identity.name == name), None)

    def user(self, token: str) -> GitIdentity | None:
        digest = hash_token(token)
        found = None
        for known, identity in self.entries:  # every line compared, in constant time each
            if hmac.compare_digest(known, digest):
                found = identity
        return found


class Sessions:
    """Page sessions, in memory (a restart logs people out), each ending ``idle`` seconds after its last use and
    ``lifetime`` seconds after it started, whichever comes first; at most ``limit`` at once (the least recently
    used goes first). A trusted proxy's user has one session, reused on every request, so page views that send no
    cookie cost no memory."""

    def __init__(
        self,
        *,
        idle: float = 3600.0,
        lifetime: float = 12 * 3600.0,
        limit: int = 10_000,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.idle, self.lifetime, self.limit = idle, lifetime, limit
        self.clock = clock or SystemClock().monotonic
        self.sessions: OrderedDict[str, tuple[Session, float]] = OrderedDict()  # key -> (session, last used)
        self.proxied: dict[str, str] = {}  # a trusted proxy's user name -> their session's key

    def start(self, user: GitIdentity) -> tuple[str, Session]:
        now = self.clock()
        self._expire(now)
        while len(self.sessions) >= self.limit:
            self._drop(next(iter(self.sessions)))
        key = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), now)
        self.sessions[key] = (session, now)
        return key, session

    def get(self, key: str | None) -> Session | None:
        found = self.sessions.get(key) if key else None
        if found is None or key is None:
            return None
        session, used = found
        now = self.clock()
        if now - used > self.idle or now - session.started > self.lifetime:
            self._drop(key)
            return None
        self.sessions[key] = (session, now)
        self.sessions.move_to_end(key)
        return session

    def for_proxied(self, user: GitIdentity, key: str | None) -> tuple[str, Session]:
        """The session of a user the trusted proxy names: the one the cookie names if it is theirs, else theirs
        from before, else a new one."""
        for candidate in (key, self.proxied.get(user.name)):
            session = self.get(candidate)
            if candidate is not None and session is not None and session.user == user:
                self.proxied[user.name] = candidate
                return candidate, session
        key, session = self.start(user)
        self.proxied[user.name] = key
        return key, session

    def end(self, key: str | None) -> None:
        if key:
            self._drop(key)

    def __len__(self) -> int:
        return len(self.sessions)

    def _drop(self, key: str) -> None:
        found = self.sessions.pop(key, None)
        if found is not None and self.proxied.get(found[0].user.name) == key:
            del self.proxied[found[0].user.name]

    def _expire(self, now: float) -> None:
        """Drop the sessions idle too long: least recently used first, so the first one still in use ends the
        walk (one past its lifetime is dropped when next asked for)."""
        while self.sessions:
            key, (_, used) = next(iter(self.sessions.items()))
            if now - used <= self.idle:
                return
            self._drop(key)


def trusted(remote: str | None, proxies: Iterable[str]) -> bool:
    """Whether the peer is one of the reverse proxies allowed to name the user."""
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(proxy, strict=False) for proxy in proxies)
