"""Config round trips, building buses from configs, config unit tests, the examples, the schema."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventbus.config import ConfigErrors, Delivered, Runtime, dump, json_schema, load_config
from eventbus.config.testing import run_test_file
from eventbus.config.topology import topology
from eventbus.targets.base import Target, TargetConfig
from eventbus.targets.recording import RecordingTarget

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

names = st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True)
values = st.lists(st.one_of(st.text(max_size=8), st.integers(-5, 5)), min_size=1, max_size=3, unique=True)
patterns = st.dictionaries(st.sampled_from(["source", "detail-type"]), values, min_size=1)
target_entries = st.one_of(
    st.builds(lambda level: {"log": {"level": level}}, st.sampled_from(["info", "warning"])),
    st.builds(lambda name: {"recording": {"name": name}}, names),
    st.builds(
        lambda name, attempts: {
            "queue": {"type": "memory", "name": name},
            "retry_policy": {"MaximumRetryAttempts": attempts},
        },
        names,
        st.integers(0, 185),
    ),
)
rules = st.builds(
    lambda pattern, targets, state: {
        "pattern": pattern,
        "state": state,
        "targets": [{**t, "id": f"t{i}"} for i, t in enumerate(targets)],
    },
    patterns,
    st.lists(target_entries, max_size=5),
    st.sampled_from(["ENABLED", "DISABLED"]),
)
configs = st.builds(
    lambda buses: {"buses": buses},
    st.dictionaries(
        names, st.builds(lambda r: {"rules": r}, st.dictionaries(names, rules, max_size=3)), max_size=3
    ),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=configs, fmt=st.sampled_from(["yaml", "json"]))
def test_load_dump_load_gives_the_same_config(tmp_path: Path, data: dict[str, Any], fmt: str) -> None:
    first = tmp_path / f"first.{fmt}"
    first.write_text(yaml.safe_dump(data) if fmt == "yaml" else json.dumps(data), encoding="utf-8")
    loaded = load_config(first)
    second = tmp_path / f"second.{fmt}"
    dumped = dump(loaded)
    second.write_text(yaml.safe_dump(dumped) if fmt == "yaml" else json.dumps(dumped), encoding="utf-8")
    assert load_config(second).model == loaded.model


def example_configs() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.endswith(".test.yaml"))


@pytest.mark.parametrize("path", example_configs(), ids=lambda p: p.name)
def test_every_example_validates_and_passes_its_config_tests(path: Path) -> None:
    load_config(path)
    assert path.with_name(f"{path.stem}.test.yaml").exists(), "every example has a .test.yaml"
    results = run_test_file(path)
    assert results and all(r.passed for r in results), [r.failures for r in results]


FULL = """\
runtime: {backend: memory}
defaults:
  retry_policy: {MaximumRetryAttempts: 0}
  dead_letter: {ref: graveyard}
  bus: {drain_timeout: 5}
targets:
  graveyard: {recording: {name: build-graveyard}}
  shared: {recording: {name: build-shared}}
buses:
  orders:
    settings: {max_rules: 10}
    rules:
      all:
        pattern: {source: [shop]}
        targets:
          - ref: shared
          - recording: {name: build-broken}
          - recording: {name: build-id}
            input_path: $.detail.id
      nightly:
        schedule: cron(0 3 * * ? *)
        targets:
          - log: {}
"""


def test_runtime_builds_buses_with_defaults_refs_and_dead_letters(tmp_path: Path) -> None:
    path = tmp_path / "full.yaml"
    path.write_text(FULL, encoding="utf-8")
    config = load_config(path)
    seen: list[Delivered] = []
    built: dict[str, RecordingTarget] = {}

    def factory(address: str, target_config: TargetConfig) -> Target:
        built[address] = RecordingTarget(address)
        if address.endswith("recording-2"):
            built[address].fail_next(RuntimeError("down"), times=1)
        return built[address]

    async def scenario() -> None:
        runtime = Runtime([config], target_factory=factory, observe=seen.append)
        bus = runtime.bus()
        assert bus.config.drain_timeout == 5 and bus.config.max_rules == 10
        assert {r.name for r in bus.list_rules()} == {"all", "nightly"}
        assert bus.describe_rule("nightly").schedule_expression == "cron(0 3 * * ? *)"
        async with runtime:
            await bus.put_events([{"Source": "shop", "DetailType": "x", "Detail": '{"id": "o-1"}'}])
            assert await runtime.wait_idle(5)

    anyio.run(scenario)
    assert built["orders/all/shared"].payloads[0]["detail"] == {"id": "o-1"}
    assert built["orders/all/recording-3"].payloads == ["o-1"]
    # No retries by default here, so the failed delivery went straight to the default dead letter.
    assert built["orders/all/recording-2"].payloads == []
    assert len(built["orders/all/recording-2/dead-letter"].payloads) == 1
    assert {d.address for d in seen} >= {"orders/all/shared", "orders/all/recording-3"}


def test_config_test_failures_say_what_differs(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(FULL, encoding="utf-8")
    (tmp_path / "c.test.yaml").write_text(
        """\
tests:
  - name: right
    events: [{source: shop, detail-type: x, detail: {id: o-1}}]
    expect:
      orders/all/recording-3: [o-1]
  - name: wrong
    events: [{source: shop, detail-type: x, detail: {id: o-1}}]
    expect:
      orders/all/recording-3: [o-2]
      orders/all/shared: []
""",
        encoding="utf-8",
    )
    right, wrong = run_test_file(tmp_path / "c.yaml")
    assert right.passed
    assert wrong.failures == [
        'orders/all/recording-3: expected the payload "o-2"; received ["o-1"]',
        wrong.failures[1],
    ]
    assert wrong.failures[1].startswith("orders/all/shared: expected 0 payload(s), received 1")


def test_config_test_files_are_validated_too(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(FULL, encoding="utf-8")
    (tmp_path / "c.test.yaml").write_text(
        "tests:\n  - name: x\n    event: []\n    expect:\n      orders/all/shard: []\n", encoding="utf-8"
    )
    with pytest.raises(ConfigErrors) as caught:
        run_test_file(tmp_path / "c.test.yaml")
    text = str(caught.value)
    assert "tests[0].event: unknown key; did you mean 'events'?" in text
    (tmp_path / "c.test.yaml").write_text(
        "tests:\n  - name: x\n    events: [{source: a, detail-type: b, detail: {}}]\n    expect:\n      orders/all/shard: []\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigErrors) as caught:
        run_test_file(tmp_path / "c.test.yaml")
    assert "no target 'orders/all/shard'" in str(caught.value) and "did you mean 'orders/all/shared'?" in str(
        caught.value
    )


def test_cross_references_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        FULL.replace("ref: shared", "ref: shraed").replace(
            "name: build-id}", "name: build-id}\n            id: shared"
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    text = str(caught.value)
    assert "targets[0].ref: no target named 'shraed'; did you mean 'shared'?" in text


def test_topology_links_buses_rules_targets_and_dead_letters(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(FULL, encoding="utf-8")
    graph = topology([load_config(path)])
    mermaid = graph.to_mermaid()
    assert mermaid.startswith("flowchart LR")
    assert "bus_orders --> rule_orders_all" in mermaid
    assert "-.->|dead letter|" in mermaid
    dot = graph.to_dot()
    assert dot.startswith("digraph eventbus {") and "rule_orders_all -> target_named_shared;" in dot


def test_json_schema_describes_targets_and_settings() -> None:
    schema = json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"buses", "targets", "connections", "defaults", "runtime", "pipes"} <= set(schema["properties"])
    assert "HttpRuleTarget" in schema["$defs"] and "RetryPolicy" in schema["$defs"]
    json.dumps(schema)


def test_docs_config_md_holds_the_current_generated_reference() -> None:
    from eventbus.config.reference import markdown_reference

    docs = (EXAMPLES.parent / "docs" / "config.md").read_text(encoding="utf-8")
    begin = "<!-- generated by: eventbus schema --markdown -->\n"
    end = "<!-- end of generated reference -->"
    assert begin in docs and end in docs
    embedded = _sections(docs.split(begin, 1)[1].split(end, 1)[0])
    current = _sections(markdown_reference())
    # Every section is there; the sections of this package's own models match exactly (the
    # others follow their owners' models: regenerate with `eventbus schema --markdown`).
    assert set(embedded) == set(current)
    for title in (
        "The file",
        "runtime",
        "runtime.backend: memory",
        "runtime.backend: sqlite",
        "defaults",
        "buses.NAME",
        "buses.NAME.rules.NAME",
        "invoke",
        "invoke.routes.NAME",
        "invoke.routes.NAME.rate_limit",
        "invoke.routes.NAME.cache",
        "invoke.jobs",
    ):
        assert embedded[title] == current[title], f"regenerate the reference in docs/config.md ({title})"


def _sections(text: str) -> dict[str, str]:
    parts = text.split("### ")[1:]
    return {part.split("\n", 1)[0]: part for part in parts}


SHARED = """\
targets:
  hook:
    http: {{endpoint: "{url}", invocation_rate_limit_per_second: 4}}
  audit:
    file: {{path: "{audit}"}}
buses:
  first:
    rules:
      a:
        pattern: {{source: [shop]}}
        targets: [{{id: h, ref: hook}}, {{id: f, ref: audit}}]
      b:
        pattern: {{source: [shop]}}
        targets: [{{id: h, ref: hook}}]
  second:
    rules:
      c:
        pattern: {{source: [shop]}}
        targets: [{{id: h, ref: hook}}, {{id: f, ref: audit}}]
"""


def test_a_named_target_is_one_target_for_all_its_uses(
    tmp_path: Path, asgi_server: Any
) -> None:
    """As an API destination is one resource in AWS: its rate limit holds across every rule and
    bus that uses it, and a bus that stops first does not close it under the others."""
    from tests.targets.http_app import ApiApp

    app = ApiApp()
    base = asgi_server(app)
    path = tmp_path / "shared.yaml"
    audit = tmp_path / "audit.jsonl"
    path.write_text(SHARED.format(url=f"{base}/api", audit=audit), encoding="utf-8")
    runtime = Runtime([load_config(path)])
    event = [{"Source": "shop", "DetailType": "t", "Detail": "{}"}]

    started: list[float] = []

    async def scenario() -> None:
        async with runtime:
            started.append(time.monotonic())
            await runtime.bus("first").put_events(event)
            await runtime.bus("second").put_events(event)
            assert await runtime.wait_idle(20)

    anyio.run(scenario)
    times = sorted(seen.at for seen in app.requests)
    # Three uses, one limiter at 4 calls a second: the calls are a quarter second apart, so the
    # third cannot leave before half a second has passed. Each use with a limiter of its own
    # would have sent all three at once. (Measured from the puts, not from the first arrival,
    # which a pause before the first request, a collection say, can delay without bound.)
    assert len(times) == 3
    assert times[-1] - started[0] >= 0.5 - 0.01
    # Both buses wrote their lines through the one file target, and it was closed once at the end.
    assert len(audit.read_text(encoding="utf-8").splitlines()) == 2


ARCHIVES = """
runtime: {backend: {type: sqlite, path: state.db}}
buses:
  orders:
    archives:
      shop: {pattern: {source: [shop]}, retention_days: RETENTION, description: the shop's orders}
      everything: {}
"""


def test_archives_declared_in_a_config_are_made_then_kept_in_step(tmp_path: Path) -> None:
    import anyio

    from eventbus.config import Runtime

    path = tmp_path / "orders.yaml"

    async def run(retention: int) -> list[tuple[str, int, str | None]]:
        path.write_text(ARCHIVES.replace("RETENTION", str(retention)), encoding="utf-8")
        async with Runtime([load_config(path)]) as runtime:
            bus = runtime.bus("orders")
            await bus.put_events([{"Source": "shop", "DetailType": "order", "Detail": "{}"}])
            assert await bus.wait_idle(5)
            return [(a.name, a.retention_days, a.event_pattern) for a in bus.list_archives()]

    assert anyio.run(run, 7) == [("everything", 0, None), ("shop", 7, '{"source":["shop"]}')]
    # Run again with a changed retention: the archive is updated, its events kept.
    assert anyio.run(run, 30) == [("everything", 0, None), ("shop", 30, '{"source":["shop"]}')]

    async def counts() -> dict[str, int]:
        async with Runtime([load_config(path)]) as runtime:
            return {a.name: a.event_count for a in runtime.bus("orders").list_archives()}

    assert anyio.run(counts) == {"everything": 2, "shop": 2}


def test_archive_names_are_unique_across_buses(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text("buses:\n  a: {archives: {all: {}}}\n  b: {archives: {all: {}}}\n", encoding="utf-8")
    with pytest.raises(ConfigErrors) as info:
        load_config(path)
    assert "archive names are unique across buses" in str(info.value)
