"""Nothing is accepted that the targets cannot deliver, and every delivery failure says why.

``NaN`` and ``Infinity`` are not JSON; ``1e999`` is beyond a double; a lone surrogate (an escaped
``"\\ud800"``, or bytes that are not UTF-8 read with ``surrogateescape``) cannot be written as
UTF-8. PutEvents answers each as malformed detail (or an invalid field), on the fast path and the
validating one alike, so no file or socket target is left failing on them for a day.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import json_strict
from eventbus.bus import EventBus, RetryPolicy, RuleTarget
from eventbus.bus.entries import fast_event
from eventbus.envelope import Event, PutEventsEntry, validate_entry
from eventbus.errors import RetryableError
from eventbus.targets.files import FileTarget
from eventbus.testing import capture_logs

from .helpers import FAST, AlwaysFails, Collector

pytestmark = pytest.mark.anyio

MALFORMED = {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
NOT_UTF8 = b'{"name": "caf\xe9"}'.decode("utf-8", "surrogateescape")  # what stdin's reader makes

UNDELIVERABLE_DETAILS = {
    "NaN": '{"a": NaN}',
    "Infinity": '{"a": Infinity}',
    "-Infinity": '{"a": [1, -Infinity]}',
    "1e999": '{"a": 1e999}',
    "-1e999 nested": '{"a": {"b": -1e999}}',
    "a long overflowing number": '{"a": 1' + "0" * 400 + '.5}',
    "escaped lone surrogate": '{"a": "\\ud800"}',
    "escaped lone low surrogate in a key": '{"\\uDC00": 1}',
    "raw lone surrogate": '{"a": "\ud800"}',
    "bytes that are not UTF-8": NOT_UTF8,
}


def good(n: int) -> dict[str, str]:
    return {"Source": "shop", "DetailType": "order", "Detail": json.dumps({"n": n})}


@pytest.mark.parametrize("detail", UNDELIVERABLE_DETAILS.values(), ids=UNDELIVERABLE_DETAILS.keys())
async def test_undeliverable_detail_is_malformed_and_costs_nothing_beside_it(detail: str, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    bus = EventBus("orders", **FAST)
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="file", target=FileTarget(out))])
    bad = {"Source": "shop", "DetailType": "order", "Detail": detail}
    async with bus:
        answer = await bus.put_events(
            [
                good(1),
                bad,  # a plain dict: the fast path's shape
                {**bad, "Time": "2026-01-01T00:00:00Z"},  # the validating path's shape
                PutEventsEntry.model_validate(bad),
                good(2),
            ]
        )
        assert await bus.wait_idle(10)
    assert answer["FailedEntryCount"] == 3
    assert answer["Entries"][1:4] == [MALFORMED] * 3
    assert validate_entry(bad) is not None
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(e["detail"]["n"] for e in written) == [1, 2]


@pytest.mark.parametrize(
    "field,value",
    [("Source", "sh\udcffop"), ("DetailType", "ord\ud800er"), ("Resources", ["arn:\udc80"])],
)
async def test_fields_that_are_not_utf8_are_invalid_arguments(field: str, value: Any) -> None:
    bus = EventBus("orders", **FAST)
    async with bus:
        answer = await bus.put_events([{**good(1), field: value}, good(2)])
    assert answer["Entries"][0] == {
        "ErrorCode": "InvalidArgument",
        "ErrorMessage": f"Parameter {field} is not valid. Reason: {field} must be valid UTF-8 text.",
    }
    assert "EventId" in answer["Entries"][1]


@pytest.mark.parametrize(
    "detail", [{"a": math.nan}, {"a": math.inf}, {"a": "\ud800"}, {"a": {1, 2}}], ids=["nan", "inf", "surrogate", "set"]
)
def test_a_mapping_detail_is_judged_the_same_and_never_raises(detail: dict[str, Any]) -> None:
    assert validate_entry({"Source": "shop", "DetailType": "order", "Detail": detail}) == validate_entry(
        {"Source": "shop", "DetailType": "order", "Detail": '{"a": NaN}'}
    )


def test_an_event_cannot_be_built_with_what_no_target_can_deliver() -> None:
    envelope = {"source": "s", "detail-type": "d", "account": "123456789012", "region": "r"}
    for bad in ({"detail": {"a": math.nan}}, {"detail": {"a": "\ud800"}}, {"source": "s\udcff"}):
        with pytest.raises(ValueError, match=r"UTF-8|not JSON"):
            Event.from_dict({**envelope, **bad})


# Text that is JSON to Python: numbers of every size, constants, and strings with surrogates.
_chars = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None)
_values = st.one_of(st.floats(), st.integers(), st.text(_chars, max_size=4))  # NaN, inf, surrogates
_raw_tokens = st.sampled_from(
    ["1e999", "-1e400", "1" + "0" * 310, "1e-999", "NaN", "-Infinity", '"\\ud800"', '"\\udfff\\ud800"', '"\\ud83d\\ude00"']
)


@settings(max_examples=300, deadline=None)
@given(
    fragments=st.lists(
        st.one_of(_raw_tokens, st.tuples(_values, st.booleans()).map(lambda v: json.dumps(v[0], ensure_ascii=v[1]))),
        max_size=4,
    )
)
def test_whatever_put_events_accepts_every_target_can_write(fragments: list[str]) -> None:
    parts = [f'"k{i}": {text}' for i, text in enumerate(fragments)]
    detail = "{" + ", ".join(parts) + "}"
    entry = {"Source": "shop", "DetailType": "order", "Detail": detail}
    fast = fast_event(entry, account="123456789012", region="r", now_text="2026-01-01T00:00:00Z", max_entry_size=10**6)
    accepted = validate_entry(entry, max_entry_size=10**6) is None
    assert (fast is not None) <= accepted  # the fast path never takes what validation refuses
    if accepted:
        event = Event.from_dict(
            {"source": "shop", "detail-type": "order", "account": "123456789012", "region": "r",
             "detail": json_strict.loads(detail)}
        )
        # What the file, HTTP, NATS and queue targets do with an event: UTF-8 bytes of its JSON.
        line = event.to_json().encode("utf-8")
        assert json_strict.loads(line.decode("utf-8"))["detail"] == event.detail


async def test_every_delivery_failure_log_line_says_why() -> None:
    dead = AlwaysFails(RetryableError("the dead-letter queue is gone"))
    bus = EventBus("orders", **FAST)
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets(
        "r",
        [
            RuleTarget(
                id="dl", target=AlwaysFails(OSError("disk on fire")), dead_letter=Collector(),
                retry_policy=RetryPolicy(MaximumRetryAttempts=1),
            ),
            RuleTarget(
                id="none", target=AlwaysFails(RetryableError("503 from upstream")),
                retry_policy=RetryPolicy(MaximumRetryAttempts=0),
            ),
            RuleTarget(
                id="dlfails", target=AlwaysFails(RetryableError("refused")), dead_letter=dead,
                retry_policy=RetryPolicy(MaximumRetryAttempts=0),
            ),
        ],
    )
    with capture_logs() as logs:
        async with bus:
            await bus.put_events([good(1)])
            assert await bus.wait_idle(10)
    by_event = {(entry["event"], entry.get("target")): entry for entry in logs}
    assert by_event[("retried", "dl")]["error"] == "OSError: disk on fire"
    assert by_event[("dead-lettered", "dl")]["error"] == "OSError: disk on fire"
    assert by_event[("undeliverable, no dead-letter target", "none")]["error"] == "503 from upstream"
    failed = by_event[("dead letter failed", "dlfails")]
    assert failed["error"] == "refused" and failed["dlq_error"] == "the dead-letter queue is gone"
    failures = [e for e in logs if e["log_level"] in ("warning", "error") and "target" in e]
    assert failures and all(e.get("error") for e in failures)
