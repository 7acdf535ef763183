"""The one backoff helper: exponential delays with full jitter, reset on success."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """``next()`` gives base x 2^failures (capped), randomised within [50 %, 100 %] so agents spread out."""

    base: float = 1.0
    cap: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next(self) -> float:
        delay = min(self.cap, self.base * (2**self.failures))
        self.failures += 1
        return float(delay * (0.5 + self.rng.random() / 2))

    def reset(self) -> None:
        self.failures = 0
