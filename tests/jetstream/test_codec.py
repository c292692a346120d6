"""How records and deliveries are written on the streams: every field a redrive or a replay
needs survives, and the message ids deduplicate what is the same message and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

from eventbus.bus import LogRecord
from eventbus.bus.logs.jetstream.log import decode_record, encode_record
from eventbus.bus.logs.jetstream.queue import delivery_id, message_id
from eventbus.bus.logs.protocol import Delivery

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EVENT = {"id": "e-1", "source": "shop", "detail": {"n": "é"}}


def test_a_record_comes_back_with_every_field() -> None:
    record = LogRecord(EVENT, WHEN, ("a", "b"), "rule", -1, target_id="t1", only_rules=("rule",))
    back = decode_record(encode_record(record), 7)
    assert back == LogRecord(EVENT, WHEN, ("a", "b"), "rule", 7, target_id="t1", only_rules=("rule",))


def test_a_record_s_own_text_is_written_as_it_is() -> None:
    text = '{"id":"e-1","source":"shop","detail":{"n":"é"}}'
    record = LogRecord(EVENT, WHEN, (), None, -1, text=text)
    assert text.encode() in encode_record(record)
    assert decode_record(encode_record(record), 1).event == EVENT


def test_message_ids_tell_replays_and_redrives_from_the_event() -> None:
    ids = {
        message_id(EVENT),
        message_id({**EVENT, "replay-name": "r"}),
        message_id(EVENT, "rule/t1"),
        message_id(EVENT, "rule/t2"),
    }
    assert len(ids) == 4


def test_a_delivery_routed_twice_from_one_message_has_one_id() -> None:
    one = Delivery("rule/t1", EVENT, "{}", WHEN, offset=3)
    assert delivery_id(one) == delivery_id(Delivery("rule/t1", EVENT, "{}", WHEN, offset=3))
    assert delivery_id(one) != delivery_id(Delivery("rule/t1", EVENT, "{}", WHEN, offset=4))
    assert delivery_id(one) != delivery_id(Delivery("rule/t2", EVENT, "{}", WHEN, offset=3))


def test_records_of_one_call_share_their_fields_only_when_they_are_the_same() -> None:
    heads: dict[tuple[object, ...], str] = {}
    one = LogRecord(EVENT, WHEN, ("a",), None, -1)
    other = LogRecord({**EVENT, "id": "e-2"}, WHEN, ("b",), "rule", -1, target_id="t1")
    bodies = [encode_record(record, heads) for record in (one, other, one)]
    assert [decode_record(body, 1) for body in bodies] == [
        LogRecord(EVENT, WHEN, ("a",), None, 1),
        LogRecord({**EVENT, "id": "e-2"}, WHEN, ("b",), "rule", 1, target_id="t1"),
        LogRecord(EVENT, WHEN, ("a",), None, 1),
    ]
    assert len(heads) == 2
