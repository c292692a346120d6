"""Draw a handful of values from a strategy outside a ``@given`` test, reproducibly.

``strategy.example()`` is meant for the interactive prompt (it warns elsewhere and is not
reproducible); running a tiny ``@given`` function with a fixed seed and no example database
gives the same values every time and goes through hypothesis's ordinary engine.
"""

from __future__ import annotations

from typing import TypeVar

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as fixed_seed
from hypothesis import strategies as st

__all__ = ["sample"]

T = TypeVar("T")


def sample(strategy: st.SearchStrategy[T], count: int, seed: int) -> list[T]:
    """Up to ``count`` values (fewer when the strategy has fewer distinct ones)."""
    found: list[T] = []

    @fixed_seed(seed)
    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: T) -> None:
        found.append(value)

    collect()
    return found[:count]
