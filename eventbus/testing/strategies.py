"""Hypothesis strategies for EventBridge events, patterns and PutEvents entries.

* ``events(...)``: valid event envelopes (dicts in AWS's dash-cased JSON shape), optionally with
  a fixed source, detail-type or parts of detail;
* ``patterns(...)``: valid patterns over every operator, ``$or`` included, within a size bound;
* ``matching_events(pattern)`` / ``non_matching_events(pattern)``: envelopes that provably match
  the pattern, or provably do not;
* ``put_events_entries(...)``: valid PutEvents entries (``Source``, ``DetailType``, ``Detail``...).

Matching events are built, not filtered: pick an ``$or`` branch, and for each of its fields pick
an alternative and synthesize a value for it (``eventbus.testing._values``), placed at its dotted
path inside otherwise random filler that cannot disturb the match. Non-matching events are near
misses: a matching event with one field of every branch broken. Either way the reference matcher
(``eventbus.patterns.reference``) has the last word on every event, so a generator bug could only
ever cost a discarded draw, never a wrong event.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from eventbus.envelope import Event, format_time, validate_entry
from eventbus.errors import InvalidEventError, PatternError
from eventbus.patterns.parse import ParsedPattern
from eventbus.patterns.pattern import Pattern, PatternInput
from eventbus.patterns.reference import matches_parsed
from eventbus.patterns.values import Scalar
from eventbus.testing._analysis import ABSENT, Absent, Analysis, FieldPlan, pattern_text
from eventbus.testing._layout import EnvelopeSpec, place, prune, related
from eventbus.testing._patterns import OPERATORS, pattern_dicts
from eventbus.testing._values import satisfying, scalars

__all__ = [
    "OPERATORS",
    "entry_from_event",
    "events",
    "matching_events",
    "non_matching_events",
    "patterns",
    "put_events_entries",
]


_SOURCES = ("com.example.orders", "com.example.billing", "my.app", "aws.s3", "partner.shop")
_DETAIL_TYPES = ("Order Placed", "Invoice Paid", "Object Created", "User Signed Up", "Heartbeat")
_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2")
_KEYS = st.one_of(
    st.sampled_from(("status", "amount", "items", "customer", "tags", "count", "note", "ok")),
    st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz_"), min_size=1, max_size=6),
)
_LEAF_VALUES: st.SearchStrategy[Any] = scalars()
_JSON: st.SearchStrategy[Any] = st.recursive(
    _LEAF_VALUES,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=3)),
    max_leaves=6,
)
_DETAILS: st.SearchStrategy[dict[str, Any]] = st.dictionaries(_KEYS, _JSON, max_size=4)
_ONE_ARN = st.lists(st.just("arn:aws:s3:::other"), max_size=1)


def _resolve(draw: st.DrawFn, value: Any) -> Any:
    """A fixed value as is, a strategy drawn, mappings resolved key by key."""
    if isinstance(value, st.SearchStrategy):
        return draw(value)
    if isinstance(value, Mapping):
        return {k: _resolve(draw, v) for k, v in value.items()}
    return value


def _deep_merge(base: dict[str, Any], fixed: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in fixed.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


_ACCOUNTS = st.text(st.sampled_from("0123456789"), min_size=12, max_size=12)
_TIMES = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(format_time)
_ARNS = st.sampled_from(
    ("s3:::bucket", "sqs:us-east-1:123456789012:queue", "ec2:us-east-1:123456789012:instance/i-1")
).map(lambda tail: "arn:aws:" + tail)


@functools.lru_cache(maxsize=64)
def _envelope(spec: EnvelopeSpec, filler: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """Envelope strategies, built once per spec (building one per draw costs more than drawing)."""
    fields: dict[str, st.SearchStrategy[Any]] = {
        "version": st.just("0"),
        "id": st.uuids(version=4).map(str),
        "detail-type": st.sampled_from(_DETAIL_TYPES),
        "source": st.sampled_from(_SOURCES),
        "account": st.just(spec.account) if spec.account is not None else _ACCOUNTS,
        "time": _TIMES,
        "region": st.just(spec.region) if spec.region is not None else st.sampled_from(_REGIONS),
        "resources": st.lists(_ARNS, max_size=2),
        "detail": _DETAILS if filler else st.builds(dict),
    }
    return st.fixed_dictionaries(fields)


def events(
    *,
    source: str | st.SearchStrategy[str] | None = None,
    detail_type: str | st.SearchStrategy[str] | None = None,
    detail: Mapping[str, Any] | st.SearchStrategy[dict[str, Any]] | None = None,
    resources: list[str] | st.SearchStrategy[list[str]] | None = None,
    account: str | st.SearchStrategy[str] | None = None,
    region: str | st.SearchStrategy[str] | None = None,
    time: str | st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid EventBridge events, as the dicts a target receives (``Event.to_dict()`` shape).

    Every argument is a fixed value or a strategy. ``detail`` may also be a mapping of fixed parts
    merged into random detail (nested mappings merge deeply; their values may be strategies):
    ``events(source="com.example.orders", detail={"order": {"total": st.integers(1, 99)}})``.
    An argument that makes the envelope invalid (an 11-digit account, an empty source) raises
    ``InvalidArgument`` when the strategy is used.
    """

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        event = draw(_envelope(EnvelopeSpec()))
        for key, value in (
            ("source", source),
            ("detail-type", detail_type),
            ("resources", resources),
            ("account", account),
            ("region", region),
            ("time", time),
        ):
            if value is not None:
                event[key] = _resolve(draw, value)
        if isinstance(detail, st.SearchStrategy):
            event["detail"] = draw(detail)
        elif detail is not None:
            if not isinstance(detail, Mapping):
                raise InvalidArgument(f"detail={detail!r} must be a mapping or a strategy of dicts")
            event["detail"] = _deep_merge(event["detail"], _resolve(draw, detail))
        try:
            return Event.from_dict(event).to_dict()
        except InvalidEventError as exc:
            raise InvalidArgument(f"events(...) made an invalid envelope: {exc}") from None

    def make() -> st.SearchStrategy[dict[str, Any]]:
        # Fixed values are checked once, up front, so a bad one fails fast instead of failing
        # (and being shrunk) example after example.
        fixed = {
            key: value
            for key, value in (
                ("source", source),
                ("detail-type", detail_type),
                ("resources", resources),
                ("account", account),
                ("region", region),
                ("time", time),
            )
            if value is not None and not isinstance(value, st.SearchStrategy)
        }
        if detail is not None and not isinstance(detail, Mapping | st.SearchStrategy):
            raise InvalidArgument(f"detail={detail!r} must be a mapping or a strategy of dicts")
        probe = {"detail-type": "x", "source": "x", "account": "123456789012", "region": "x", **fixed}
        try:
            Event.from_dict(probe)
        except InvalidEventError as exc:
            raise InvalidArgument(f"events(...): {exc}") from None
        return build()

    return _lazy(make)


def patterns(
    *, max_fields: int = 4, max_size: int = 2048, operators: Collection[str] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid event patterns (dicts) using the given operators (default: all of ``OPERATORS``).

    Every pattern compiles with ``Pattern(p)``, has at most ``max_fields`` field leaves and at most
    ``max_size`` characters of compact JSON, and is matched by some valid envelope (so
    ``matching_events`` always works on it; ``non_matching_events`` may not, see there).
    Operators: ``exact`` (strings, numbers, booleans, null, ``exactly``), ``prefix``, ``suffix`` and
    their ``-ignore-case`` forms, ``equals-ignore-case``, ``wildcard``, ``anything-but`` with its
    ``-prefix``/``-suffix``/``-ignore-case``/``-wildcard`` forms, ``numeric``, ``exists``, ``cidr``
    and ``$or``.
    """

    def make() -> st.SearchStrategy[dict[str, Any]]:
        chosen = tuple(OPERATORS) if operators is None else tuple(operators)
        unknown = sorted(set(chosen) - set(OPERATORS))
        if unknown:
            raise InvalidArgument(f"Unknown operators {unknown}; choose from {list(OPERATORS)}")
        if not set(chosen) - {"$or"}:
            raise InvalidArgument("operators must include at least one operator besides '$or'")
        if isinstance(max_fields, bool) or not isinstance(max_fields, int) or max_fields < 1:
            raise InvalidArgument(f"max_fields={max_fields!r} must be a positive integer")
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 40:
            raise InvalidArgument(f"max_size={max_size!r} is too small for a pattern; use at least 40")
        return pattern_dicts(max_fields=max_fields, max_size=max_size, operators=chosen)

    return _lazy(make)


def _parse(pattern: PatternInput | Pattern, who: str) -> ParsedPattern:
    try:
        return Pattern(pattern, max_size=None).parsed
    except PatternError as exc:
        raise InvalidArgument(f"{who}: {exc}") from None


def _spec(account: str | None, region: str | None, replay: bool) -> EnvelopeSpec:
    spec = EnvelopeSpec(account=account, region=region, replay=replay)
    try:
        Event.from_dict(
            {"detail-type": "x", "source": "x", "account": account or "123456789012", "region": region or "x"}
        )
    except InvalidEventError as exc:
        raise InvalidArgument(f"account={account!r}, region={region!r}: {exc}") from None
    return spec


def _filler(draw: st.DrawFn, analysis: Analysis) -> dict[str, Any]:
    pruned: dict[str, Any] = prune(draw(_DETAILS), "detail", analysis.paths)
    return pruned


def _satisfy(draw: st.DrawFn, plan: FieldPlan, arrays: bool) -> Absent | Scalar | list[Scalar]:
    """An assignment for one field rule that satisfies it (absence or leaves)."""
    if plan.absent_ok and (not plan.options or draw(st.integers(0, 3)) == 0):
        return ABSENT
    condition, fixed = draw(st.sampled_from(plan.options))
    value = draw(satisfying(condition))
    if not (plan.domain.valid(value) and condition.test(value)):
        value = draw(st.sampled_from(fixed))
    if arrays and plan.domain.free and draw(st.integers(0, 4)) == 0:
        # Array membership: the value among others in an event array.
        others = draw(st.lists(_LEAF_VALUES, max_size=2))
        at = draw(st.integers(0, len(others)))
        return [*others[:at], value, *others[at:]]
    if plan.domain.array:
        others = draw(_ONE_ARN)
        return [value, *others]
    return value if plan.domain.free else [value]


def _wrap_objects(draw: st.DrawFn, node: dict[str, Any], prefix: str, paths: tuple[str, ...]) -> None:
    """Now and then put an object inside an array, alone or beside filler that holds no pattern
    path: matching must not care (every leaf below stays in one element)."""
    for key, value in list(node.items()):
        if isinstance(value, dict) and value:
            here = f"{prefix}.{key}"
            _wrap_objects(draw, value, here, paths)
            if related(here, paths) and draw(st.integers(0, 4)) == 0:
                filler = prune(
                    draw(st.dictionaries(_KEYS, _LEAF_VALUES, min_size=1, max_size=2)), here, paths
                )
                node[key] = draw(st.sampled_from([[value], [filler, value], [value, filler]]))


def _build(
    draw: st.DrawFn,
    analysis: Analysis,
    assignments: Mapping[str, Absent | Scalar | list[Scalar]],
    arrays: bool,
) -> dict[str, Any]:
    event = draw(_envelope(analysis.spec, filler=False))
    detail = _filler(draw, analysis)
    for path in sorted(assignments, key=lambda p: p.split(".")):
        value = assignments[path]
        domain = analysis.domains[path]
        if domain.leafless:
            continue
        if path.startswith("detail."):
            if not isinstance(value, Absent):
                place(detail, path[len("detail.") :], value)
        elif path == "resources":
            event["resources"] = (
                [] if isinstance(value, Absent) else value if isinstance(value, list) else [value]
            )
        elif isinstance(value, Absent):
            event.pop(path, None)
        else:
            event[path] = value[0] if isinstance(value, list) else value
    if arrays:
        _wrap_objects(draw, detail, "detail", analysis.paths)
    event["detail"] = detail
    return event


def _lazy(make: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Defer argument checks to first use, as hypothesis's own strategies do."""
    strategy: st.SearchStrategy[dict[str, Any]] = st.deferred(make)
    return strategy


def matching_events(
    pattern: PatternInput | Pattern,
    *,
    account: str | None = None,
    region: str | None = None,
    allow_replay_name: bool = True,
    arrays: bool = False,
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid events that ``pattern`` (a dict, JSON text or ``Pattern``) matches.

    Every operator is covered: exact values (other spellings of equal numbers and IPv6 addresses
    too), prefixes and suffixes with random tails, case-flipped ignore-case values, wildcard
    segments joined by random text, numbers inside the interval, addresses inside the network,
    values outside every anything-but set, and omitted fields for ``exists: false``. Values sit at
    their dotted paths and the rest of the event is random. Each event is checked with the reference matcher.

    ``account`` and ``region`` pin those envelope fields (a bus's own, say);
    ``allow_replay_name=False`` leaves out ``replay-name``, which only replays carry.
    ``arrays=True`` also puts values inside arrays, among other values, and objects inside arrays
    beside filler (EventBridge matches any element): for testing matchers rather than handlers,
    which usually expect the scalars their producers send.
    A pattern no valid envelope can match (``{"source": [5]}``: a source is always a string) raises
    ``InvalidArgument`` naming the field, when the strategy is first used.
    """

    def make() -> st.SearchStrategy[dict[str, Any]]:
        parsed = _parse(pattern, "matching_events")
        analysis = Analysis(parsed, _spec(account, region, allow_replay_name))
        if not analysis.matchable:
            raise InvalidArgument(
                f"No valid event matches {pattern_text(parsed)}: {analysis.why_unmatchable()}. "
                'Fix the pattern (detail fields belong under "detail"), or use '
                "events() if any event will do."
            )

        @st.composite
        def build(draw: st.DrawFn) -> dict[str, Any]:
            branch = draw(st.sampled_from(analysis.matchable))
            assignments = {
                plan.rule.path: _satisfy(draw, plan, arrays) for plan in analysis.branch_plans[branch]
            }
            event = _build(draw, analysis, assignments, arrays)
            assume(matches_parsed(parsed, event))
            return event

        return build()

    return _lazy(make)


def non_matching_events(
    pattern: PatternInput | Pattern,
    *,
    account: str | None = None,
    region: str | None = None,
    allow_replay_name: bool = True,
    arrays: bool = False,
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid events that ``pattern`` does not match: near misses, each a matching event with one
    field of every ``$or`` branch broken (a value that fails all its alternatives, or the field
    left out), so a test sees the boundary rather than random noise. The reference matcher
    confirms each one.

    Such events do not always exist. A pattern that every valid envelope matches raises
    ``InvalidArgument`` when the strategy is first used, for example:

    * a field whose alternatives cover every value and absence:
      ``{"detail": {"x": [{"exists": true}, {"exists": false}]}}``;
    * ``{"exists": false}`` on every field, where each field is one an envelope never holds as a
      leaf: ``{"detail": [{"exists": false}]}`` (detail is an object), ``{"foo": [{"exists": false}]}``;
    * a required envelope field whose rule accepts every value it can take:
      ``{"source": [{"prefix": ""}]}``, ``{"account": [{"exists": true}]}``;
    * ``$or`` branches that together cover everything.

    Other arguments are as for ``matching_events``.
    """

    def make() -> st.SearchStrategy[dict[str, Any]]:
        parsed = _parse(pattern, "non_matching_events")
        analysis = Analysis(parsed, _spec(account, region, allow_replay_name))
        if analysis.static_violation is None:
            raise InvalidArgument(
                f"Every valid event matches {pattern_text(parsed)}, so there are no non-matching "
                f"events to generate: {analysis.why_unrefutable()}. Remove the always-true "
                "condition from the pattern, or drop non_matching_events() from this test."
            )

        @st.composite
        def build(draw: st.DrawFn) -> dict[str, Any]:
            rng = draw(st.randoms(use_true_random=False))
            assignments: dict[str, Absent | Scalar | list[Scalar]] = {}
            # Near misses: start from a matching event (now and then from nothing at all).
            if analysis.matchable and draw(st.integers(0, 9)) != 9:
                branch = draw(st.sampled_from(analysis.matchable))
                for plan in analysis.branch_plans[branch]:
                    assignments[plan.rule.path] = _satisfy(draw, plan, arrays)
            chosen = analysis.violation_plan(rng) or analysis.static_violation
            assert chosen is not None
            for path, rules in chosen.items():
                absent_ok, values = analysis.violating(path, rules)
                domain = analysis.domains[path]
                conditions = [c for r in rules for c in r.requires_leaf]
                options: list[Absent | Scalar | list[Scalar]] = [ABSENT] if absent_ok else []
                if values:
                    fresh = draw(_LEAF_VALUES)
                    if domain.valid(fresh) and not any(c.test(fresh) for c in conditions):
                        options.append(fresh)
                    options.append(draw(st.sampled_from(values)))
                    if (arrays and domain.free) or domain.array:
                        options.append(draw(st.lists(st.sampled_from(values), min_size=1, max_size=3)))
                assignments[path] = draw(st.sampled_from(options))
            event = _build(draw, analysis, assignments, arrays)
            assume(not matches_parsed(parsed, event))
            return event

        return build()

    return _lazy(make)


def entry_from_event(event: Mapping[str, Any], *, event_bus_name: str | None = None) -> dict[str, Any]:
    """The PutEvents entry that makes a bus emit ``event`` (up to the fields the bus fills itself:
    id, account, region, version)."""
    entry: dict[str, Any] = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event.get("detail", {}), separators=(",", ":"), ensure_ascii=False),
    }
    if event.get("time") is not None:
        entry["Time"] = event["time"]
    if event.get("resources"):
        entry["Resources"] = list(event["resources"])
    if event_bus_name is not None:
        entry["EventBusName"] = event_bus_name
    return entry


def put_events_entries(
    events_from: st.SearchStrategy[Mapping[str, Any]] | None = None,
    *,
    source: str | st.SearchStrategy[str] | None = None,
    detail_type: str | st.SearchStrategy[str] | None = None,
    detail: Mapping[str, Any] | st.SearchStrategy[dict[str, Any]] | None = None,
    resources: list[str] | st.SearchStrategy[list[str]] | None = None,
    event_bus_name: str | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid PutEvents entries (``Source``, ``DetailType``, ``Detail`` as JSON text, ``Time``,
    ``Resources``, and ``EventBusName`` when given): ``validate_entry`` accepts every one.

    Either describe the events as for ``events(...)``, or pass a strategy of events, such as
    ``put_events_entries(matching_events(pattern))``, to get the entries that produce them. For a
    whole request, ``st.lists(put_events_entries(), min_size=1, max_size=10)``.
    """

    def make() -> st.SearchStrategy[dict[str, Any]]:
        if events_from is not None and any(v is not None for v in (source, detail_type, detail, resources)):
            raise InvalidArgument(
                "Pass either a strategy of events or source/detail_type/detail/resources, not both"
            )
        base = (
            events_from
            if events_from is not None
            else events(source=source, detail_type=detail_type, detail=detail, resources=resources)
        )
        return base.map(to_entry)

    def to_entry(event: Mapping[str, Any]) -> dict[str, Any]:
        entry = entry_from_event(event, event_bus_name=event_bus_name)
        error = validate_entry(entry)
        if error is not None:
            raise InvalidArgument(f"Cannot make a valid PutEvents entry of {event!r}: {error.error_message}")
        return entry

    return _lazy(make)
