"""IPPool: an nginx egress-IP pool, its health from nginx's access log, and the TCP proxy in front of it.

Relative file paths (nginxConf, upstream.file, accessLog.path) are resolved against the desired-state root, so
a repository can ship them; absolute paths are on the machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from reconciler.model.common import Listener, Reference, Resource, Spec, Strict
from reconciler.model.values import (
    Balance,
    Duration,
    IPAddressValue,
    ListenAddressValue,
    Port,
    PositiveDuration,
)

LOG_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _one_file(path: str) -> str:
    if any(sign in path for sign in "*?["):
        raise ValueError(f"'{path}' is a pattern: name one nginx file (a pattern is not expanded)")
    return path


NginxFile = Annotated[str, Field(min_length=1), AfterValidator(_one_file)]


class StaticMember(Strict):
    """One egress IP and the nginx port that binds it."""

    ip: IPAddressValue = Field(description="The egress address nginx binds (proxy_bind).")
    port: Port = Field(description="The nginx listen port of that address.")


class UpstreamRef(Strict):
    """An nginx upstream block whose server lines are the members."""

    file: NginxFile = Field(description="The nginx file that holds the upstream block.")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="The upstream's name.")


class MemberSource(Strict):
    """Where the members come from: exactly one of nginxConf, upstream or static."""

    nginxConf: NginxFile | None = Field(
        default=None, description="nginx file of server blocks: listen PORT + proxy_bind IP."
    )
    upstream: UpstreamRef | None = Field(default=None, description="Server lines of an nginx upstream block.")
    static: tuple[StaticMember, ...] | None = Field(default=None, min_length=1, description="Members listed here.")

    @model_validator(mode="after")
    def _exactly_one(self) -> MemberSource:
        given = [n for n in ("nginxConf", "upstream", "static") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of nginxConf, upstream, static (found {', '.join(given) or 'none'})")
        return self


class AccessLog(Strict):
    """The nginx access log(s) that tell each member's health."""

    path: str = Field(
        min_length=1,
        description="Log file. With {ip}: one log per member; without: one shared log, lines attributed by "
        "$server_port or $upstream_addr.",
    )
    format: str = Field(
        default='$remote_addr - [$time_local] "$request" $status $server_port $upstream_addr $request_time',
        min_length=1,
        description="The nginx log_format string itself; the parser is compiled from it.",
    )
    from_: Literal["end", "start"] = Field(
        default="end", alias="from", description="end: only new lines; start: the whole file first."
    )

    @field_validator("path")
    @classmethod
    def _placeholders(cls, path: str) -> str:
        unknown = set(re.findall(r"\{(\w*)\}", path)) - {"ip"}
        if unknown:
            raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}}: only {{ip}} is replaced")
        return path

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(a or b for a, b in LOG_VARIABLE.findall(self.format))

    @model_validator(mode="after")
    def _format_fields(self) -> AccessLog:
        variables = set(self.variables)
        if "status" not in variables:
            raise ValueError("format must contain $status: it decides success or failure")
        if "{ip}" not in self.path and not variables & {"server_port", "upstream_addr"}:
            raise ValueError("a shared log (path without {ip}) needs $server_port or $upstream_addr in format")
        return self


STATUS_PATTERN = r"^([1-5][0-9][0-9]|[1-5]xx)$"


class FailureRule(Strict):
    """Which requests count as failures of the member that served them."""

    statuses: tuple[str, ...] = Field(
        default=("5xx",),
        min_length=1,
        description="HTTP statuses ('502') or classes ('5xx') that count as failures.",
    )

    @field_validator("statuses")
    @classmethod
    def _statuses(cls, statuses: tuple[str, ...]) -> tuple[str, ...]:
        for status in statuses:
            if not re.fullmatch(STATUS_PATTERN, str(status)):
                raise ValueError(f"'{status}' is not an HTTP status (like 502) or class (like 5xx)")
        return tuple(str(s) for s in statuses)


class PoolProxy(Strict):
    """The TCP proxy that hands out available members."""

    listen: ListenAddressValue = Field(description="Where clients connect, like 0.0.0.0:9096 (one port).")
    next: str = Field(default="127.0.0.1", description="Host of nginx; a connection goes to next:<member's port>.")
    balance: Balance = Field(default="random", description="How a member is picked for a new connection.")
    dialTimeout: PositiveDuration = Field(
        default=timedelta(seconds=15), description="Give up connecting to nginx after this long."
    )
    maxLifetime: Duration | None = Field(default=None, description="Hard cap on a connection's life; none by default.")
    idleTimeout: Duration | None = Field(
        default=None, description="Close a connection idle this long; none by default."
    )
    minReuseInterval: Duration = Field(
        default=timedelta(0), description="Hand the same member out at most once per interval (a rate limit)."
    )
    emptyPool: Literal["close", "http-502"] = Field(
        default="close",
        description="What a client gets when no member is available: a closed connection or "
        "the old tool's 'HTTP/1.1 502' line.",
    )

    @field_validator("listen")
    @classmethod
    def _one_port(cls, listen: ListenAddressValue) -> ListenAddressValue:
        if len(listen.ports) != 1:
            raise ValueError("the pool proxy listens on one port, not a range")
        return listen


class IPPoolSpec(Spec):
    """Members, health source, strategy and proxy of a pool."""

    members: MemberSource = Field(description="Where the pool's IPs come from.")
    accessLog: AccessLog = Field(description="Where the health of each IP comes from.")
    failure: FailureRule = Field(default_factory=FailureRule, description="What counts as a failed request.")
    strategy: str = Field(description="Name of the HealthStrategy that decides availability.")
    scanInterval: PositiveDuration = Field(
        default=timedelta(seconds=30), description="How often logs and member lists are read."
    )
    history: int = Field(default=1000, ge=1, le=1_000_000, description="Observations kept per member.")
    banned: tuple[IPAddressValue, ...] = Field(default=(), description="Members banned by hand (operator override).")
    proxy: PoolProxy | None = Field(default=None, description="The TCP proxy; none = health tracking only.")


class IPPool(Resource):
    """An nginx egress-IP pool."""

    KIND: ClassVar[str] = "IPPool"
    REFERENCES: ClassVar[tuple[Reference, ...]] = (Reference(("spec", "strategy"), "HealthStrategy"),)
    FILES: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("spec", "members", "nginxConf"),
        ("spec", "members", "upstream", "file"),
    )
    kind: Literal["IPPool"] = Field(description="IPPool.")
    spec: IPPoolSpec = Field(description="The pool.")

    def listeners(self) -> Iterator[Listener]:
        if self.spec.proxy is not None:
            yield Listener(("spec", "proxy", "listen"), self.spec.proxy.listen, f"IPPool/{self.metadata.name}")
