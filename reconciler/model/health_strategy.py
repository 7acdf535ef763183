"""HealthStrategy: how a stream of observations of one target becomes available / unavailable.

Strategies are referenced by name from IPPool (and later other kinds); the state machines live in
``reconciler/health/``. Only the block that matches ``type`` may be given; it defaults to the documented values.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from reconciler.model.common import Resource, Spec, Strict
from reconciler.model.values import PositiveDuration


class ConsecutiveSettings(Strict):
    """Ban a target after N consecutive failures within a time window; bring it back after a cool-down."""

    failures: int = Field(default=3, ge=1, le=10_000, description="Consecutive failed observations that ban a target.")
    within: PositiveDuration = Field(
        default=timedelta(minutes=5), description="The failures must all fall within this window to count."
    )
    cooldown: PositiveDuration = Field(
        default=timedelta(minutes=10),
        description="How long a banned target stays out; its count is then reset.",
    )
    mode: Literal["reach", "exceed"] = Field(
        default="reach",
        description="reach: banned at the failures-th failure in a row; exceed: banned once the count exceeds "
        "failures, at the (failures+1)-th, as ipmanager counted (its consecutive_failure).",
    )

    @property
    def banning(self) -> int:
        """The failure in a row that bans."""
        return self.failures + (1 if self.mode == "exceed" else 0)


class LatencySettings(Strict):
    """Edge-manager style: a target passes while it answers faster than goodEnough."""

    goodEnough: PositiveDuration = Field(
        default=timedelta(milliseconds=700), description="An observation at most this slow is a pass."
    )
    window: PositiveDuration = Field(
        default=timedelta(minutes=10), description="The window over which the mean latency is judged."
    )


class OutlierSettings(Strict):
    """Envoy style outlier ejection: eject for baseEjection x number of ejections, capped."""

    failures: int = Field(default=5, ge=1, le=10_000, description="Consecutive failures that eject a target.")
    baseEjection: PositiveDuration = Field(
        default=timedelta(seconds=30), description="First ejection time; each further ejection adds as much."
    )
    maxEjection: PositiveDuration = Field(default=timedelta(minutes=10), description="Upper bound of one ejection.")
    maxEjectedPercent: int = Field(default=50, ge=0, le=100, description="Never eject more than this share of a set.")

    @model_validator(mode="after")
    def _bounds(self) -> OutlierSettings:
        if self.maxEjection < self.baseEjection:
            raise ValueError("maxEjection must not be shorter than baseEjection")
        return self


class HealthStrategySpec(Spec):
    """Which strategy, and its settings."""

    type: Literal["consecutive", "latency", "outlier"] = Field(description="The strategy.")
    consecutive: ConsecutiveSettings | None = Field(default=None, description="Settings when type is consecutive.")
    latency: LatencySettings | None = Field(default=None, description="Settings when type is latency.")
    outlier: OutlierSettings | None = Field(default=None, description="Settings when type is outlier.")

    @model_validator(mode="after")
    def _only_own_block(self) -> HealthStrategySpec:
        for other in ("consecutive", "latency", "outlier"):
            if other != self.type and getattr(self, other) is not None:
                raise ValueError(f"'{other}' settings given, but type is '{self.type}': remove them or change type")
        return self

    @property
    def settings(self) -> ConsecutiveSettings | LatencySettings | OutlierSettings:
        """The settings of the chosen type, with defaults when the block was left out."""
        given = getattr(self, self.type)
        if given is not None:
            return given  # type: ignore[no-any-return]
        defaults: dict[str, type[ConsecutiveSettings | LatencySettings | OutlierSettings]] = {
            "consecutive": ConsecutiveSettings,
            "latency": LatencySettings,
            "outlier": OutlierSettings,
        }
        return defaults[self.type]()


class HealthStrategy(Resource):
    """A named health strategy."""

    KIND: ClassVar[str] = "HealthStrategy"
    kind: Literal["HealthStrategy"] = Field(description="HealthStrategy.")
    spec: HealthStrategySpec = Field(description="The strategy and its settings.")
