"""The shared pattern corpus through TestEventPattern: the same verdicts and messages as ``Pattern``."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError
from patterns.corpus import load_cases, require_corpus

from eventbus import Pattern, PatternError

from .helpers import LiveServer

CORPUS = "patterns-aws.jsonl"


def test_the_corpus_through_the_api_gives_awss_verdicts_and_messages(live: LiveServer) -> None:
    require_corpus(CORPUS)
    cases = load_cases(CORPUS)
    events = live.client("events")
    verdicts = messages = 0
    disagreements: list[str] = []
    for case in cases:
        pattern, event = json.dumps(case["pattern"]), json.dumps(case["event"])
        try:
            result: Any = events.test_event_pattern(EventPattern=pattern, Event=event)["Result"]
        except ClientError as exc:
            result = (exc.response["Error"]["Code"], exc.response["Error"]["Message"])
        try:
            direct: Any = Pattern(case["pattern"]).matches(case["event"])
        except PatternError as exc:
            direct = (exc.error_code, str(exc))
        if result != direct:
            disagreements.append(f"{case['name']}: API {result!r}, Pattern {direct!r}")
        if case["expect"] == "error":
            messages += result == (case["error_code"], case["error_message"])
        else:
            verdicts += result is (case["expect"] == "match")
    assert disagreements == []
    assert (verdicts + messages, messages) == (155, 38)
