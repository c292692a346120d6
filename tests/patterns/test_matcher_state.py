"""The matcher as a mutable collection: random add/remove/match sequences against a model, and
one writer changing rules while reader threads match."""

from __future__ import annotations

import threading
import time
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from eventbus import Matcher, Pattern
from eventbus.patterns.reference import matches_parsed

from .test_matcher_strategies import events, valid_patterns

NAMES = st.sampled_from(["alpha", "beta", "gamma", "delta", "a.b", ""])


class MatcherModel(RuleBasedStateMachine):
    """The model: a dict from name to the patterns added under it, matched by the reference."""

    def __init__(self) -> None:
        super().__init__()
        self.matcher = Matcher()
        self.model: dict[str, list[Pattern]] = {}

    @rule(name=NAMES, pattern=valid_patterns)
    def add(self, name: str, pattern: Pattern) -> None:
        self.matcher.add(name, pattern)
        self.model.setdefault(name, []).append(pattern)

    @rule(name=NAMES)
    def remove(self, name: str) -> None:
        self.matcher.remove(name)
        self.model.pop(name, None)

    @rule(event=events())
    def match(self, event: dict[str, Any]) -> None:
        wanted = {n for n, ps in self.model.items() if any(matches_parsed(p.parsed, event) for p in ps)}
        assert self.matcher.match(event) == wanted

    @invariant()
    def same_names(self) -> None:
        assert len(self.matcher) == len(self.model)
        assert sorted(self.matcher.names()) == sorted(self.model)
        for name in ("alpha", ""):
            assert (name in self.matcher) is (name in self.model)


MatcherModel.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
test_matcher_model = MatcherModel.TestCase


def test_readers_never_see_a_torn_update() -> None:
    """Writer: a fixed sequence of adds and removes. Readers: match one event over and over.

    Every rule ``k`` matches the event through one ``$or`` branch only, its branches anchored on
    different paths, beside non-matching noise rules in the same array and range indexes. Rule
    names are keyed by the operation that adds them and each rule is removed once, so every
    change to the matching rules gives an answer no other state gives. A result is valid only if
    it is the answer of some published state, no reader ever sees the states go back in time, and
    no match raises.
    """
    event = {
        "source": "app",
        "detail": {"n": 5, "tags": ["x", "y"], "items": [{"k": 1, "v": "a"}, {"k": 2, "v": "b"}]},
    }
    operations: list[tuple[str, str, dict[str, Any] | None]] = []
    live: list[str] = []
    for k in range(60):
        name = f"rule-{k}"
        pattern: dict[str, Any] = {
            "$or": [
                {"detail": {"n": [{"numeric": [">", 100 + k]}]}},
                {"detail": {"tags": [f"t{k}"]}},
                {"detail": {"items": {"k": [1], "v": ["a"]}}, "source": [{"prefix": "ap"}]},
            ]
        }
        operations.append(("add", name, pattern))
        operations.append(("add", f"noise-{k}", {"detail": {"items": {"k": [1], "v": ["b"]}}}))
        live.append(name)
        if k % 3 == 2:
            operations.append(("remove", live.pop(0), None))
            operations.append(("remove", f"noise-{k - 1}", None))
    # The answer after each operation (index 0: before any).
    states: list[frozenset[str]] = [frozenset()]
    current: set[str] = set()
    for op, name, _ in operations:
        if name.startswith("rule-"):
            current = current | {name} if op == "add" else current - {name}
        states.append(frozenset(current))
    first_index: dict[frozenset[str], list[int]] = {}
    for i, state in enumerate(states):
        first_index.setdefault(state, []).append(i)

    matcher = Matcher()
    done = threading.Event()
    problems: list[str] = []
    seen_counts: list[int] = []

    def reader() -> None:
        position = 0
        count = 0
        deadline = time.monotonic() + 30
        while not done.is_set() and time.monotonic() < deadline and count < 200_000:
            try:
                result = frozenset(matcher.match(event))
            except Exception as exc:  # a torn structure shows up as an error, too
                problems.append(f"match raised {exc!r}")
                return
            count += 1
            later = [i for i in first_index.get(result, []) if i >= position]
            if not later:
                problems.append(f"result {sorted(result)} is no published state at or after {position}")
                return
            position = later[0]
        seen_counts.append(count)

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for thread in readers:
        thread.start()
    for op, name, source in operations:
        if op == "add":
            assert source is not None
            matcher.add(name, source)
        else:
            matcher.remove(name)
        time.sleep(0)  # let readers in between operations
    done.set()
    for thread in readers:
        thread.join(timeout=60)
    assert not problems, problems[:3]
    assert len(seen_counts) == 3 and all(seen_counts)
    assert matcher.match(event) == set(states[-1])
