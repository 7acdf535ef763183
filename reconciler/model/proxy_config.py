"""What one proxy app runs with: the frozen settings planned from a TCPProxy (or an IPPool) and carried out by the
data plane. Plain dataclasses, so they cross the pipe to worker processes and compare cheaply in plans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reconciler.model.values import Balance

OnEmpty = Literal["close", "http-502"]


@dataclass(frozen=True, slots=True)
class AppSettings:
    balance: Balance = "round-robin"
    connect_timeout: float = 3.0
    retries: int = 2
    idle_timeout: float | None = None
    max_connections: int = 10_000
    on_empty: OnEmpty = "close"
    eject_after: int = 5  # failed connects in a row that take a target out of the choice; 0: never
    eject_for: float = 30.0
    max_lifetime: float | None = None  # a connection is closed this long after it was accepted
    min_reuse: float = 0.0  # a target is handed a new connection at most once per this many seconds

    def __str__(self) -> str:
        idle = f"{self.idle_timeout:g}s" if self.idle_timeout else "off"
        eject = f"{self.eject_after} for {self.eject_for:g}s" if self.eject_after else "off"
        extra = f", max lifetime {self.max_lifetime:g}s" if self.max_lifetime else ""
        extra += f", one connection per target per {self.min_reuse:g}s" if self.min_reuse else ""
        return (
            f"balance {self.balance}, connect timeout {self.connect_timeout:g}s, retries {self.retries}, "
            f"idle timeout {idle}, max connections {self.max_connections}, ejection {eject}{extra}"
        )


@dataclass(frozen=True, slots=True)
class CheckSettings:
    """Active health checks (HAProxy's inter / rise / fall), optionally with a send/expect exchange."""

    interval: float = 2.0
    timeout: float = 1.0
    rise: int = 2
    fall: int = 3
    send: bytes | None = None
    expect: bytes | None = None

    def __str__(self) -> str:
        exchange = " with send/expect" if self.send or self.expect else ""
        return (
            f"checks every {self.interval:g}s, timeout {self.timeout:g}s, rise {self.rise}, fall {self.fall}{exchange}"
        )


@dataclass(frozen=True, slots=True)
class AppTuning:
    """An app's settings and checks, planned and applied as one value."""

    settings: AppSettings
    checks: CheckSettings | None

    def __str__(self) -> str:
        return f"{self.settings}; {self.checks or 'no checks'}"


@dataclass(frozen=True, slots=True)
class AppConfig:
    """Everything one app runs with: built from a TCPProxy (or IPPool) by planning, run by the proxy manager."""

    key: str
    listen: tuple[tuple[str, int], ...]
    targets: tuple[tuple[str, int], ...]  # (host:port, weight), in the operator's order
    settings: AppSettings = AppSettings()
    checks: CheckSettings | None = CheckSettings()
