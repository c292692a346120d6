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


REF_PIPE = """\
targets:
  failures:
    file: {{path: "{dead}", format: record}}
buses:
  jobs-ref:
    rules:
      all:
        pattern: {{source: [jobs]}}
        targets:
          - ref: failures
pipes:
  intake:
    source: {{queue: {{type: memory, name: ref-pipe-intake}}}}
    target: {{function: {{function: "{module}:refuse"}}}}
    dead_letter: {{ref: failures}}
    retry_policy: {{maximum_retry_attempts: 0}}
"""


def test_ref_names_a_shared_target_in_a_pipe_stage(tmp_path: Path) -> None:
    from eventbus.config import dump
    from eventbus.targets.queue import memory_queue

    (tmp_path / "ref_pipe_functions.py").write_text(
        "from eventbus import NonRetryableError\n"
        "def refuse(batch):\n    raise NonRetryableError('no thanks')\n",
        encoding="utf-8",
    )
    path = tmp_path / "ref.yaml"
    dead = tmp_path / "failures.jsonl"
    path.write_text(
        "runtime: {python_path: [.]}\n" + REF_PIPE.format(dead=dead, module="ref_pipe_functions"),
        encoding="utf-8",
    )
    config = load_config(path)
    assert dump(config)["pipes"]["intake"]["dead_letter"] == {"ref": "failures"}

    async def scenario() -> None:
        await memory_queue("ref-pipe-intake").send('{"job": 1}')
        runtime = Runtime([config])
        # One target for every use: the rule's and the pipe's share the same file writer.
        rule_use, pipe_use = runtime.targets["jobs-ref/all/failures"], runtime.targets["pipe/intake/dead-letter"]
        assert rule_use.shared is pipe_use.shared  # type: ignore[attr-defined]
        async with runtime:
            pipe = runtime.pipes["intake"]
            with anyio.fail_after(10):
                while pipe.metrics()["dead_lettered"] < 1:
                    await anyio.sleep(0.01)

    anyio.run(scenario)
    [line] = dead.read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    assert record["kind"] == "dead-letter" and json.loads(record["payload"]["body"]) == {"job": 1}
    assert record["attributes"]["ERROR_MESSAGE"] == "no thanks"


def test_ref_problems_in_pipes_are_reported_once_with_their_fix(tmp_path: Path) -> None:
    path = tmp_path / "bad-ref.yaml"
    path.write_text(
        "targets:\n"
        "  failures: {file: {path: f.jsonl}}\n"
        "pipes:\n"
        "  intake:\n"
        "    source: {queue: {type: memory, name: q}}\n"
        "    target: {ref: failurs}\n"
        "    dead_letter: {ref: failures, file: {path: x.jsonl}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:7 pipes.intake.dead_letter: dead_letter as a named target is {{ref: NAME}} alone (a "
        "target declared under the file's targets:), with NAME a non-empty string; got keys ['file', 'ref']",
    ]
    path.write_text(path.read_text(encoding="utf-8").replace(", file: {path: x.jsonl}", ""), encoding="utf-8")
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:6 pipes.intake.target.ref: no target named 'failurs'; did you mean 'failures'?"
    ]


def test_a_pipe_built_from_python_cannot_resolve_a_ref() -> None:
    from eventbus.errors import ConfigError
    from eventbus.pipes import Pipe, PipeConfig, TargetRef

    config = PipeConfig(name="p", source={"queue": {"type": "memory", "name": "q"}}, target={"ref": "failures"})
    assert config.target == TargetRef(ref="failures")
    with pytest.raises(ConfigError, match=r"\{ref: failures\} names a target of a config file's targets"):
        Pipe(config)
