"""Distributed maps: every row of a CSV or JSON Lines file through a target, many at once.

``MapConfig`` declares a map (in Python or under ``maps:`` in a config file), ``Map`` runs one
and ends with a ``MapSummary``. A map is Step Functions' Distributed Map over an S3 CSV, in this
project's terms: see docs/map.md.
"""

from __future__ import annotations

from eventbus.maps.checkpoint import MapCheckpoint, MemoryCheckpoint, SavedPosition
from eventbus.maps.config import MAX_CONCURRENCY, MapConfig, MapFileSource, MapRetryPolicy, MapSource
from eventbus.maps.dispatch import LocalDispatcher, RowDispatcher
from eventbus.maps.map import Map, ResultNotJsonError
from eventbus.maps.rows import MALFORMED_ROW, MalformedRowError, Position, Row, RowFailure
from eventbus.maps.summary import MAX_LISTED_FAILURES, MapStatus, MapSummary

__all__ = [
    "MALFORMED_ROW",
    "MAX_CONCURRENCY",
    "MAX_LISTED_FAILURES",
    "LocalDispatcher",
    "MalformedRowError",
    "Map",
    "MapCheckpoint",
    "MapConfig",
    "MapFileSource",
    "MapRetryPolicy",
    "MapSource",
    "MapStatus",
    "MapSummary",
    "MemoryCheckpoint",
    "Position",
    "ResultNotJsonError",
    "Row",
    "RowDispatcher",
    "RowFailure",
    "SavedPosition",
]
