"""check_rules against real buses and config files: verdicts, overlaps, failures and the summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eventbus.bus import EventBus
from eventbus.targets.recording import RecordingTarget
from eventbus.testing import RuleCheck, RuleCheckReport, check_rules

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _orders_bus(bus: EventBus) -> RecordingTarget:
    real = RecordingTarget("real")
    bus.put_rule("big", {"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}})
    bus.put_targets(
        "big",
        [
            {"Id": "whole", "Target": real},
            {"Id": "total", "Target": RecordingTarget("total"), "InputPath": "$.detail.total"},
        ],
    )
    bus.put_rule("shop", {"source": ["shop"], "detail-type": [{"anything-but": "Heartbeat"}]})
    bus.put_rule(
        "vip",
        {"$or": [{"detail": {"tier": ["gold"]}}, {"detail": {"spend": [{"numeric": [">=", 1000]}]}}]},
    )
    bus.put_rule("tick", schedule_expression="rate(5 minutes)")
    bus.put_rule("off", {"source": ["x"]}, state="DISABLED")
    return real


async def test_a_sound_bus_passes_and_overlaps_are_information(event_bus: EventBus) -> None:
    real = _orders_bus(event_bus)
    report = await check_rules(event_bus, examples=8)
    assert report.ok
    big = report.rule("big")
    assert (big.matching_sent, big.non_matching_sent) == (8, 8)
    assert big.targets == ("whole", "total")
    assert report.rule("tick").notes and report.rule("off").notes
    # Big orders are shop events (but for heartbeats): the overlap is reported, not failed.
    assert any(o.rule == "big" and o.other == "shop" and 1 <= o.count <= 8 for o in report.overlaps)
    text = str(report)
    assert "[ok] " + event_bus.name + "/big" in text
    assert "overlaps" in text
    # The real targets never see generated events.
    assert real.payloads == []


async def test_same_seed_same_events(event_bus: EventBus) -> None:
    _orders_bus(event_bus)
    first = await check_rules(event_bus, examples=4, seed=3)
    second = await check_rules(event_bus, examples=4, seed=3)
    assert [o.example["detail"] for o in first.overlaps] == [o.example["detail"] for o in second.overlaps]


async def test_a_rule_that_can_never_match_fails_with_a_readable_summary(event_bus: EventBus) -> None:
    event_bus.put_rule("typo", {"source": ["shop"], "total": [{"numeric": [">", 100]}]})
    event_bus.put_rule("fine", {"source": ["shop"]})
    with pytest.raises(AssertionError) as info:
        await check_rules(event_bus, examples=3)
    message = str(info.value)
    assert "1 passed, 1 failed" in message
    assert "[FAIL] " + event_bus.name + "/typo" in message
    assert "no top-level field 'total'" in message
    report = await check_rules(event_bus, examples=3, raise_on_failure=False)
    assert not report.ok
    assert report.failures and report.failures[0].startswith(event_bus.name + "/typo: ")


async def test_rules_for_other_accounts_or_replays_fail_in_plain_words(event_bus: EventBus) -> None:
    # A bus stamps its own account and region on every entry and never sets replay-name, so such
    # a rule never fires: a mistake to report (often a rule ported from AWS), not one to skip.
    event_bus.put_rule("other-account", {"account": ["000000000000"], "source": ["shop"]})
    event_bus.put_rule("replays", {"replay-name": [{"exists": True}]})
    report = await check_rules(event_bus, examples=3, raise_on_failure=False)
    assert not report.ok
    assert report.rule("other-account").failures == [
        f"no event on bus {event_bus.name} can match it: it wants account: [\"000000000000\"], but the bus "
        "gives every event account 123456789012 and region us-east-1, and never a replay-name "
        "(if the rule is right, set the bus's account or region)"
    ]
    assert "it wants replay-name: [exists true]" in report.rule("replays").failures[0]
    assert report.summary().splitlines()[0] == "check_rules: 0 passed, 2 failed, 0 skipped, 0 overlaps"
    # Their non-matching events are still checked.
    assert report.rule("replays").non_matching_sent == 3
    with pytest.raises(AssertionError, match=r"\[FAIL\] .*/other-account"):
        await check_rules(event_bus, examples=3)


async def test_a_rule_matching_everything_has_no_non_matching_events(event_bus: EventBus) -> None:
    event_bus.put_rule("everything", {"source": [{"prefix": ""}]})
    report = await check_rules(event_bus, examples=3)
    rule = report.rule("everything")
    assert (rule.matching_sent, rule.non_matching_sent) == (3, 0)
    assert any("every event matches it" in note for note in rule.notes)


async def test_rules_on_the_event_id_are_skipped(event_bus: EventBus) -> None:
    event_bus.put_rule("by-id", {"id": [{"prefix": "a"}]})
    report = await check_rules(event_bus, examples=2)
    assert "the bus assigns" in report.rule("by-id").notes[0]


async def test_config_file_runtime_and_path(load_config: Any) -> None:
    path = EXAMPLES / "quickstart.yaml"
    if not path.exists():
        pytest.skip("examples/quickstart.yaml is not in this checkout")
    report = await check_rules(path, examples=5)
    assert {r.rule for r in report.rules} >= {"placed", "big", "audit"}
    runtime = await load_config(path)
    again = await check_rules(runtime, examples=5)
    assert [r.name for r in again.rules] == [r.name for r in report.rules]
    from eventbus.config import load_config as load

    loaded = await check_rules(load(path), examples=5)
    assert [r.name for r in loaded.rules] == [r.name for r in report.rules]


async def test_check_rules_refuses_what_it_cannot_check() -> None:
    with pytest.raises(TypeError, match="check_rules takes"):
        await check_rules(42)
    with pytest.raises(ValueError, match="examples"):
        await check_rules(EventBus("unused"), examples=0)


def test_report_summary_lists_failures_and_notes() -> None:
    report = RuleCheckReport(
        rules=[
            RuleCheck("b", "r1", ("t",), 2, 2, failures=["2 of 2 matching events did not reach target 't'"]),
            RuleCheck("b", "r2", (), 0, 0, notes=["disabled: not checked"]),
        ]
    )
    text = report.summary()
    assert text.splitlines()[0] == "check_rules: 0 passed, 1 failed, 1 skipped, 0 overlaps"
    assert "[FAIL] b/r1" in text and "did not reach target 't'" in text
    assert "[skip] b/r2" in text and "note: disabled" in text
    with pytest.raises(AssertionError, match="did not reach"):
        report.raise_on_failure()
    with pytest.raises(KeyError, match="no rule"):
        report.rule("nope")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_buses_of_generated_rules_pass() -> None:
    # The bus's own matcher against the reference matcher, through check_rules, on random rules.
    from hypothesis import strategies as st

    from eventbus.testing import patterns
    from eventbus.testing._sample import sample

    for number, rules in enumerate(sample(st.lists(patterns(), min_size=2, max_size=3), 8, seed=5)):
        bus = EventBus(f"generated-{number}")
        for index, pattern in enumerate(rules):
            bus.put_rule(f"r{index}", pattern)
        report = await check_rules(bus, examples=5, raise_on_failure=False)
        assert report.ok, f"{rules}\n{report}"
