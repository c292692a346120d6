"""The console's parts on their own: the layout, what it counts per bus, sessions, the sandbox."""

from __future__ import annotations

import json
from datetime import timedelta

import anyio
import pytest

from eventbus import EventBus, ManualClock, RetryPolicy, RuleTarget
from eventbus.config.server import ServerSettings
from eventbus.config.topology import Edge, Topology
from eventbus.console.graph import NODE_WIDTH, compact, draw
from eventbus.console.sandbox import check_pattern, check_transform
from eventbus.console.security import Guard
from eventbus.console.watch import Watch
from eventbus.errors import ThrottledError
from eventbus.server.auth import Authenticator
from eventbus.targets.recording import RecordingTarget
from eventbus.transform import TargetInput


def test_the_layout_puts_each_node_right_of_what_feeds_it_and_survives_cycles() -> None:
    graph = Topology()
    a = graph.add("bus", "a", "bus: a")
    rule = graph.add("rule", "a/r", "rule: r")
    target = graph.add("target", "a/r/t", "bus: b")
    b = graph.add("bus", "b", "bus: b")
    back = graph.add("rule", "b/back", "rule: back")
    graph.edges += [Edge(a, rule), Edge(rule, target), Edge(target, b, dashed=True), Edge(b, back), Edge(back, a)]
    lonely = graph.add("bus", "lonely", "bus: lonely")
    drawing = draw(graph)
    x = {node.id: node.x for node in drawing.nodes}
    assert x[a] < x[rule] < x[target] < x[b] < x[back]
    assert x[lonely] == x[a]
    assert len(drawing.edges) == 5 and drawing.width >= 5 * NODE_WIDTH
    placed = [(n.x, n.y) for n in drawing.nodes]
    assert len(set(placed)) == len(placed)  # no two nodes on top of each other


def test_a_node_shows_four_counters_and_any_other_that_is_not_zero() -> None:
    counts = {"delivered": 3, "failed": 1, "dead-lettered": 0, "retrying": 0, "dropped": 0}
    assert compact(counts) == ["delivered 3 · failed 1", "dead-lettered 0 · retrying 0"]
    assert compact({**counts, "dropped": 2}) == ["delivered 3 · failed 1", "dead-lettered 0 · retrying 0", "dropped 2"]


@pytest.mark.anyio
async def test_the_watch_keeps_recent_events_and_counts_outcomes_per_target() -> None:
    clock = ManualClock()
    target = RecordingTarget()
    target.fail_next(ThrottledError("slow down"), times=1)
    bus = EventBus("watched", clock=clock, backoff={"base": 5, "cap": 5}, random=lambda: 1.0)
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="t", target=target, retry_policy=RetryPolicy(MaximumRetryAttempts=3))])
    watch = Watch(keep=2)
    async with bus, anyio.create_task_group() as tg:
        tg.start_soon(watch.follow, bus)
        await anyio.wait_all_tasks_blocked()
        await bus.put_events([{"Source": "shop", "DetailType": "x", "Detail": json.dumps({"n": n})} for n in range(3)])
        await anyio.wait_all_tasks_blocked()
        # The first call failed: its deliveries wait for their retry.
        assert watch.target_counts("watched", "r/t") == {"delivered": 0, "failed": 3, "dead-lettered": 0, "retrying": 3, "dropped": 0}
        clock.advance(timedelta(seconds=5))
        assert await bus.wait_idle(5)
        await anyio.wait_all_tasks_blocked()
        assert watch.target_counts("watched", "r/t")["retrying"] == 0
        assert watch.rule_counts("watched", "r")["delivered"] == 3
        assert [e.event["detail"]["n"] for e in watch.recent("watched")] == [2, 1]  # newest first, two kept
        tg.cancel_scope.cancel()


def test_a_session_cookie_is_signed_and_its_csrf_token_tied_to_it() -> None:
    settings = ServerSettings.model_validate({"api_keys": ["k-1"]})
    guard = Guard(settings, Authenticator(settings))
    session = guard.new_session()
    assert not session.signed_in
    read = guard.read_cookie(guard.cookie_value(session))
    assert read == session
    signed = guard.new_session(signed_in=True)
    assert guard.read_cookie(guard.cookie_value(signed)) == signed
    assert guard.check_csrf(session, guard.csrf_token(session))
    assert not guard.check_csrf(session, guard.csrf_token(signed)) and not guard.check_csrf(None, "x")
    other = Guard(settings, Authenticator(settings))  # another process: another key
    assert other.read_cookie(guard.cookie_value(signed)) is None
    assert guard.credential_ok(api_key="k-1") and not guard.credential_ok(api_key="k-2")
    assert not guard.credential_ok()


def test_the_sandbox_says_which_input_is_wrong() -> None:
    assert check_pattern('{"source": "shop"}', '{"source": ["shop"]}').matched is True
    bad_event = check_pattern("{not json", '{"source": ["shop"]}')
    assert bad_event.matched is None and bad_event.error_in == "event" and "not valid JSON" in (bad_event.error or "")
    bad_pattern = check_pattern('{"source": "shop"}', "[]")
    assert bad_pattern.error_in == "pattern"
    assert check_transform("[1]", "{}").error == "The event must be a JSON object."
    assert check_transform("{}", "{").error_in == "transformer"
    transformer = {"InputPathsMap": {"x": "$.detail.x"}, "InputTemplate": '{"x": <x>}'}
    missing = check_transform('{"detail": {}}', json.dumps(transformer))
    expected = TargetInput("t", input_transformer=transformer).render({"detail": {}}, rule_name="r", rule_arn="a")
    assert missing.output == expected and missing.error is None
