"""Config tests that run pipes: records in place of the source, stages recorded, buses chained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from eventbus.config import ConfigErrors
from eventbus.config.testing import CaseResult, run_test_file
from eventbus.targets.queue import memory_queue

JOBS = """\
pipes:
  intake:
    source: {queue: {type: sqlite, path: "DB"}}
    filter: [{body: {kind: [job]}}]
    target: {bus: {bus: jobs}}
    target_input_template: '{"source": "intake", "detail-type": "Job", "detail": <$.body>}'
  raw:
    source: {queue: {type: memory, name: config-tests-raw}}
    target: {log: {}}
buses:
  jobs:
    rules:
      urgent:
        pattern: {source: [intake], detail: {priority: [{numeric: [">=", 8]}]}}
        targets:
          - id: page
            log: {}
            input_transformer:
              input_paths_map: {id: $.detail.id}
              input_template: '{"page": <id>}'
      all:
        pattern: {source: [intake]}
        targets:
          - id: archive
            log: {}
            input_path: $.detail.id
"""


def write(tmp_path: Path, config: str, tests: str) -> Path:
    (tmp_path / "c.yaml").write_text(config.replace("DB", str(tmp_path / "intake.db")), encoding="utf-8")
    (tmp_path / "c.test.yaml").write_text(tests, encoding="utf-8")
    return tmp_path / "c.yaml"


def run(tmp_path: Path, config: str, tests: str) -> list[CaseResult]:
    return run_test_file(write(tmp_path, config, tests))


def problems(tmp_path: Path, config: str, tests: str) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        run(tmp_path, config, tests)
    return str(caught.value).replace(f"{tmp_path}/", "").splitlines()


def test_a_record_flows_through_the_pipe_to_the_rules_of_the_bus_it_feeds(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        JOBS,
        """\
tests:
  - name: urgent job
    pipe: intake
    strict: true
    records: [{kind: job, id: j-1, priority: 9}]
    expect:
      pipe/intake/target:
        - {source: intake, detail-type: Job, detail: {kind: job, id: j-1, priority: 9}}
      jobs/urgent/page: [{page: j-1}]
      jobs/all/archive: [j-1]
""",
    )
    assert result.failures == []
    # The sqlite queue the config names was never opened: the records came from the case.
    assert not (tmp_path / "intake.db").exists()


def test_a_failing_pipe_case_says_what_each_target_received(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        JOBS,
        """\
tests:
  - name: wrong priority expected
    pipe: intake
    records: [{kind: job, id: j-2, priority: 3}]
    expect:
      jobs/urgent/page: [{page: j-2}]
      jobs/all/archive: [j-3]
""",
    )
    assert result.failures == [
        'jobs/all/archive: expected the payload "j-3"; received ["j-2"]',
        'jobs/urgent/page: expected 1 payload(s), received 0: []\n        not received: the payload {"page": "j-2"}',
    ]


def test_the_filter_drops_records_before_any_target(tmp_path: Path) -> None:
    passing, failing = run(
        tmp_path,
        JOBS,
        """\
tests:
  - name: only the job gets through
    pipe: intake
    strict: true
    records:
      - {kind: report, id: r-1}
      - not JSON at all
      - '{"kind": "job", "id": "j-3", "priority": 1}'
    expect:
      pipe/intake/target: [{pattern: {detail: {id: [j-3]}}}]
      jobs/all/archive: [j-3]
  - name: strict notices what was not filtered
    pipe: intake
    strict: true
    records: [{kind: job, id: j-4}]
    expect: {}
""",
    )
    assert passing.failures == []
    assert failing.failures == [
        'jobs/all/archive: expected nothing, received ["j-4"]',
        failing.failures[1],
    ]
    assert failing.failures[1].startswith(
        'pipe/intake/target: expected nothing, received [{"source": "intake"'
    )


def test_queue_records_are_sqs_messages_from_a_queue_of_the_cases_own(tmp_path: Path) -> None:
    shared = memory_queue("config-tests-raw")

    async def put_one() -> None:
        await shared.send("left in the shared queue")

    anyio.run(put_one)
    (result,) = run(
        tmp_path,
        JOBS,
        """\
tests:
  - name: the target sees SQS-shaped records
    pipe: raw
    strict: true
    records: [{kind: job, id: j-5}, plain text]
    expect:
      pipe/raw/target:
        - pattern:
            eventSource: [aws:sqs]
            eventSourceARN: ["arn:aws:sqs:us-east-1:123456789012:config-tests-raw"]
            body: ['{"kind":"job","id":"j-5"}']
            messageId: [{exists: true}]
            receiptHandle: [{exists: true}]
            md5OfBody: [{exists: true}]
            attributes: {ApproximateReceiveCount: ["1"]}
        - pattern: {body: [plain text]}
""",
    )
    assert result.failures == []
    assert shared.approximate_count == 1, "the process-wide queue of that name is left alone"


SHAPES = """\
pipes:
  hook:
    source: {webhook: {name: orders-hook, path: /orders}}
    target: {log: {}}
  rows:
    source: {file: {path: does-not-exist.csv}}
    target: {log: {}}
  stream:
    source: {nats: {stream: ORDERS, subject: orders.placed}}
    target: {log: {}}
  inbox:
    source: {directory: {path: inbox}}
    filter: [{detail: {object: {key: [{suffix: .csv}]}}}]
    target: {log: {}}
  tick:
    source: {schedule: {schedule_expression: rate(1 day)}}
    target: {log: {}}
"""


@pytest.mark.parametrize(
    ("pipe", "records", "expected"),
    [
        (
            "hook",
            [{"id": "o-1"}, "hello"],
            [
                {
                    "eventSource": ["eventbus:webhook"],
                    "body": ['{"id":"o-1"}'],
                    "attributes": {"ContentType": ["application/json"], "Path": ["/orders"]},
                    "eventSourceARN": [{"suffix": ":orders-hook"}],
                },
                {"body": ["hello"], "attributes": {"ContentType": ["text/plain"]}},
            ],
        ),
        (
            "rows",
            [{"id": "o-1"}, {"id": "o-2"}],
            [
                {
                    "eventSource": ["eventbus:file"],
                    "eventID": ["does-not-exist.csv:2"],
                    "lineNumber": [2],
                    "fileName": ["does-not-exist.csv"],
                    "data": ['{"id":"o-1"}'],
                },
                {"eventID": ["does-not-exist.csv:3"], "data": ['{"id":"o-2"}']},
            ],
        ),
        (
            "stream",
            ["raw text"],
            [{"eventSource": ["eventbus:nats"], "subject": ["orders.placed"], "data": ["raw text"]}],
        ),
        (
            "inbox",
            [{"object": {"key": "in/a.csv", "size": 3}}, {"object": {"key": "in/b.txt", "size": 3}}],
            [
                {
                    "source": ["aws.s3"],
                    "detail-type": ["Object Created"],
                    "resources": ["arn:aws:s3:::inbox"],
                    "detail": {"bucket": {"name": ["inbox"]}, "object": {"key": ["in/a.csv"]}},
                }
            ],
        ),
        (
            "tick",
            [{"report": "daily"}],
            [{"source": ["aws.events"], "detail-type": ["Scheduled Event"], "detail": {"report": ["daily"]}}],
        ),
    ],
)
def test_records_are_shaped_as_the_configured_source_kind_shapes_them(
    tmp_path: Path, pipe: str, records: list[Any], expected: list[dict[str, Any]]
) -> None:
    case = {
        "name": pipe,
        "pipe": pipe,
        "strict": True,
        "records": records,
        "expect": {f"pipe/{pipe}/target": [{"pattern": p} for p in expected]},
    }
    (result,) = run(tmp_path, SHAPES, json.dumps({"tests": [case]}))
    assert result.failures == []


def test_a_file_the_source_could_not_read_fails_the_case_as_the_source_would(tmp_path: Path) -> None:
    config = SHAPES.replace("does-not-exist.csv", "rows.dat")
    case = {"name": "rows", "pipe": "rows", "records": [{"id": "o-1"}]}
    (result,) = run(tmp_path, config, json.dumps({"tests": [case]}))
    assert result.failures == [
        "ConfigError: Cannot tell the format of 'rows.dat': set format to 'csv' or 'jsonl'"
    ]
    # A JSON Lines file numbers its rows from line 1 (a CSV file's line 1 is its header).
    case["expect"] = {"pipe/rows/target": [{"pattern": {"eventID": ["rows.dat:1"], "lineNumber": [1]}}]}
    (result,) = run(tmp_path, config.replace("path: rows.dat", "path: rows.dat, format: jsonl"), json.dumps({"tests": [case]}))
    assert result.failures == []


ENRICHED = """\
pipes:
  enriched:
    source: {queue: {type: memory, name: config-tests-enriched}}
    enrichment: {http: {endpoint: "http://127.0.0.1:9/never-called"}}
    enrichment_input_template: '{"id": <$.body.id>}'
    target: {log: {}}
    target_input_template: '{"id": <$.id>, "owner": <$.owner>}'
    dead_letter: {log: {}}
"""


def test_the_enrichment_answers_what_the_case_gives_one_answer_a_record(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        ENRICHED,
        """\
tests:
  - name: answers, a skip and a fan-out
    pipe: enriched
    strict: true
    records: [{id: a}, {id: b}, {id: c}]
    enrichment:
      - {id: a, owner: ops}
      - {}
      - [{id: c, owner: dev}, {id: c, owner: qa}]
    expect:
      # An http enrichment is invoked once with the batch as one array: one list a call.
      pipe/enriched/enrichment: [[{id: a}, {id: b}, {id: c}]]
      pipe/enriched/target:
        - {id: a, owner: ops}
        - {id: c, owner: dev}
        - {id: c, owner: qa}
""",
    )
    assert result.failures == []


def test_without_answers_the_enrichment_passes_its_input_through(tmp_path: Path) -> None:
    # The target template wants an owner the pass-through input lacks: the record fails for good.
    (result,) = run(
        tmp_path,
        ENRICHED.replace("<$.owner>", '"nobody"'),
        """\
tests:
  - name: pass-through
    pipe: enriched
    strict: true
    records: [{id: a}]
    expect:
      pipe/enriched/enrichment: [[{id: a}]]
      pipe/enriched/target: [{id: a, owner: nobody}]
""",
    )
    assert result.failures == []


def test_a_record_the_bus_refuses_is_dead_lettered_and_the_case_still_settles(tmp_path: Path) -> None:
    # The bus target is real: a payload that is not an event fails it for good.
    config = JOBS.replace(
        """'{"source": "intake", "detail-type": "Job", "detail": <$.body>}'""",
        """'{"not": "an event", "id": <$.body.id>}'\n    dead_letter: {log: {}}""",
    )
    (result,) = run(
        tmp_path,
        config,
        """\
tests:
  - name: refused
    pipe: intake
    strict: true
    records: [{kind: job, id: j-6}]
    expect:
      pipe/intake/dead-letter:
        - pattern: {body: ['{"kind":"job","id":"j-6"}']}
""",
    )
    assert result.failures == []


def test_a_pipe_declared_stopped_is_started_for_its_cases(tmp_path: Path) -> None:
    config = JOBS.replace("  raw:\n", "  raw:\n    desired_state: STOPPED\n")
    (result,) = run(
        tmp_path,
        config,
        "tests:\n  - name: s\n    pipe: raw\n    records: [x]\n    expect:\n      pipe/raw/target: [{pattern: {body: [x]}}]\n",
    )
    assert result.failures == []


CHAINED = """\
buses:
  front:
    rules:
      forward:
        pattern: {source: [shop]}
        targets:
          - id: to-back
            bus: {bus: back}
          - id: elsewhere
            bus: {bus: not-in-this-config}
  back:
    rules:
      orders:
        pattern: {source: [shop]}
        targets:
          - id: store
            log: {}
            input_path: $.detail.id
"""


def test_rule_targets_to_a_bus_of_the_same_config_deliver_for_real_and_are_recorded(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        CHAINED,
        """\
tests:
  - name: front forwards to back
    bus: front
    strict: true
    events: [{source: shop, detail-type: Order, detail: {id: o-1}}]
    expect:
      front/forward/to-back: [{pattern: {detail: {id: [o-1]}}}]
      front/forward/elsewhere: [{pattern: {detail: {id: [o-1]}}}]
      back/orders/store: [o-1]
""",
    )
    assert result.failures == []


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "    records: [x]\n",
            "c.test.yaml:3 tests[0].records: records are read by a pipe: name it with `pipe: NAME` "
            "(c.yaml declares intake, raw)",
        ),
        (
            "    pipe: intak\n    records: [x]\n",
            "c.test.yaml:3 tests[0].pipe: no pipe named 'intak' in c.yaml; did you mean 'intake'?",
        ),
        (
            "    pipe: zzz\n    records: [x]\n",
            "c.test.yaml:3 tests[0].pipe: no pipe named 'zzz' in c.yaml; it declares intake, raw",
        ),
        (
            "    pipe: intake\n    events: [{source: a, detail-type: b, detail: {}}]\n    records: [x]\n",
            "c.test.yaml:5 tests[0].records: a case has `events` (put on a bus) or `records` "
            "(read by a pipe), not both: split it into two cases",
        ),
        (
            "    pipe: intake\n    events: [{source: a, detail-type: b, detail: {}}]\n",
            "c.test.yaml:4 tests[0].events: `pipe: intake` reads `records` (what its source delivers), "
            "not `events`: rename `events` to `records`, or drop `pipe` to put the events on a bus",
        ),
        (
            "    pipe: intake\n",
            "c.test.yaml:2 tests[0]: `pipe: intake` needs `records`: what its source delivers, "
            "one item a message",
        ),
        (
            "    strict: true\n",
            "c.test.yaml:2 tests[0]: a case needs `events` (put on a bus) or `pipe` with `records` "
            "(read by that pipe)",
        ),
        (
            "    bus: jobs\n    pipe: intake\n    records: [x]\n",
            "c.test.yaml:3 tests[0].bus: a case runs a bus or a pipe, not both: drop `bus` "
            "(the buses a pipe feeds run anyway)",
        ),
        (
            "    pipe: intake\n    records: [x]\n    enrichment: [y]\n",
            "c.test.yaml:5 tests[0].enrichment: pipe intake has no enrichment: drop `enrichment`",
        ),
        (
            "    pipe: intake\n    records: [2026-01-01]\n",
            "c.test.yaml:4 tests[0].records[0]: not a JSON value (Object of type date is not JSON "
            "serializable); quote it to send it as text",
        ),
        (
            "    events: [{source: a, detail-type: b, detail: {}}]\n    expect: {pipe/intake/target: []}\n",
            "c.test.yaml:4 tests[0].expect.pipe/intake/target: pipe/intake/target is a stage of pipe "
            "'intake', which this case does not run (it puts events on a bus); test it in a case with "
            "`pipe: intake` and `records:`",
        ),
        (
            "    pipe: raw\n    records: [x]\n    expect: {pipe/intake/taget: []}\n",
            "c.test.yaml:5 tests[0].expect.pipe/intake/taget: no target 'pipe/intake/taget' in c.yaml; "
            "did you mean 'pipe/intake/target'?",
        ),
    ],
)
def test_misused_cases_are_reported_with_line_and_fix(tmp_path: Path, case: str, expected: str) -> None:
    assert problems(tmp_path, JOBS, f"tests:\n  - name: x\n{case}") == [expected]


def test_enrichment_answers_and_event_kind_records_are_checked(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        ENRICHED + SHAPES.removeprefix("pipes:\n"),
        """\
tests:
  - name: too few answers
    pipe: enriched
    records: [{id: a}, {id: b}]
    enrichment: [{id: a}]
  - name: a folder delivers events
    pipe: inbox
    records: [{object: {key: a.csv}}, a.csv]
""",
    )
    assert found == [
        "c.test.yaml:5 tests[0].enrichment: `enrichment` gives one answer for each record that reaches "
        "the enrichment, in order: 2 record(s) reach it, 1 answer(s) given",
        "c.test.yaml:8 tests[1].records[1]: pipe inbox reads a directory source, whose records are "
        "S3 'Object Created' events: each record is the event's detail, a mapping, not a string",
    ]


def test_records_without_any_pipe_in_the_config(tmp_path: Path) -> None:
    assert problems(tmp_path, CHAINED, "tests:\n  - name: x\n    records: [x]\n") == [
        "c.test.yaml:3 tests[0].records: records are read by a pipe and c.yaml declares none: "
        "put `events` on a bus"
    ]


def test_records_that_never_settle_fail_the_case_after_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both the target and the dead letter are the real jobs bus, which refuses what is not an
    # event: the record goes back to the queue again and again.
    monkeypatch.setattr("eventbus.config.testing.CASE_TIMEOUT", 1.0)
    config = JOBS.replace(
        """'{"source": "intake", "detail-type": "Job", "detail": <$.body>}'""",
        """'{"not": "an event"}'\n    dead_letter: {bus: {bus: jobs}}""",
    )
    (result,) = run(
        tmp_path, config, "tests:\n  - name: stuck\n    pipe: intake\n    records: [{kind: job}]\n"
    )
    (failure,) = result.failures
    assert failure.startswith("pipe intake: 1 of 1 record(s) still unsettled after 1 s (received ")
    assert "dead_letter_failed" in failure and "dead_lettered" not in failure
