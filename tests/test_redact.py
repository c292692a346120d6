"""Masking by value: every encoding of a registered secret, on every log path, for as long as
the object holding it lives."""

from __future__ import annotations

import base64
import gc
import io
import json
import logging
from urllib.parse import quote, quote_plus

import httpx
from pydantic import BaseModel, SecretStr

from eventbus import redact

SECRET = "q secret&1/é\"'\\"


class Holder(BaseModel):
    value: redact.Secret


def test_every_encoding_of_a_registered_secret_is_masked() -> None:
    holder = Holder(value=SECRET)
    query = str(httpx.QueryParams({"sig": SECRET}))
    texts = [
        SECRET,
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        quote(SECRET, safe="").lower(),
        json.dumps(SECRET),
        json.dumps(SECRET, ensure_ascii=False),
        repr(SECRET),
        repr(json.dumps(SECRET)),
        json.dumps(repr(SECRET)),
        base64.b64encode(SECRET.encode()).decode(),
        query,
    ]
    for text in texts:
        masked = redact.mask(f"before {text} after")
        assert masked.startswith("before ") and masked.endswith(" after")
        assert redact.MASK in masked, text
        assert SECRET not in masked and quote_plus(SECRET) not in masked
    assert holder.value.get_secret_value() == SECRET


def test_a_secret_is_forgotten_with_its_holder() -> None:
    value = "forgotten-" + "x" * 8
    holder = Holder(value=value)
    assert redact.mask(value) == redact.MASK
    del holder
    gc.collect()
    assert redact.mask(value) == value


def test_url_passwords_are_registered_and_redacted_in_urls() -> None:
    owner = SecretStr("owner")
    redact.register_url("nats://ops:p%40ss-word-1@127.0.0.1:4222", owner)
    assert redact.mask("pass p@ss-word-1 and p%40ss-word-1") == f"pass {redact.MASK} and {redact.MASK}"
    assert redact.redact_url("nats://ops:x@h:1") == f"nats://ops:{redact.MASK}@h:1"
    assert redact.redact_url("nats://h:1") == "nats://h:1"


def test_every_log_record_is_masked_whatever_prints_it() -> None:
    from eventbus._logger import LogEvent, get_logger

    holder = Holder(value="logged-secret-42")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("some.library")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    ours = logging.getLogger("eventbus.test_redact")
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)
    records: list[logging.LogRecord] = []
    keep = logging.Handler()
    keep.emit = records.append  # type: ignore[method-assign]
    ours.addHandler(keep)
    try:
        logger.info("calling %s", "http://h/?k=logged-secret-42")
        try:
            raise RuntimeError("failed with logged-secret-42")
        except RuntimeError:
            logger.exception("boom")
        get_logger("eventbus.test_redact").error("failed", error="logged-secret-42", nested={"k": ["logged-secret-42"]})
    finally:
        logger.removeHandler(handler)
        ours.removeHandler(handler)
        ours.removeHandler(keep)
    out = stream.getvalue()
    assert "calling http://h/?k=**********" in out and "boom" in out and "RuntimeError" in out
    assert 'failed error="**********" nested={"k": ["**********"]}' in out
    assert "logged-secret-42" not in out
    # eventbus's structured event keeps its class (and so its fields, for structlog to render).
    assert isinstance(records[0].msg, LogEvent) and records[0].msg["error"] == redact.MASK
    assert holder.value.get_secret_value() == "logged-secret-42"


def test_the_filter_and_processor_mask_for_applications_that_wire_their_own_logging() -> None:
    holder = Holder(value="wired-secret-7")
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "token %s", ("wired-secret-7",), None)
    assert redact.MaskSecretsFilter().filter(record)
    assert record.getMessage() == f"token {redact.MASK}"
    event = redact.mask_processor(None, "info", {"event": "x", "values": ("wired-secret-7", 1)})
    assert event == {"event": "x", "values": (redact.MASK, 1)}
    assert holder.value.get_secret_value() == "wired-secret-7"


def test_error_text_masks_then_cuts_and_names_foreign_exceptions() -> None:
    holder = Holder(value="cut-secret-99")
    assert redact.error_text(KeyError("cut-secret-99")) == f"KeyError: '{redact.MASK}'"
    text = redact.error_text(ValueError("x" * 20 + "cut-secret-99"), limit=30)
    assert text == "ValueError: " + "x" * 18 and "cut" not in text
    assert redact.error_text(RuntimeError()) == "RuntimeError"
    assert holder.value.get_secret_value() == "cut-secret-99"
