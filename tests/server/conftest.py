from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import LiveServer, Receiver

#: The config most API tests run against: a bus with a config rule, a function, a queue.
CONFIG = """
functions:
  echo: "json:dumps"
targets:
  jobs:
    queue: {type: memory, name: server-test-jobs}
buses:
  orders:
    rules:
      from-config:
        pattern: {source: [shop]}
        targets:
          - log: {}
pipes:
  from-config:
    source: {queue: {type: memory, name: server-test-config-pipe}}
    target: {log: {}}
"""


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("serve")
    config = folder / "orders.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    server = LiveServer([config], cwd=folder)
    yield server
    assert server.stop() == 0, "\n".join(server.lines)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
