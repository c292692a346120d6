"""The config commands as users run them: exit codes, stdout, one clear line on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import EXAMPLES, eventbus

QUICKSTART = str(EXAMPLES / "quickstart.yaml")

SMALL = """\
buses:
  orders:
    rules:
      all:
        pattern: {source: [shop]}
        targets:
          - log: {level: debug}
          - id: ids
            recording: {name: cli-ids}
            input_path: $.detail.id
"""


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return path


def test_validate_ok_and_problems(tmp_path: Path, small: Path) -> None:
    ok = eventbus("validate", QUICKSTART)
    assert ok.returncode == 0, ok.stderr
    assert "quickstart.yaml: ok (1 bus(es), 3 rule(s)" in ok.stdout
    assert eventbus("validate", "-q", str(small)).stdout == ""
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL.replace("level: debug", "levle: debug").replace("[shop]", "[]"), encoding="utf-8")
    result = eventbus("validate", str(bad))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{bad}:5 buses.orders.rules.all.pattern: Event pattern is not valid. Reason: Empty arrays are not allowed",
        f"{bad}:7 buses.orders.rules.all.targets[0].log.levle: unknown key; did you mean 'level'?",
    ]


def test_validate_reports_a_bus_declared_in_two_files(tmp_path: Path, small: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(SMALL, encoding="utf-8")
    result = eventbus("validate", str(small), str(other))
    assert result.returncode == 1
    assert result.stderr.strip() == f"{other}:2 buses.orders: already declared in {small}"


def test_validate_prints_a_config_problem_once_when_its_test_file_is_given_too(tmp_path: Path) -> None:
    bad = tmp_path / "orders.yaml"
    bad.write_text(SMALL.replace("level: debug", "levle: debug"), encoding="utf-8")
    (tmp_path / "orders.test.yaml").write_text(
        "tests:\n  - name: t\n    events: [{source: shop, detail-type: x, detail: {}}]\n", encoding="utf-8"
    )
    result = eventbus("validate", str(bad), str(tmp_path / "orders.test.yaml"))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{bad}:7 buses.orders.rules.all.targets[0].log.levle: unknown key; did you mean 'level'?"
    ]


BAD_FILES: list[tuple[str, str | bytes | None]] = [
    ("missing.yaml", None),
    ("bad.yaml", "buses: {orders: [\n"),
    ("bad.json", "{nope"),
    ("bad.toml", "= 1"),
    ("binary.yaml", b"\xff\xfe\x00garbage"),
    ("scalar.yaml", "just text"),
    ("deep.json", "[" * 5000 + "]" * 5000),
    ("deep.yaml", "a: " + "[" * 500 + "]" * 500),
    ("wrong.txt", "buses: {}"),
    ("types.yaml", "buses: 3\npipes: [1]\ntargets: {x: 1}\nruntime: {backend: postgres}\n"),
    ("nulls.yaml", "buses: {orders: {rules: {r: {pattern: null, targets: [null]}}}}\n"),
    ("folder.yaml", "dir"),
    (
        "laughs.yaml",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(7)
        ),
    ),
    ("onkeys.yaml", "buses: {b: {rules: {r: {pattern: {detail: {on: [1]}}, yes: 1}}}}\n"),
]


@pytest.mark.parametrize("command", ["validate", "graph", "test", "run", "put"])
def test_bad_files_never_give_a_traceback(tmp_path: Path, command: str) -> None:
    paths = []
    for name, content in BAD_FILES:
        path = tmp_path / name
        if content == "dir":
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            path.write_text(content, encoding="utf-8")
        paths.append(str(path))
    if command == "put":
        args = ["put", *(f"--config={p}" for p in paths), '{"source": "a", "detail-type": "b", "detail": {}}']
    else:
        args = [command, *paths]
    result = eventbus(*args, timeout=60)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith(str(tmp_path)) for line in lines), result.stderr
    for path in paths:
        assert any(line.startswith(path) for line in lines), f"{path} not reported: {result.stderr}"


def test_schema_prints_json_schema() -> None:
    result = eventbus("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert "buses" in schema["properties"] and "$defs" in schema


def test_test_transform() -> None:
    event = json.dumps({"source": "shop", "detail": {"id": "o-1", "total": 5}})
    transformer = json.dumps(
        {
            "InputPathsMap": {"id": "$.detail.id"},
            "InputTemplate": '{"order": <id>, "rule": <aws.events.rule-name>}',
        }
    )
    ok = eventbus(
        "test-transform", "--event", event, "--input-transformer", transformer, "--rule-name", "big"
    )
    assert ok.returncode == 0 and json.loads(ok.stdout) == {"order": "o-1", "rule": "big"}
    path = eventbus("test-transform", "-e", "@-", "--input-path", "$.detail.total", input=event)
    assert path.returncode == 0 and path.stdout.strip() == "5"
    bad = eventbus("test-transform", "-e", event, "-t", json.dumps({"InputTemplate": "<nope>"}))
    assert bad.returncode == 2
    assert bad.stderr.strip() == "InputTemplate for target test-target contains invalid placeholder nope."
    nothing = eventbus("test-transform", "-e", event, "--input-path", "$.detail.missing")
    assert nothing.returncode == 1 and "matches nothing" in nothing.stderr
    for args in (
        ["-e", "{nope", "--input", "1"],
        ["-e", "[]", "--input", "1"],
        ["-e", "@/nonexistent", "--input", "1"],
    ):
        result = eventbus("test-transform", *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.strip()


def test_graph_mermaid_and_dot() -> None:
    mermaid = eventbus("graph", QUICKSTART)
    assert mermaid.returncode == 0
    assert mermaid.stdout.startswith("flowchart LR")
    assert "rule_orders_big -->|input transformer| target_orders_big_review" in mermaid.stdout
    dot = eventbus("graph", "--format", "dot", QUICKSTART)
    assert dot.returncode == 0 and dot.stdout.startswith("digraph eventbus {")


def test_put_from_arguments_and_stdin(small: Path) -> None:
    events = [{"source": "shop", "detail-type": "x", "detail": {"id": f"o-{i}"}} for i in range(12)]
    events.append({"source": "elsewhere", "detail-type": "x", "detail": {}})
    result = eventbus("put", "-c", str(small), input="\n".join(json.dumps(e) for e in events))
    assert result.returncode == 0, result.stderr
    response_text, _, table = result.stdout.partition("\n}\n")
    response = json.loads(response_text + "\n}")
    assert response["FailedEntryCount"] == 0 and len(response["Entries"]) == 13
    rows = [line.split("\t") for line in table.splitlines()]
    ids = [e["EventId"] for e in response["Entries"]]
    assert [ids[0], "orders/all/ids"] in rows and [ids[0], "orders/all/log"] in rows
    assert [ids[12], "(no target)"] in rows
    one = eventbus("put", "-c", str(small), json.dumps({"Source": "shop", "DetailType": "x", "Detail": "{}"}))
    assert one.returncode == 0 and "orders/all/log" in one.stdout


def test_put_reports_failed_entries_and_bad_input(small: Path) -> None:
    failed = eventbus(
        "put", "-c", str(small), json.dumps({"Source": "shop", "DetailType": "x", "Detail": "[1]"})
    )
    assert failed.returncode == 1
    assert json.loads(failed.stdout.partition("\n}\n")[0] + "\n}")["FailedEntryCount"] == 1
    for bad in ("{nope", "[1, 2]", '{"source": "a", "colour": "red"}'):
        result = eventbus("put", "-c", str(small), bad)
        assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.strip()
    unknown = eventbus(
        "put", "-c", str(small), "--bus", "nope", '{"source": "a", "detail-type": "b", "detail": {}}'
    )
    assert unknown.returncode == 1 and "no bus named 'nope'" in unknown.stderr


def test_test_command_passes_the_quickstart_and_fails_a_wrong_expectation(
    tmp_path: Path, small: Path
) -> None:
    ok = eventbus("test", QUICKSTART)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip().endswith("4 passed, 0 failed")
    (tmp_path / "small.test.yaml").write_text(
        "tests:\n  - name: ids\n    events: [{source: shop, detail-type: x, detail: {id: o-1}}]\n"
        "    expect:\n      orders/all/ids: [o-2]\n",
        encoding="utf-8",
    )
    failed = eventbus("test", str(small))
    assert failed.returncode == 1
    assert "FAIL" in failed.stdout and 'expected the payload "o-2"; received ["o-1"]' in failed.stdout


def test_test_command_keeps_logs_off_unless_asked(tmp_path: Path, small: Path) -> None:
    (tmp_path / "small.test.yaml").write_text(
        "tests:\n  - name: the id target is down\n    events: [{source: shop, detail-type: x, detail: {id: o-1}}]\n"
        "    fail: {orders/all/ids: 2}\n    expect:\n      orders/all/ids: [o-1]\n",
        encoding="utf-8",
    )
    quiet = eventbus("test", str(small))
    assert (quiet.returncode, quiet.stderr) == (0, ""), quiet.stdout + quiet.stderr
    assert quiet.stdout.splitlines() == [f"PASS {small}: the id target is down", "1 passed, 0 failed"]
    shown = eventbus("test", "--logs", str(small))
    assert shown.returncode == 0 and shown.stdout == quiet.stdout
    retried = [line for line in shown.stderr.splitlines() if "retried" in line]
    assert len(retried) == 2 and "rule=all target=ids" in retried[0]


def test_test_command_takes_a_folder(tmp_path: Path) -> None:
    every = eventbus("test", str(EXAMPLES))
    assert every.returncode == 0, every.stdout + every.stderr
    # Each example's cases, found under the folder: quickstart and jobs.
    assert "quickstart.yaml: " in every.stdout and "jobs.yaml: " in every.stdout
    assert every.stdout.strip().endswith(" passed, 0 failed")
    empty = tmp_path / "empty"
    empty.mkdir()
    none = eventbus("test", str(empty))
    assert none.returncode == 1
    assert f"{empty}: no config tests under this folder" in none.stderr and "Traceback" not in none.stderr


def test_usage_errors_exit_2() -> None:
    assert eventbus().returncode == 2
    assert eventbus("validate").returncode == 2
    result = eventbus("graph", QUICKSTART, "--format", "png")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_the_demo_runs_the_quickstart_and_exits_0() -> None:
    import subprocess
    import sys

    from tests.cli.helpers import ROOT, cli_env

    result = subprocess.run(
        [sys.executable, "-m", "eventbus.demo"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=cli_env(),
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "PutEvents: FailedEntryCount=0" in out
    assert "state file (SQLite, as `eventbus run` keeps it): quickstart.db" in out
    assert "-> orders/audit/archive, orders/big/review, orders/placed/acknowledge" in out
    assert '{"order": "o-2", "total": 250, "rule": "big"}' in out
    assert "archive file got 3 line(s)" in out and "function acknowledged: o-1, o-2" in out
    assert "Traceback" not in result.stderr


def test_put_shows_how_each_delivery_ended(tmp_path: Path) -> None:
    config = tmp_path / "failing.yaml"
    config.write_text(
        "buses:\n"
        "  orders:\n"
        "    settings: {backoff: {base: 0.01, cap: 0.01}}\n"
        "    rules:\n"
        "      all:\n"
        "        pattern: {source: [shop]}\n"
        "        targets:\n"
        "          - id: ok\n"
        "            recording: {name: cli-ok}\n"
        "          - id: shaped\n"
        "            recording: {name: cli-shaped}\n"
        "            input_path: $.detail.missing\n"
        "          - id: down\n"
        "            http: {endpoint: 'http://127.0.0.1:9/nothing', timeout: 1}\n"
        "            retry_policy: {MaximumRetryAttempts: 1}\n"
        "            dead_letter: {recording: {name: cli-dead}}\n",
        encoding="utf-8",
    )
    result = eventbus("put", "-c", str(config), json.dumps({"source": "shop", "detail-type": "x", "detail": {}}))
    assert result.returncode == 1, result.stderr
    response_text, _, table = result.stdout.partition("\n}\n")
    [answer] = json.loads(response_text + "\n}")["Entries"]
    rows = [line.split("\t") for line in table.splitlines()]
    assert all(row[0] == answer["EventId"] for row in rows) and len(rows) == 3
    went = sorted(row[1] for row in rows)
    assert went[0].startswith("orders/all/down: failed: RetryableError: ")
    assert went[0].endswith(" (sent to its dead letter)")
    assert went[1:] == [
        "orders/all/ok",
        "orders/all/shaped: nothing to deliver (InputPath $.detail.missing of target shaped matches nothing"
        " in the event.)",
    ]
    assert "1 delivery(ies) failed" in result.stderr
