"""One proxy app: its listeners, its backend set, and how a client connection gets a backend.

A client is accepted and dialled to a backend chosen by the balancer; a failed or timed-out connect moves on to
the next healthy backend (``retries`` more times) so the client never notices. With no backend left the client
gets what ``on_empty`` says: a plain close, or the old IP-pool tool's ``HTTP/1.1 502`` line.

At the connection limit the app stops accepting (its listeners leave epoll) until a connection ends: new
clients wait in the kernel's accept queue, back-pressure instead of refusal, as HAProxy's ``maxconn`` does.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from reconciler.health import outlier
from reconciler.health.base import Observation
from reconciler.model.health_strategy import OutlierSettings
from reconciler.model.proxy_config import AppSettings
from reconciler.proxy.backends import Backend, balancer
from reconciler.proxy.engine import ERR, HUP, IN, OUT, Engine, Relay, Sock

log = logging.getLogger(__name__)

BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
REFUSED_LINGER = 2.0  # how long a turned-away client's remaining data is read and dropped before we close
ACCEPT_BATCH = 64  # accepts per readiness event, so one busy port does not starve the others
NOTHING: frozenset[int] = frozenset()
DIAL_CHECK = 0.05  # at most this late is a connect timeout noticed, so the expiry runs in batches
# how a target that cannot be chosen (down, drained, unresolved) counts for the ejection caps: as out
_OUT = outlier.OutlierState(ejected_until=float("inf"))


@dataclass
class AppStats:
    connections: int = 0
    active: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    connect_failures: int = 0
    retries: int = 0
    no_backend: int = 0
    ejections: int = 0  # targets taken out after eject_after failed connects in a row
    at_limit: int = 0  # 1 while accepting is paused at max_connections


def outlier_rule(settings: AppSettings) -> OutlierSettings | None:
    """TCPProxy's outlier detection as the ``outlier`` strategy: a fixed ejection time (it does not grow), any share
    of the targets, but never the last usable one."""
    if not settings.eject_after:
        return None
    eject_for = timedelta(seconds=settings.eject_for)
    return OutlierSettings(
        failures=settings.eject_after, baseEjection=eject_for, maxEjection=eject_for, maxEjectedPercent=100
    )


class Listener:
    """One listening socket of an app."""

    __slots__ = ("app", "family", "sock")

    def __init__(self, app: ProxyApp, sock: socket.socket) -> None:
        self.app = app
        self.sock = sock
        self.family = sock.family

    def on_event(self, mask: int) -> None:
        self.app.accept(self)

    def on_error(self) -> None:
        """Nothing to undo: the listener stays, and the next readiness event accepts again."""


def listening_socket(host: str, port: int) -> socket.socket:
    """A non-blocking listener on host:port with SO_REUSEPORT, so several processes may share the port."""
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # [::] and 0.0.0.0 are separate listeners
        sock.bind((host, port))
        sock.listen(4096)
    except OSError:
        sock.close()
        raise
    return sock


class ProxyApp:
    """Listeners of one app and the relays they accepted, on one engine."""

    def __init__(self, name: str, settings: AppSettings, backends: Iterable[Backend], engine: Engine) -> None:
        self.name = name
        self.settings = settings
        self.backends = list(backends)
        self.balancer = balancer(settings.balance)
        self.outliers = outlier_rule(settings)
        self.stats = AppStats()
        self.engine = engine
        self.listeners: dict[tuple[str, int], Listener] = {}
        self.relays: set[Relay] = set()
        self.closing = False
        self._sweeping = False
        self._dialing: OrderedDict[Relay, float] = OrderedDict()  # connecting, in deadline order
        self._expiring = False
        self._sweep_if_needed()

    # --- configuration ---------------------------------------------------------------------------------------

    def reconfigure(self, settings: AppSettings, backends: list[Backend]) -> None:
        """New settings and backends for new connections; established connections are left alone."""
        if settings.balance != self.settings.balance:
            self.balancer = balancer(settings.balance)
        if settings != self.settings:
            self.outliers = outlier_rule(settings)
        self.settings = settings
        self.backends = backends
        self._sweep_if_needed()
        self._limit()

    def listen(self, host: str, port: int) -> None:
        """Start accepting on host:port; raises OSError when the address cannot be bound."""
        if (host, port) in self.listeners:
            return
        listener = Listener(self, listening_socket(host, port))
        self.listeners[(host, port)] = listener
        self.engine.watch(listener.sock.fileno(), listener, 0 if self.stats.at_limit else IN)
        log.info("listening app=%s address=%s:%d", self.name, host, port)

    def stop_listening(self, host: str, port: int) -> None:
        listener = self.listeners.pop((host, port), None)
        if listener is not None:
            self.engine.close_socket(listener.sock)
            log.info("stopped listening app=%s address=%s:%d", self.name, host, port)

    def stop_accepting(self) -> None:
        """The app is going away: no new connections; established ones go on until they end or are cut."""
        self.closing = True
        for host, port in list(self.listeners):
            self.stop_listening(host, port)

    def cut(self) -> None:
        """Close every connection that is still open (the end of a drain)."""
        for relay in list(self.relays):
            relay.close()

    # --- connections -----------------------------------------------------------------------------------------

    def accept(self, listener: Listener) -> None:
        # socket._accept (CPython's, not in typeshed) gives the descriptor alone, without accept()'s wrapping
        accept: Callable[[], tuple[int, object]] = listener.sock._accept  # type: ignore[attr-defined]
        for _ in range(ACCEPT_BATCH):
            if self.stats.at_limit:
                return
            try:
                fd, _ = accept()
            except BlockingIOError:
                return
            except OSError as exc:  # out of descriptors, say: pause rather than spin on a readable listener
                log.warning("accept failed app=%s error=%s", self.name, exc)
                self._pause()
                self.engine.call_at(self.engine.now + 0.5, self._limit)
                return
            relay = Relay(self.engine, self, Sock(listener.family, socket.SOCK_STREAM, 0, fd))
            self.relays.add(relay)
            stats = self.stats
            stats.connections += 1
            stats.active += 1
            if stats.active >= self.settings.max_connections:
                self._pause()
            self._dial(relay)

    def _pause(self) -> None:
        if not self.stats.at_limit:
            self.stats.at_limit = 1
            for listener in self.listeners.values():
                self.engine.modify(listener.sock.fileno(), 0)

    def _limit(self) -> None:
        """Resume accepting when below the limit (level-triggered: clients queued meanwhile are accepted)."""
        if self.stats.at_limit and self.stats.active < self.settings.max_connections and not self.closing:
            self.stats.at_limit = 0
            for listener in self.listeners.values():
                self.engine.modify(listener.sock.fileno(), IN)

    def _dial(self, relay: Relay) -> None:
        tried = relay.tried
        reuse = self.settings.min_reuse
        while len(tried) <= self.settings.retries:
            exclude = frozenset(map(id, tried)) if tried else NOTHING
            if reuse:  # a target handed out within min_reuse is not handed out again (an IP pool's rate limit)
                since = self.engine.now - reuse
                exclude = exclude | {id(b) for b in self.backends if b.handed_out > since}
            backend = self.balancer.pick(self.backends, exclude)
            if backend is None or backend.resolved is None:
                break
            backend.handed_out = self.engine.now
            if tried:
                self.stats.retries += 1
            tried.append(backend)
            host, port = backend.resolved
            sock = Sock(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            error = sock.connect_ex((host, port))
            if error and error != errno.EINPROGRESS:
                sock.close()
                self._failed(backend, error)
                continue
            relay.backend = backend
            relay.dial(sock)
            self._dialing[relay] = self.engine.now + self.settings.connect_timeout
            if not self._expiring:
                self._expiring = True
                self.engine.call_at(next(iter(self._dialing.values())), self._expire_dials)
            return
        self._refuse(relay)

    def connect_event(self, relay: Relay, mask: int) -> None:
        server = relay.server
        if server is None or not mask & (OUT | ERR | HUP):
            return
        if mask & (ERR | HUP):  # a failed connect reports ERR (and HUP); writable alone means connected
            error = server.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or errno.ECONNREFUSED
            self._retry(relay, error)
            return
        self._dialing.pop(relay, None)
        backend: Backend = relay.backend
        backend.active += 1
        backend.connections += 1
        if backend.outlier.failures and self.outliers is not None:  # the common case stays one attribute test
            backend.outlier = outlier.step(
                backend.outlier, Observation(True, self.engine.now), settings=self.outliers, now=self.engine.now
            )
        relay.attach(mask)

    def _expire_dials(self) -> None:
        """Connects past ``connect_timeout`` fail over. One queue in deadline order, not a timer per connection:
        the timeout is the same for every connect of the app (a reload that shortens it is late by at most the
        old timeout). A relay leaves the queue when it connects or closes, so none is kept alive by it."""
        dialing, now = self._dialing, self.engine.now
        while dialing:
            relay, deadline = next(iter(dialing.items()))
            if deadline > now:
                break
            self._retry(relay, errno.ETIMEDOUT)  # a new dial goes to the end of the queue
        self._expiring = bool(dialing)
        if dialing:
            self.engine.call_at(max(next(iter(dialing.values())), now + DIAL_CHECK), self._expire_dials)

    def _retry(self, relay: Relay, error: int) -> None:
        self._dialing.pop(relay, None)
        self._failed(relay.backend, error)
        relay.drop_server()
        relay.backend = None
        self._dial(relay)

    def _failed(self, backend: Backend, error: int) -> None:
        backend.failures += 1
        self.stats.connect_failures += 1
        log.debug("connect failed app=%s backend=%s error=%s", self.name, backend.address, errno.errorcode.get(error))
        rule = self.outliers
        if rule is None or backend.ejected:
            return
        now = self.engine.now
        others = (b.outlier if b.usable else _OUT for b in self.backends if b is not backend)
        backend.outlier = outlier.step(backend.outlier, Observation(False, now), settings=rule, now=now, others=others)
        if backend.outlier.ejected:
            self._eject(backend)

    # --- outlier detection (the ``outlier`` strategy of reconciler.health) ------------------------------------

    def _eject(self, backend: Backend) -> None:
        backend.ejected = True
        self.stats.ejections += 1
        until = backend.outlier.ejected_until or self.engine.now
        log.warning(
            "target ejected app=%s target=%s failed_connects_in_a_row=%d for=%.0fs",
            self.name,
            backend.address,
            backend.outlier.failures,
            until - self.engine.now,
        )
        self.engine.call_at(until, lambda: self._readmit(backend))

    def _readmit(self, backend: Backend) -> None:
        if self.outliers is not None:
            backend.outlier = outlier.release_due(backend.outlier, settings=self.outliers, now=self.engine.now)
        else:
            backend.outlier = outlier.OutlierState()
        backend.ejected = backend.outlier.ejected
        if not backend.ejected:
            log.info("target readmitted app=%s target=%s", self.name, backend.address)

    def _refuse(self, relay: Relay) -> None:
        """No backend: answer as configured, then end the connection with a FIN, not a reset.

        Closing a socket whose client data was never read makes the kernel send RST, which can destroy the
        answer in flight; so the rest of the client's data is read and dropped until it closes (or 2 s pass).
        """
        self.stats.no_backend += 1
        relay.refuse(BAD_GATEWAY if self.settings.on_empty == "http-502" else b"", REFUSED_LINGER)

    def relayed(self, relay: Relay, upstream: bool, count: int) -> None:
        if upstream:
            self.stats.bytes_in += count
        else:
            self.stats.bytes_out += count

    def relay_closed(self, relay: Relay) -> None:
        self.relays.discard(relay)
        self._dialing.pop(relay, None)
        self.stats.active -= 1
        if relay.server is not None and relay.server.connected:
            relay.backend.active -= 1
        if self.stats.at_limit:
            self._limit()

    # --- idle and old connections ----------------------------------------------------------------------------

    def _sweep_if_needed(self) -> None:
        limits = [t for t in (self.settings.idle_timeout, self.settings.max_lifetime) if t]
        if limits and not self._sweeping:
            self._sweeping = True
            self.engine.call_at(self.engine.now + min(1.0, min(limits) / 2), self._sweep)

    def _sweep(self) -> None:
        """Close connections idle for idle_timeout and those older than max_lifetime (checked twice per the
        shorter of the two, at least every second: one timer per app, not one per connection)."""
        self._sweeping = False
        idle, lifetime = self.settings.idle_timeout, self.settings.max_lifetime
        if not (idle or lifetime) or self.closing:
            return
        now = self.engine.now
        quiet = now - idle if idle else float("-inf")
        born = now - lifetime if lifetime else float("-inf")
        for relay in [r for r in self.relays if r.last_activity < quiet or r.started < born]:
            relay.close()
        self._sweep_if_needed()
