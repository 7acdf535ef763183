"""The strategy registry: every type a HealthStrategy may name has a strategy, each strategy's state codec round
trips, and the pool's own code finds a state's strategy without knowing the types."""

from __future__ import annotations

import typing

import pytest

from reconciler.health.base import Observation, Verdict
from reconciler.health.registry import STRATEGIES, strategy_of
from reconciler.model.health_strategy import HealthStrategySpec


def test_every_type_of_the_model_has_a_strategy() -> None:
    named = typing.get_args(HealthStrategySpec.model_fields["type"].annotation)
    assert sorted(named) == sorted(STRATEGIES)


@pytest.mark.parametrize("kind", sorted(STRATEGIES))
def test_a_state_after_failures_round_trips_and_names_its_strategy(kind: str) -> None:
    strategy = STRATEGIES[kind]
    settings = HealthStrategySpec.model_validate({"type": kind}).settings
    state = strategy.initial()
    for at in range(1, 8):
        state = strategy.step(state, Observation(False, float(at), 9.0), settings=settings, now=float(at), others=[])
    assert strategy_of(state) is strategy
    again = strategy.from_json(strategy.to_json(state), state.verdict)
    assert again == state
    assert strategy.in_a_row(again) == strategy.in_a_row(state)
    assert strategy.cooldown_until(again) == strategy.cooldown_until(state)


def test_a_state_of_no_strategy_is_refused() -> None:
    with pytest.raises(TypeError, match="is no strategy's state"):
        strategy_of(Verdict(True))
