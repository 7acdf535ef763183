"""TCPProxy: apps with many listening ports each, balanced over health-checked targets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from reconciler.model.common import Listener, Resource, Spec, Strict, ensure_unique
from reconciler.model.values import Balance, Duration, HostPortValue, ListenAddressValue, PositiveDuration


class WeightedTarget(Strict):
    """A target with a weight; a plain 'host:port' string has weight 1."""

    address: HostPortValue = Field(description="host:port of the target; names are re-resolved.")
    weight: int = Field(default=1, ge=0, le=1000, description="Relative share of new connections; 0 drains.")


def _target_from_string(value: Any) -> Any:
    return {"address": value} if isinstance(value, str) else value


# Operators write 'host:port' for the common case; the model always holds a WeightedTarget.
Target = Annotated[
    WeightedTarget,
    BeforeValidator(_target_from_string, json_schema_input_type=HostPortValue | WeightedTarget),
]


class HealthCheck(Strict):
    """Active health checks of every target (HAProxy's inter / rise / fall)."""

    interval: PositiveDuration = Field(default=timedelta(seconds=2), description="Time between checks (jittered).")
    timeout: PositiveDuration = Field(default=timedelta(seconds=1), description="A check slower than this fails.")
    rise: int = Field(default=2, ge=1, le=100, description="Passed checks in a row that mark a target up.")
    fall: int = Field(default=3, ge=1, le=100, description="Failed checks in a row that mark a target down.")
    send: str | None = Field(default=None, description="Bytes to send after connecting (optional).")
    expect: str | None = Field(default=None, description="Bytes the answer must start with (optional).")

    @model_validator(mode="after")
    def _timeout_fits(self) -> HealthCheck:
        if self.timeout > self.interval:
            raise ValueError("timeout must not be longer than interval")
        return self


class OutlierDetection(Strict):
    """Passive checks on live traffic (Envoy's outlier detection): a target whose connects keep failing is taken
    out of the choice for a while, before the active checks notice, or when they cannot (a target that answers
    its check but not its clients)."""

    consecutiveFailures: int = Field(
        default=5, ge=0, le=1000, description="Failed connects in a row that take a target out; 0 turns this off."
    )
    ejectFor: PositiveDuration = Field(
        default=timedelta(seconds=30), description="How long a target stays out before it is tried again."
    )


class App(Strict):
    """One app: its ports and its targets."""

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", description="Unique within the TCPProxy.")
    listen: tuple[ListenAddressValue, ...] = Field(
        min_length=1, description="Addresses and ports ('0.0.0.0:5001', '0.0.0.0:5300-5302')."
    )
    targets: tuple[Target, ...] = Field(
        min_length=1, description="Where connections go: 'host:port' or {address, weight}."
    )
    balance: Balance | None = Field(default=None, description="Overrides the proxy-wide balance for this app.")

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, targets: tuple[WeightedTarget, ...]) -> tuple[WeightedTarget, ...]:
        ensure_unique((str(t.address) for t in targets), "target")
        return targets


class TCPProxySpec(Spec):
    """Apps and how they are balanced and checked."""

    apps: tuple[App, ...] = Field(min_length=1, description="The apps.")
    balance: Balance = Field(default="round-robin", description="How a target is picked for a new connection.")
    healthCheck: HealthCheck = Field(default_factory=HealthCheck, description="Active checks.")
    outlierDetection: OutlierDetection = Field(
        default_factory=OutlierDetection, description="Passive checks: failing targets are taken out for a while."
    )
    connectTimeout: PositiveDuration = Field(
        default=timedelta(seconds=3), description="Give up connecting to a target after this long."
    )
    retries: int = Field(default=2, ge=0, le=10, description="A failed connect tries the next healthy target.")
    idleTimeout: Duration | None = Field(default=None, description="Close connections idle this long.")
    maxConnections: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Per app; beyond it new connections wait (back-pressure).",
    )

    @field_validator("apps")
    @classmethod
    def _unique_apps(cls, apps: tuple[App, ...]) -> tuple[App, ...]:
        ensure_unique((a.name for a in apps), "app")
        return apps


class TCPProxy(Resource):
    """A set of TCP proxy apps."""

    KIND: ClassVar[str] = "TCPProxy"
    kind: Literal["TCPProxy"] = Field(description="TCPProxy.")
    spec: TCPProxySpec = Field(description="The apps.")

    def listeners(self) -> Iterator[Listener]:
        for a, app in enumerate(self.spec.apps):
            owner = f"TCPProxy/{self.metadata.name} app {app.name}"
            for i, address in enumerate(app.listen):
                yield Listener(("spec", "apps", a, "listen", i), address, owner)
