"""Fixtures for the map tests: asyncio by default (one test runs a map on trio too)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """A CSV file as the csv module writes it (quoting what needs it)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def numbered_csv(path: Path, count: int) -> Path:
    """``id,name`` with ids 1..count, one row a line (row ``i`` on line ``i + 1``)."""
    path.write_text("id,name\n" + "".join(f"{i},name-{i}\n" for i in range(1, count + 1)), encoding="utf-8")
    return path
