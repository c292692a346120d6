"""Pipes declared in config files: validated with PipeConfig, run by the runtime, drawn by graph."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from eventbus.config import ConfigErrors, Runtime, load_config
from eventbus.config.topology import topology
from eventbus.targets.queue import SqliteQueue
from eventbus.targets.recording import recording_target

PIPE = """\
pipes:
  intake:
    source: {{queue: {{type: sqlite, path: "{db}"}}}}
    filter: [{{body: {{kind: [job]}}}}]
    target: {{bus: {{bus: config-pipes}}}}
    target_input_template: '{{"source": "intake", "detail-type": "Job", "detail": <$.body>}}'
buses:
  config-pipes:
    rules:
      jobs:
        pattern: {{source: [intake]}}
        targets:
          - recording: {{name: config-pipes-jobs}}
            input_path: $.detail
"""


def test_a_pipe_feeds_a_bus(tmp_path: Path) -> None:
    path = tmp_path / "pipe.yaml"
    path.write_text(PIPE.format(db=tmp_path / "intake.db"), encoding="utf-8")
    config = load_config(path)
    received = recording_target("config-pipes-jobs")
    received.clear()

    async def scenario() -> None:
        queue = SqliteQueue(tmp_path / "intake.db")
        for body in ({"kind": "job", "n": 1}, {"kind": "noise"}, {"kind": "job", "n": 2}):
            await queue.send(json.dumps(body))
        await queue.aclose()
        runtime = Runtime([config])
        assert set(runtime.pipes) == {"intake"}
        async with runtime:
            await received.wait_for(lambda payload: True, count=2, timeout=10)

    anyio.run(scenario)
    assert sorted(p["n"] for p in received.payloads) == [1, 2]


def test_pipe_problems_are_reported_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    text = PIPE.format(db=tmp_path / "x.db").replace("{queue:", "{queu:").replace("filter:", "filtre:")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    lines = str(caught.value).splitlines()
    assert any(line.startswith(f"{path}:3 pipes.intake.source: Unknown source kind 'queu'") for line in lines)
    assert f"{path}:4 pipes.intake.filtre: unknown key; did you mean 'filter'?" in lines


def test_graph_draws_source_pipe_and_bus(tmp_path: Path) -> None:
    path = tmp_path / "pipe.yaml"
    path.write_text(PIPE.format(db=tmp_path / "intake.db"), encoding="utf-8")
    mermaid = topology([load_config(path)]).to_mermaid()
    assert "source_intake_source -->|1 filter(s)| pipe_intake" in mermaid
    assert "target_pipe_intake_target -.-> bus_config_pipes" in mermaid


def test_pipes_survive_a_dump_and_load(tmp_path: Path) -> None:
    import yaml

    from eventbus.config import dump

    path = tmp_path / "pipe.yaml"
    path.write_text(PIPE.format(db=tmp_path / "intake.db"), encoding="utf-8")
    first = load_config(path)
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(dump(first)), encoding="utf-8")
    assert load_config(again).model == first.model
