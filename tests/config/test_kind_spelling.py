"""Targets and sources written with a ``kind:`` key load exactly as the ``{KIND: options}`` form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventbus.config import ConfigErrors, dump, load_config

CANONICAL = """\
connections:
  crm: {auth: {type: API_KEY, api_key_name: x-api-key, api_key_value: secret}}
targets:
  failures: {file: {path: failures.jsonl}}
defaults:
  dead_letter: {log: {level: warning}}
buses:
  orders:
    rules:
      big:
        pattern: {source: [shop]}
        targets:
          - id: review
            http: {endpoint: "https://crm.example.com/orders", connection: crm, timeout: 3}
            input_path: $.detail
            dead_letter: {queue: {type: sqlite, path: dlq.db}}
          - ref: failures
pipes:
  intake:
    source: {queue: {type: memory, name: intake}}
    enrichment: {recording: {name: enrich}}
    target: {bus: {bus: orders}}
    dead_letter: {file: {path: pipe-dlq.jsonl}}
"""

KIND_SPELLED = """\
connections:
  crm: {auth: {type: API_KEY, api_key_name: x-api-key, api_key_value: secret}}
targets:
  failures:
    kind: file
    path: failures.jsonl
defaults:
  dead_letter: {kind: log, level: warning}
buses:
  orders:
    rules:
      big:
        pattern: {source: [shop]}
        targets:
          - kind: http
            id: review
            endpoint: "https://crm.example.com/orders"
            connection: crm
            timeout: 3
            input_path: $.detail
            dead_letter: {kind: queue, type: sqlite, path: dlq.db}
          - ref: failures
pipes:
  intake:
    source: {kind: queue, type: memory, name: intake}
    enrichment: {kind: recording, name: enrich}
    target: {kind: bus, bus: orders}
    dead_letter: {kind: file, path: pipe-dlq.jsonl}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_target_and_source_slot_takes_the_kind_spelling(tmp_path: Path) -> None:
    canonical = load_config(_write(tmp_path, "canonical.yaml", CANONICAL))
    spelled = load_config(_write(tmp_path, "spelled.yaml", KIND_SPELLED))
    assert dump(spelled) == dump(canonical)


def test_the_kind_spelling_in_json(tmp_path: Path) -> None:
    data = {
        "buses": {
            "b": {"rules": {"r": {"pattern": {"source": ["s"]}, "targets": [{"kind": "log", "levle": "info"}]}}}
        }
    }
    path = _write(tmp_path, "c.json", json.dumps(data, indent=2))
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:14 buses.b.rules.r.targets[0].levle: unknown key; did you mean 'level'?"
    ]


def test_problems_name_the_keys_and_lines_as_written(tmp_path: Path) -> None:
    text = (
        KIND_SPELLED.replace("            timeout: 3\n", "            timeot: 3\n")
        .replace("path: dlq.db}", "path: dlq.db, visibility: 3}")
        .replace("    target: {kind: bus, bus: orders}", "    target: {kind: buss, bus: orders}")
        .replace("          - ref: failures\n", "          - kind: function\n            function: os:getcwd\n            max_concurrency: 2\n          - kind: 7\n")
    )
    path = _write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:19 buses.orders.rules.big.targets[0].timeot: unknown key; did you mean 'timeout'?",
        f"{path}:21 buses.orders.rules.big.targets[0].dead_letter.visibility: unknown key; "
        "did you mean 'visibility_timeout'?",
        f"{path}:24 buses.orders.rules.big.targets[1].max_concurrency: max_concurrency is both a rule "
        "target setting and an option of kind function: write the target as {function: {...options}} "
        "and put max_concurrency where you mean it",
        f"{path}:25 buses.orders.rules.big.targets[2].kind: kind must name a kind, as a non-empty string",
        f"{path}:30 pipes.intake.target: Unknown target kind 'buss'. Did you mean 'bus'? Known kinds: "
        "bus, cloudevents, command, file, function, http, log, nats, queue, recording, sql",
    ]
