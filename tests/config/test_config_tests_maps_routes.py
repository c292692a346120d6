"""Config tests that run a map over rows of their own, and call invoke routes through the front."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eventbus.config import ConfigErrors
from eventbus.config.testing import CaseResult, run_test_file

FUNCTIONS = '''\
def double(row):
    n = int(row["n"])
    if n < 0:
        raise ValueError(f"negative: {n}")
    return {"n": n, "twice": 2 * n, "type": type(row["n"]).__name__}


def total(results):
    raise AssertionError("a case records the reduce function, it never calls it")


async def echo(value):
    return {"echo": value}
'''

CONFIG = """\
runtime: {python_path: ["."]}
maps:
  double:
    source: {file: {path: data/numbers.csv}}
    target: {function: {function: "casefns:double"}}
    retry_policy: {maximum_retry_attempts: 1}
    reduce: {function: {function: "casefns:total"}}
    dead_letter: {log: {}}
  lines:
    source: {file: {path: in.jsonl}}
    target: {function: {function: "casefns:double"}}
    reduce: {file: {path: out.jsonl}}
invoke:
  routes:
    echo:
      target: {function: {function: "casefns:echo"}}
      api_keys: [k-1]
      max_body_bytes: 64
      cache: {ttl: 1}
    logged:
      target: {log: {}}
"""


def write(tmp_path: Path, tests: str, config: str = CONFIG) -> Path:
    (tmp_path / "casefns.py").write_text(FUNCTIONS, encoding="utf-8")
    (tmp_path / "c.yaml").write_text(config, encoding="utf-8")
    (tmp_path / "c.test.yaml").write_text(tests, encoding="utf-8")
    return tmp_path / "c.yaml"


def run(tmp_path: Path, tests: str) -> list[CaseResult]:
    return run_test_file(write(tmp_path, tests))


def problems(tmp_path: Path, tests: str) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        run(tmp_path, tests)
    return str(caught.value).replace(f"{tmp_path}/", "").splitlines()


# -- maps ----------------------------------------------------------------------------------------


def test_csv_rows_run_the_real_function_and_the_reduce_function_is_recorded(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        """\
tests:
  - name: doubles
    map: double
    rows: [{n: 1}, {n: -2}, {n: 3}]
    summary:
      status: SUCCEEDED
      rows: 3
      succeeded: 2
      failed: 1
      retried: 1
      dead_lettered: 1
      errors: {SDK_CLIENT_ERROR: 1}
      failures: [{file: numbers.csv, line: 3, attempts: 2}]
      output: null
    expect:
      map/double/reduce:                   # a function: one call with every result, in line order
        - - {file: numbers.csv, line: 2, status: SUCCEEDED, output: {n: 1, twice: 2, type: str}}
          - pattern: {line: [3], status: [FAILED], cause: [{wildcard: "*negative: -2"}]}
          - {file: numbers.csv, line: 4, status: SUCCEEDED, output: {n: 3, twice: 6, type: str}}
      map/double/dead-letter: [{n: "-2"}]          # the row, as JSON
""",
    )
    assert result.failures == []
    # The configured file was never read nor needed: the rows came from the case.
    assert not (tmp_path / "data").exists()


def test_jsonl_text_rows_and_a_streaming_reduce_recorded_one_result_a_payload(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        """\
tests:
  - name: lines
    map: lines
    rows: |
      {"n": 4}
      {"n": 5}
    summary: {rows: 2, succeeded: 2}
    expect:
      map/lines/reduce:
        - {file: in.jsonl, line: 1, status: SUCCEEDED, output: {n: 4, twice: 8, type: int}}
        - {file: in.jsonl, line: 2, status: SUCCEEDED, output: {n: 5, twice: 10, type: int}}
""",
    )
    assert result.failures == []
    assert not (tmp_path / "out.jsonl").exists()


def test_malformed_rows_are_reported_as_the_map_reports_them(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        """\
tests:
  - name: malformed
    map: double
    rows: "n\\n1\\n2,3\\n"
    summary:
      malformed: 1
      failures: [{line: 3, error: MALFORMED_ROW}]
""",
    )
    assert result.failures == []


def test_a_summary_that_differs_says_what_the_map_did(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        """\
tests:
  - name: wrong
    map: double
    rows: [{n: 1}, {n: -2}]
    summary:
      succeeded: 2
      failures: [{line: 2}]
""",
    )
    assert result.failures[0] == "map/double summary.failures: expected a payload matching {\"line\": [2]}; " + (
        'received [{"file": "numbers.csv", "line": 3, "error": "SDK_CLIENT_ERROR", '
        '"cause": "Function double raised ValueError: negative: -2", "attempts": 2}]'
    ) + "\n        " + json.dumps(
        {
            "file": "numbers.csv",
            "line": 3,
            "error": "SDK_CLIENT_ERROR",
            "cause": "Function double raised ValueError: negative: -2",
            "attempts": 2,
        }
    ) + " does not match: line: 2 did not match 3"
    assert result.failures[1] == "map/double summary.succeeded: expected 2, got 1"


# -- routes --------------------------------------------------------------------------------------


def test_requests_get_the_fronts_answers_keys_size_and_cache_included(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        """\
tests:
  - name: echo
    route: echo
    request:
      - {body: {say: hi}, key: k-1}
      - {body: {say: hi}, key: k-1}
      - {body: {say: hi}}
      - {body: {say: hi}, key: k-2}
      - {body: "0123456789012345678901234567890123456789012345678901234567890123456789", key: k-1}
      - {body: not json, key: k-1}
      - {key: k-1}
    answer:
      - {status: 200, body: {echo: {say: hi}}, headers: {x-cache: MISS}}
      - {status: 200, body: {echo: {say: hi}}, headers: {X-Cache: HIT}}
      - {status: 401, body: {error: MissingApiKey, reason: Route echo needs an API key in the X-Api-Key header.}}
      - {status: 403, body: {pattern: {error: [InvalidApiKey]}}}
      - {status: 413, body: {error: RequestTooLarge, reason: Route echo takes request bodies of at most 64 bytes.}}
      - {body: {echo: not json}}
      - {body: {echo: null}}
""",
    )
    assert result.failures == []


def test_a_job_request_is_answered_as_the_job_once_it_has_ended(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        """\
tests:
  - name: job
    route: echo
    request:
      - {job: true, body: {say: later}, key: k-1}
      - {job: true, body: {say: later}}
    answer:
      - {status: 200, body: {pattern: {route: [echo], status: [SUCCEEDED], result: {echo: {say: [later]}}}}}
      - {status: 401, body: {pattern: {error: [MissingApiKey]}}}
""",
    )
    assert result.failures == []


def test_a_route_to_another_kind_of_target_is_recorded_and_answers_null(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        """\
tests:
  - name: logged
    route: logged
    request: {body: {n: 1}}
    answer: {status: 200, body: null}
    expect:
      invoke/logged/target: [{n: 1}]
""",
    )
    assert result.failures == []


def test_an_answer_that_differs_says_what_the_front_answered(tmp_path: Path) -> None:
    (result,) = run(
        tmp_path,
        """\
tests:
  - name: wrong
    route: echo
    request: {body: {say: hi}, key: k-1}
    answer: {status: 201, body: {echo: {say: ho}}, headers: {X-Cache: HIT, X-Other: "1"}}
""",
    )
    assert result.failures[0] == 'route echo, request 1: expected status 201, answered 200 {"echo": {"say": "hi"}}'
    assert result.failures[1].startswith(
        'route echo, request 1: expected the body to be the payload {"echo": {"say": "ho"}}; answered 200'
    )
    assert '-     "say": "ho"' in result.failures[1] and '+     "say": "hi"' in result.failures[1]
    assert result.failures[2:] == [
        "route echo, request 1: expected header X-Cache: HIT; answered X-Cache: MISS",
        "route echo, request 1: expected header X-Other: 1; the answer has no such header",
    ]


# -- misuse --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "{name: x, map: doubel, rows: [{n: 1}]}",
            "c.test.yaml:1 tests[0].map: no map named 'doubel' in c.yaml; did you mean 'double'?",
        ),
        (
            "{name: x, map: other, rows: [{n: 1}]}",
            "c.test.yaml:1 tests[0].map: no map named 'other' in c.yaml; it declares double, lines",
        ),
        (
            "{name: x, route: ecko, request: {body: 1}}",
            "c.test.yaml:1 tests[0].route: no route named 'ecko' in c.yaml; did you mean 'echo'?",
        ),
        (
            "{name: x, rows: [{n: 1}]}",
            "c.test.yaml:1 tests[0].rows: rows go to a map: name it with `map: NAME` (c.yaml declares double, lines)",
        ),
        (
            "{name: x, request: {body: 1}}",
            "c.test.yaml:1 tests[0].request: a request goes to a route: name it with `route: NAME` "
            "(c.yaml declares echo, logged)",
        ),
        (
            "{name: x, map: double}",
            "c.test.yaml:1 tests[0]: `map: double` needs `rows`: row objects, or the text of its file as written",
        ),
        (
            "{name: x, route: echo}",
            "c.test.yaml:1 tests[0]: `route: echo` needs `request`: a body, and the route's API key if it has keys",
        ),
        (
            "{name: x, route: echo, request: [{body: 1}, {body: 2}], answer: {status: 200}}",
            "c.test.yaml:1 tests[0].answer: `answer` gives one answer for each request, in order: "
            "2 request(s), 1 answer(s) given",
        ),
        (
            "{name: x, map: double, route: echo, rows: [{n: 1}]}",
            "c.test.yaml:1 tests[0].route: a case runs a map or a route, not both: split it into two cases",
        ),
        (
            "{name: x, map: double, rows: [{n: 1}], events: [{source: a, detail-type: b, detail: {}}]}",
            "c.test.yaml:1 tests[0].events: a map case sends `rows` to its map, not `events`: drop `events`, "
            "or test the bus in a case of its own",
        ),
        (
            "{name: x, map: double, rows: [{n: 1}], answer: {status: 200}}",
            "c.test.yaml:1 tests[0].answer: `answer` belongs to a route case (`route: NAME`), not to a map case",
        ),
        (
            "{name: x, map: double, rows: [{n: 1}, {m: 2}]}",
            "c.test.yaml:1 tests[0].rows[1]: a CSV row has every column of the header (n), this one has m",
        ),
        (
            "{name: x, map: double, rows: [[1]]}",
            "c.test.yaml:1 tests[0].rows[0]: map reads CSV: each row is a mapping of its columns, not a list "
            "(or give `rows` as the file's text)",
        ),
        (
            "{name: x, map: double, rows: [{n: 1}], fail: {map/double/reduce: 1}}",
            "c.test.yaml:1 tests[0].fail.map/double/reduce: `fail` applies to the targets of buses and pipes, "
            "not to map/double/reduce: a map's rows fail when its function raises: give it rows it refuses",
        ),
        (
            "{name: x, map: double, rows: [{n: 1}], expect: {map/double/target: []}}",
            "c.test.yaml:1 tests[0].expect.map/double/target: map/double/target is a function, which a map "
            "case runs for real rather than recording: check what it answered in the summary and the "
            "reduce's results instead",
        ),
        (
            "{name: x, route: echo, request: {body: 1}, expect: {map/lines/reduce: []}}",
            "c.test.yaml:1 tests[0].expect.map/lines/reduce: map/lines/reduce is a stage of map 'lines', which "
            "this case does not run (it sends requests to route 'echo'); test it in a case with `map: lines` "
            "and `rows:`",
        ),
        (
            "{name: x, map: double, rows: [{n: 1}], summary: {failures: [{lines: 3}]}}",
            "c.test.yaml:1 tests[0].summary.failures[0]: a failed row has no field 'lines': its fields are "
            "file, line, error, cause, attempts; did you mean 'line'?",
        ),
        (
            "{name: x, route: echo, request: {body: 1, key: k-1}, answer: {status: 200, bdy: 1}}",
            "c.test.yaml:1 tests[0].answer.bdy: unknown key; did you mean 'body'?",
        ),
        (
            "{name: x, route: echo, request: [{body: 1}, {bdy: 1}]}",
            "c.test.yaml:1 tests[0].request[1].bdy: unknown key; did you mean 'body'?",
        ),
    ],
)
def test_misused_cases_are_reported_with_line_and_fix(tmp_path: Path, case: str, expected: str) -> None:
    assert problems(tmp_path, f"tests: [{case}]\n") == [expected]


def test_validate_counts_maps_and_invoke_routes(tmp_path: Path) -> None:
    write(tmp_path, "tests: [{name: x, route: echo, request: {body: 1, key: k-1}}]\n")
    result = subprocess.run(
        [sys.executable, "-m", "eventbus.cli", "validate", "c.yaml", "c.test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "c.test.yaml: ok (1 config test(s))",
        "c.yaml: ok (0 bus(es), 0 rule(s), 0 pipe(s), 2 map(s), 2 invoke route(s))",
    ]
