"""The slots' retry backoff: doubling with jitter, capped, reset."""

from __future__ import annotations

import random

from reconciler.agent.backoff import Backoff


def test_backoff_doubles_with_jitter_and_resets() -> None:
    """Delays double up to the cap, each within [50 %, 100 %] of the nominal value; reset starts over."""
    backoff = Backoff(base=1.0, cap=8.0, rng=random.Random(1))
    delays = [backoff.next() for _ in range(6)]
    for delay, nominal in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert nominal / 2 <= delay <= nominal
    backoff.reset()
    assert backoff.next() <= 1.0
