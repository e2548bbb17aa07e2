"""Seeded randomness: every random thing in emkit comes from one ``random_state``."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["child_rngs", "seed_sequence"]


def seed_sequence(random_state) -> np.random.SeedSequence:
    """A SeedSequence from None, an int, a SeedSequence, a Generator or a RandomState."""
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, np.random.SeedSequence):
        # A copy: spawning advances the caller's sequence, and the same value must
        # give the same result every time.
        return np.random.SeedSequence(
            random_state.entropy,
            spawn_key=random_state.spawn_key,
            pool_size=random_state.pool_size,
        )
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be non-negative, got {random_state}")
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(random_state.integers(0, 2**63, size=4).tolist())
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(random_state.randint(0, 2**31 - 1, size=4).tolist())
    raise TypeError(
        "random_state must be None, an int, a numpy Generator, RandomState or SeedSequence; "
        f"got {type(random_state).__name__}"
    )


def child_rngs(random_state, n: int) -> list[np.random.Generator]:
    """``n`` independent generators spawned from ``random_state`` (the first is the same for any n)."""
    return [np.random.default_rng(s) for s in seed_sequence(random_state).spawn(n)]
