"""Fixtures for the JetStream backend's tests: real nats-server processes, asyncio only."""

from __future__ import annotations

import itertools
import os

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # nats-py runs on asyncio only


_prefixes = itertools.count()


@pytest.fixture
def prefix() -> str:
    """A deployment prefix of this test's own: its streams and buckets are nobody else's."""
    return f"T{os.getpid()}-{next(_prefixes)}"
