"""End-to-end routing against the reference matcher, and no event lost whatever the targets do."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventbus.bus import EventBus, RetryPolicy, RuleTarget
from eventbus.errors import ResourceNotFoundError, ThrottledError
from eventbus.patterns.reference import matches

from .helpers import Collector, Flaky

pytestmark = pytest.mark.anyio

PATTERNS: dict[str, dict[str, Any]] = {
    "by-source": {"source": ["shop"]},
    "by-type": {"detail-type": ["order", "refund"]},
    "prefix": {"source": [{"prefix": "sh"}]},
    "numeric": {"detail": {"amount": [{"numeric": [">", 10, "<=", 100]}]}},
    "anything-but": {"detail": {"state": [{"anything-but": ["new"]}]}},
    "exists": {"detail": {"coupon": [{"exists": True}]}},
    "not-exists": {"source": ["shop"], "detail": {"coupon": [{"exists": False}]}},
    "or": {"$or": [{"detail": {"state": ["paid"]}}, {"detail": {"amount": [0]}}]},
    "array": {"detail": {"tags": ["vip"]}},
    "suffix-nocase": {"detail-type": [{"suffix": {"equals-ignore-case": "UND"}}]},
    "wildcard": {"source": [{"wildcard": "s*p"}]},
    "null": {"detail": {"coupon": [None]}},
}

details = st.fixed_dictionaries(
    {},
    optional={
        "amount": st.one_of(st.integers(-5, 150), st.sampled_from([0, 10, 100, 10.5])),
        "state": st.sampled_from(["new", "paid", "shipped", ""]),
        "coupon": st.one_of(st.none(), st.sampled_from(["A", "", "B"])),
        "tags": st.lists(st.sampled_from(["vip", "new", "x"]), max_size=3),
    },
)
entries = st.fixed_dictionaries(
    {
        "Source": st.sampled_from(["shop", "shipping", "sop", "bank"]),
        "DetailType": st.sampled_from(["order", "refund", "REFUND", "other"]),
        "Detail": details.map(json.dumps),
    }
)


class Recorder(Collector):
    def __init__(self, rule: str, seen: dict[str, set[str]]) -> None:
        super().__init__()
        self.rule = rule
        self.seen = seen

    async def deliver(self, payloads, context):  # type: ignore[no-untyped-def]
        for p in payloads:
            self.seen.setdefault(json.loads(p)["id"], set()).add(self.rule)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(entries, min_size=1, max_size=30))
def test_routing_agrees_with_the_reference_matcher(batch: list[dict[str, Any]]) -> None:
    seen: dict[str, set[str]] = {}

    async def run() -> list[str]:
        bus = EventBus()
        for name, pattern in PATTERNS.items():
            bus.put_rule(name, pattern)
            bus.put_targets(name, [RuleTarget(id="fn", target=Recorder(name, seen))])
        ids: list[str] = []
        async with bus:
            for start in range(0, len(batch), 10):
                answer = await bus.put_events(batch[start : start + 10])
                assert answer["FailedEntryCount"] == 0
                ids += [e["EventId"] for e in answer["Entries"]]
        return ids

    ids = anyio.run(run)
    for entry, event_id in zip(batch, ids, strict=True):
        event = {
            "version": "0",
            "id": event_id,
            "detail-type": entry["DetailType"],
            "source": entry["Source"],
            "account": "123456789012",
            "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": json.loads(entry["Detail"]),
        }
        expected = {name for name, pattern in PATTERNS.items() if matches(pattern, event)}
        assert seen.get(event_id, set()) == expected, (event, expected)


outcomes = st.lists(
    st.tuples(st.integers(0, 4), st.sampled_from(["retryable", "throttled", "gone"])), min_size=1, max_size=4
)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    targets=outcomes,
    n_events=st.integers(1, 25),
    retries=st.integers(0, 3),
    queue=st.integers(1, 4),
    backend=st.sampled_from(["asyncio", "trio"]),
)
def test_every_accepted_event_is_delivered_or_dead_lettered(
    targets: list[tuple[int, str]], n_events: int, retries: int, queue: int, backend: str
) -> None:
    errors = {
        "retryable": RuntimeError("boom"),
        "throttled": ThrottledError("slow"),
        "gone": ResourceNotFoundError("x"),
    }
    flakies = [Flaky(fails, errors[kind], max_batch_size=2) for fails, kind in targets]
    dlqs = [Collector() for _ in targets]

    async def run() -> list[str]:
        bus = EventBus(
            target_queue_size=queue, log_capacity=queue * 2, backoff={"base": 0.0005, "cap": 0.002}
        )
        bus.put_rule("r", {"source": ["shop"]})
        bus.put_targets(
            "r",
            [
                RuleTarget(
                    id=f"t{i}",
                    target=f,
                    dead_letter=d,
                    retry_policy=RetryPolicy(MaximumRetryAttempts=retries),
                )
                for i, (f, d) in enumerate(zip(flakies, dlqs, strict=True))
            ],
        )
        ids: list[str] = []
        async with bus:
            for start in range(0, n_events, 10):
                count = min(10, n_events - start)
                answer = await bus.put_events(
                    [
                        {"Source": "shop", "DetailType": "t", "Detail": json.dumps({"n": start + k})}
                        for k in range(count)
                    ]
                )
                ids += [e["EventId"] for e in answer["Entries"]]
        assert bus.metrics()["bus"]["UndeliveredAtShutdown"] == 0
        return ids

    ids = anyio.run(run, backend=backend)
    for flaky, dlq in zip(flakies, dlqs, strict=True):
        delivered = {p["id"] for p in flaky.payloads}
        dead = {p["id"] for p in dlq.payloads}
        assert delivered | dead == set(ids)
        assert not (delivered & dead)
