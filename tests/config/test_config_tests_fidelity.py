"""Config tests see what real targets see: batches as one list, failures on demand, clear diffs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from eventbus.config import ConfigErrors
from eventbus.config.testing import CaseResult, run_test_file

ORDERS = """\
buses:
  orders:
    rules:
      placed:
        pattern: {source: [shop]}
        targets:
          - id: charge
            function: {function: "os:getcwd"}
            retry_policy: {MaximumRetryAttempts: 5}
            dead_letter: {log: {}}
          - id: archive
            file: {path: orders.jsonl}
pipes:
  intake:
    source: {queue: {type: memory, name: fidelity-intake}}
    filter: [{body: {kind: [job]}}]
    enrichment: {function: {function: "os:getcwd"}}
    enrichment_input_template: '{"id": <$.body.id>}'
    target: {function: {function: "os:getcwd"}}
    dead_letter: {queue: {type: memory, name: fidelity-dlq}}
    batch_size: 10
"""


def run(tmp_path: Path, tests: str, config: str = ORDERS) -> list[CaseResult]:
    (tmp_path / "c.yaml").write_text(config, encoding="utf-8")
    (tmp_path / "c.test.yaml").write_text(tests, encoding="utf-8")
    return run_test_file(tmp_path / "c.yaml")


def problems(tmp_path: Path, tests: str) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        run(tmp_path, tests)
    return str(caught.value).replace(f"{tmp_path}/", "").splitlines()


def test_a_function_stage_of_a_pipe_is_recorded_one_list_a_call(tmp_path: Path) -> None:
    # A pipe invokes a function (command, http) target once with the batch as one JSON array:
    # the case compares that array, not its elements one by one.
    (result,) = run(
        tmp_path,
        """\
tests:
  - name: two jobs, one batch
    pipe: intake
    records: [{kind: job, id: 1}, {kind: job, id: 2}]
    expect:
      pipe/intake/enrichment:           # one call: the batch, as one list
        - [{id: 1}, {id: 2}]
      pipe/intake/target:               # the enrichment passed its input through
        - [{id: 1}, {id: 2}]
""",
    )
    assert result.failures == []


def test_a_batch_may_be_expected_element_by_element_with_patterns(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        config=ORDERS.replace('    enrichment: {function: {function: "os:getcwd"}}\n', "").replace(
            "    enrichment_input_template: '{\"id\": <$.body.id>}'\n", ""
        ),
        tests="""\
tests:
  - name: the function gets SQS records
    pipe: intake
    records: [{kind: job, id: 1}, {kind: job, id: 2}]
    expect:
      pipe/intake/target:
        - - pattern: {eventSource: [aws:sqs], body: ['{"kind":"job","id":1}']}
          - pattern: {eventSource: [aws:sqs], body: [{prefix: '{"kind":"job","id":2'}]}
""",
    )
    assert result.failures == []


def test_a_payload_that_differs_is_shown_as_a_diff(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        """\
tests:
  - name: wrong id
    pipe: intake
    records: [{kind: job, id: 1}]
    enrichment: [{id: 1, priority: 9}]
    expect:
      pipe/intake/target:
        - [{id: 1, priority: "9"}]
""",
    )
    assert result.failures == [
        'pipe/intake/target: expected the payload [{"id": 1, "priority": "9"}]; '
        'received [[{"id": 1, "priority": 9}]]\n'
        "        the closest payload received differs (- expected, + received):\n"
        "          [\n"
        "            {\n"
        '              "id": 1,\n'
        '        -     "priority": "9"\n'
        '        +     "priority": 9\n'
        "            }\n"
        "          ]"
    ]


def test_counts_that_differ_list_what_is_missing_and_what_is_extra(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        """\
tests:
  - name: one too many
    events: [{source: shop, detail-type: OrderPlaced, detail: {id: o-1}}]
    expect:
      orders/placed/archive:
        - pattern: {detail: {id: [o-2]}}
        - pattern: {detail: {id: [o-1]}}
""",
    )
    [failure] = result.failures
    lines = failure.splitlines()
    assert lines[0].startswith("orders/placed/archive: expected 2 payload(s), received 1: [{")
    assert lines[1:] == ['        not received: a payload matching {"detail": {"id": ["o-2"]}}']


def test_a_pattern_that_matches_nothing_says_why_for_the_closest_payload(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        """\
tests:
  - name: wrong id
    events: [{source: shop, detail-type: OrderPlaced, detail: {id: o-1}}]
    expect:
      orders/placed/archive: [{pattern: {detail: {id: [o-2]}}}]
""",
    )
    [failure] = result.failures
    assert failure.splitlines()[-1].endswith('does not match: detail.id: "o-2" did not match "o-1"')


def test_enrichment_answers_are_for_the_records_that_pass_the_filter(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        """\
tests:
  - name: the report is filtered out before the enrichment
    pipe: intake
    records: [{kind: job, id: 1}, {kind: report, id: 2}, {kind: job, id: 3}]
    enrichment:
      - {id: 1, owner: ops}
      - {id: 3, owner: dev}
    expect:
      pipe/intake/enrichment: [[{id: 1}, {id: 3}]]
      pipe/intake/target: [[{id: 1, owner: ops}, {id: 3, owner: dev}]]
""",
    )
    assert result.failures == []
    assert problems(
        tmp_path,
        """\
tests:
  - name: one answer for the filtered report too
    pipe: intake
    records: [{kind: job, id: 1}, {kind: report, id: 2}, {kind: job, id: 3}]
    enrichment: [{id: 1}, {}, {id: 3}]
""",
    ) == [
        "c.test.yaml:5 tests[0].enrichment: `enrichment` gives one answer for each record that reaches "
        "the enrichment, in order: 2 record(s) reach it (1 of the 3 filtered out: records[1]), "
        "3 answer(s) given"
    ]


def test_a_target_failing_a_few_times_is_retried_and_then_delivered(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        """\
tests:
  - name: the card is declined three times, then charged
    events: [{source: shop, detail-type: OrderPlaced, detail: {id: o-1}}]
    fail: {orders/placed/charge: 3}
    expect:
      orders/placed/charge: [{pattern: {detail: {id: [o-1]}}}]
      orders/placed/charge/dead-letter: []
""",
    )
    assert result.failures == []


def test_a_target_failing_always_dead_letters_after_its_retries(tmp_path: Path) -> None:
    started = time.monotonic()
    first, second = run(
        tmp_path,
        """\
tests:
  - name: five retries, then the dead letter
    events: [{source: shop, detail-type: OrderPlaced, detail: {id: o-1}}]
    fail: {orders/placed/charge: always}
    expect:
      orders/placed/charge: []
      orders/placed/charge/dead-letter: [{pattern: {detail: {id: [o-1]}}}]
      orders/placed/archive: [{pattern: {detail: {id: [o-1]}}}]
  - name: a pipe's target failing always, with the default 185 retries
    pipe: intake
    records: [{kind: job, id: 7}]
    fail: {pipe/intake/target: always}
    expect:
      pipe/intake/target: []
      pipe/intake/dead-letter: [{pattern: {body: ['{"kind":"job","id":7}']}}]
""",
    )
    assert first.failures == [] and second.failures == []
    # Retries wait milliseconds in a case, whatever the configured backoff.
    assert time.monotonic() - started < 8


def test_fail_names_targets_that_exist_and_says_how_often(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """\
tests:
  - name: typo
    events: [{source: shop, detail-type: OrderPlaced, detail: {}}]
    fail: {orders/placed/charg: always}
""",
    ) == [
        "c.test.yaml:4 tests[0].fail.orders/placed/charg: no target 'orders/placed/charg' in c.yaml; "
        "did you mean 'orders/placed/charge'?"
    ]
    assert problems(
        tmp_path,
        """\
tests:
  - name: zero
    events: [{source: shop, detail-type: OrderPlaced, detail: {}}]
    fail: {orders/placed/archive: 0, orders/placed/charge: sometimes}
""",
    ) == [
        "c.test.yaml:4 tests[0].fail.orders/placed/archive: how many attempts of each event or record "
        "fail: a whole number from 1, or always; not 0",
        "c.test.yaml:4 tests[0].fail.orders/placed/charge: how many attempts of each event or record "
        "fail: a whole number from 1, or always; not 'sometimes'",
    ]
