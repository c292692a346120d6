"""Maps in config files: validation messages, the runtime, ``eventbus run`` and ``validate``."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from eventbus.config import ConfigErrors, Runtime, dump, load_config
from eventbus.config.topology import topology
from tests.cli.helpers import cli_command, cli_env
from tests.maps.conftest import numbered_csv

HANDLERS = '''
import anyio

async def score(row):
    await anyio.sleep(0)
    if row["id"] == "3":
        raise ValueError("three is out")
    return {"id": int(row["id"]), "score": int(row["id"]) * 10}

def total(results):
    return sum(r["output"]["score"] for r in results if r["status"] == "SUCCEEDED")
'''


def project(tmp_path: Path, maps: str, rows: int = 20) -> Path:
    (tmp_path / "handlers.py").write_text(HANDLERS, encoding="utf-8")
    numbered_csv(tmp_path / "rows.csv", rows)
    config = tmp_path / "maps.yaml"
    config.write_text("runtime: {python_path: [.]}\n" + textwrap.dedent(maps), encoding="utf-8")
    return config


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args), capture_output=True, text=True, timeout=120, cwd=tmp_path, env=cli_env(), stdin=subprocess.DEVNULL
    )


SCORES = """
maps:
  scores:
    source: {file: {path: rows.csv}}
    target: {function: {function: "handlers:score"}}
    max_concurrency: 4
    retry_policy: {maximum_retry_attempts: 0}
    reduce: {file: {path: results.jsonl}}
"""


def test_eventbus_run_runs_a_map_prints_its_summary_and_stops(tmp_path: Path) -> None:
    config = project(tmp_path, SCORES)
    result = run_cli(tmp_path, "run", str(config))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "eventbus: running: no buses; maps: scores" in lines
    summary = next(line for line in lines if line.startswith("eventbus: map scores: SUCCEEDED"))
    assert "20 rows, 19 succeeded, 1 failed" in summary
    assert "eventbus:   rows.csv:4: SDK_CLIENT_ERROR: Function score raised ValueError: three is out" in lines
    assert "eventbus: every map ended: stopping" in lines
    results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(results) == 20


def test_eventbus_run_fails_when_a_map_crosses_its_tolerance_and_shows_progress(tmp_path: Path) -> None:
    config = project(tmp_path, SCORES.replace("max_concurrency: 4", "max_concurrency: 1\n    tolerated_failure_count: 0"))
    result = run_cli(tmp_path, "run", "--progress", str(config))
    assert result.returncode == 1
    assert "eventbus:   cause: 1 rows failed, more than tolerated_failure_count (0) allows" in result.stderr.splitlines()
    # stderr is a pipe: plain progress lines, not a bar.
    assert "map scores: started" in result.stderr


def test_eventbus_validate_counts_maps_and_names_each_problem_with_its_line(tmp_path: Path) -> None:
    config = project(tmp_path, SCORES)
    ok = run_cli(tmp_path, "validate", str(config))
    assert ok.stdout.strip() == f"{config}: ok (0 bus(es), 0 rule(s), 0 pipe(s), 1 map(s))"
    bad = project(
        tmp_path,
        """
        maps:
          broken:
            source: {queue: {name: jobs}}
            target: {functon: {function: "handlers:score"}}
            max_concurrency: 20000
            tolerated_failure_percentage: 150
            reduse: {file: {path: out.jsonl}}
        """,
    )
    result = run_cli(tmp_path, "validate", str(bad))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{bad}:5 maps.broken.source: a map reads its rows from a file: source is {{file: {{path: rows.csv}}}}, not "
        "'queue' (that kind of source feeds pipes: it never ends, and a map runs to the end of its rows)",
        f"{bad}:6 maps.broken.target: Unknown target kind 'functon'. Did you mean 'function'? Known kinds: "
        + result.stderr.split("Known kinds: ", 1)[1].splitlines()[0],
        f"{bad}:7 maps.broken.max_concurrency: Input should be less than or equal to 10000",
        f"{bad}:8 maps.broken.tolerated_failure_percentage: Input should be less than or equal to 100",
        f"{bad}:9 maps.broken.reduse: unknown key; did you mean 'reduce'?",
    ]


def test_names_and_functions_a_map_refers_to_are_checked(tmp_path: Path) -> None:
    config = project(
        tmp_path,
        """
        maps:
          scores:
            source: {file: {path: rows.csv}}
            target: {function: {function: "handlers:nope"}}
            reduce: {ref: missing}
        """,
    )
    with pytest.raises(ConfigErrors) as caught:
        load_config(config)
    assert sorted(str(p).split(" ", 1)[1] for p in caught.value.problems) == [
        "maps.scores.reduce.ref: no target named 'missing'",
        "maps.scores.target.function: module 'handlers' has no attribute 'nope'",
    ]


def test_a_map_whose_file_is_missing_is_a_problem_when_the_runtime_is_built(tmp_path: Path) -> None:
    config = project(tmp_path, SCORES.replace("rows.csv", "nowhere.csv"))
    loaded = load_config(config)
    with pytest.raises(ConfigErrors) as caught:
        Runtime([loaded])
    (problem,) = caught.value.problems
    assert problem.path == ("maps", "scores", "source") and "does not exist" in problem.reason


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_runtime_runs_maps_with_named_targets_and_the_kind_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = project(
        tmp_path,
        """
        targets:
          scorer: {function: {function: "handlers:score"}}
        maps:
          scores:
            source: {kind: file, path: rows.csv, max_items: 10}
            target: {ref: scorer}
            retry_policy: {maximum_retry_attempts: 0}
            reduce: {kind: function, function: "handlers:total"}
        """,
    )
    loaded = load_config(config)
    async with Runtime([loaded]) as runtime:
        summaries = await runtime.wait_maps(timeout=60)
    summary = summaries["scores"]
    assert (summary.status, summary.rows, summary.succeeded, summary.failed) == ("SUCCEEDED", 10, 9, 1)
    assert summary.output == sum(i * 10 for i in range(1, 11) if i != 3)
    # dump gives back a file that loads to the same config.
    again = tmp_path / "again.json"
    again.write_text(json.dumps(dump(loaded)), encoding="utf-8")
    assert dump(load_config(again)) == dump(loaded)


def test_the_graph_shows_a_maps_source_and_stages(tmp_path: Path) -> None:
    config = project(tmp_path, SCORES)
    mermaid = topology([load_config(config)]).to_mermaid()
    assert 'map_scores[["map: scores<br/>max_concurrency 4"]]' in mermaid
    assert "source_map_scores_source -->|rows| map_scores" in mermaid
    assert "map_scores -->|each row| target_map_scores_target" in mermaid
    assert "map_scores -->|results| target_map_scores_reduce" in mermaid
