"""Where a pattern's fields can live in an EventBridge envelope, and how values are put there.

A pattern path names leaves; an envelope constrains them. ``detail.*`` paths may hold any JSON,
``source`` must be a non-empty string, ``account`` twelve digits, a top-level ``foo`` can never
exist... ``Domain`` records this per path so the generators never produce an invalid envelope and
can tell, before drawing anything, when a pattern asks for the impossible.

``place`` puts a value at a dotted path inside ``detail``. Paths may overlap (``detail.a`` is a
leaf while ``detail.a.b`` is another): event-ruler reads an event key ``"a.b"`` as the path
``a.b``, so the longer path goes under a dotted key once the shorter one holds a scalar.
``prune`` removes from random filler everything that could add leaves at a pattern path, so that
the leaves a generator places are the only ones the matcher sees.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from eventbus.envelope import format_time, parse_time
from eventbus.patterns.values import Condition, Scalar, is_number

__all__ = [
    "ENVELOPE_FIELDS",
    "Domain",
    "EnvelopeSpec",
    "dedupe",
    "domain_for",
    "fitted_witnesses",
    "place",
    "prune",
    "related",
    "spliced",
]

#: The fields of a delivered event, in AWS's order.
ENVELOPE_FIELDS = (
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
)

_ACCOUNT = re.compile(r"\d{12}")


@dataclass(frozen=True, slots=True)
class EnvelopeSpec:
    """What the generated envelopes must agree with.

    ``account`` and ``region`` pin those fields (to a bus's own, say); ``replay`` allows a
    ``replay-name`` when a pattern asks for one (a bus only sets it when replaying, so events sent
    through ``put_events`` never carry it).
    """

    account: str | None = None
    region: str | None = None
    replay: bool = True


def _non_empty(value: Scalar) -> bool:
    return isinstance(value, str) and value != ""


def _detail_type(value: Scalar) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 128


def _account(value: Scalar) -> bool:
    return isinstance(value, str) and _ACCOUNT.fullmatch(value) is not None


def _time(value: Scalar) -> bool:
    # Only the form the bus itself writes survives a trip through PutEvents unchanged.
    if not isinstance(value, str):
        return False
    try:
        return format_time(parse_time(value)) == value
    except (ValueError, OverflowError):
        return False


def _string(value: Scalar) -> bool:
    return isinstance(value, str)


@dataclass(frozen=True, slots=True)
class Domain:
    """The leaves one path can hold in a valid envelope.

    ``check`` is None for "any JSON scalar"; ``leafless`` paths can never hold a leaf (``detail``
    is an object, a top-level ``foo`` is not an envelope field); ``required`` paths can never be
    absent; ``array`` paths hold a list of leaves (``resources``).
    """

    describe: str
    check: Callable[[Scalar], bool] | None = None
    required: bool = False
    leafless: bool = False
    array: bool = False
    samples: tuple[str, ...] = field(default=())

    def valid(self, value: Scalar) -> bool:
        if self.leafless:
            return False
        return self.check is None or self.check(value)

    @property
    def can_be_absent(self) -> bool:
        return not self.required

    @property
    def free(self) -> bool:
        return self.check is None and not self.leafless


_FREE = Domain("any JSON value")


def _fixed(name: str, value: str) -> Domain:
    return Domain(
        f"always {value!r} (the {name} is fixed)", lambda v: v == value, required=True, samples=(value,)
    )


def domain_for(path: str, spec: EnvelopeSpec) -> Domain:
    """What a valid envelope can hold at dotted ``path``."""
    if path.startswith("detail."):
        return _FREE
    if path == "detail":
        return Domain("an object, never a leaf value", leafless=True)
    if path == "source":
        return Domain("a non-empty string", _non_empty, required=True, samples=("com.example.orders",))
    if path == "detail-type":
        return Domain(
            "a string of 1 to 128 characters", _detail_type, required=True, samples=("Order Placed",)
        )
    if path == "version":
        return _fixed("envelope version", "0")
    if path == "id":
        return Domain(
            "a non-empty string", _non_empty, required=True, samples=("00000000-0000-4000-8000-000000000000",)
        )
    if path == "account":
        if spec.account is not None:
            return _fixed("account", spec.account)
        return Domain(
            "twelve digits", _account, required=True, samples=("123456789012", "000000000000", "999999999999")
        )
    if path == "region":
        if spec.region is not None:
            return _fixed("region", spec.region)
        return Domain("a non-empty string", _non_empty, required=True, samples=("us-east-1", "eu-west-1"))
    if path == "time":
        return Domain(
            "an RFC 3339 UTC time in whole seconds (2025-01-01T00:00:00Z)",
            _time,
            required=True,
            samples=("2025-01-01T00:00:00Z", "2024-02-29T12:30:45Z", "1999-12-31T23:59:59Z"),
        )
    if path == "resources":
        return Domain("a list of strings", _string, array=True, samples=("arn:aws:s3:::example",))
    if path == "replay-name" and spec.replay:
        return Domain("a string", _string, samples=("replay",))
    top = path.split(".", 1)[0]
    if top in ENVELOPE_FIELDS or top == "replay-name":
        return Domain(f"nothing: {top!r} holds no object in an envelope", leafless=True)
    return Domain(f"nothing: an envelope has no top-level field {top!r}", leafless=True)


def spliced(values: Iterable[Scalar], domain: Domain) -> list[Scalar]:
    """Each string value written over the start, and over the end, of each of the domain's
    samples: prefix ``2025-`` over a sample time is still a valid time, ``-9`` over an account
    number no longer is (the domain's ``valid`` decides which to keep)."""
    out: list[Scalar] = []
    for v in values:
        if isinstance(v, str):
            for sample in domain.samples:
                out += [v + sample[len(v) :], sample[: max(len(sample) - len(v), 0)] + v]
    return out


def fitted_witnesses(condition: Condition, witnesses: Iterable[Scalar], domain: Domain) -> list[Scalar]:
    """Witnesses of ``condition`` that ``domain`` accepts, spliced into its samples if need be."""
    witnesses = list(witnesses)
    candidates = [*witnesses, *spliced(witnesses, domain), *domain.samples]
    out: list[Scalar] = []
    for value in candidates:
        if domain.valid(value) and condition.test(value) and not _contains(out, value):
            out.append(value)
    return out


def _contains(values: list[Scalar], value: Scalar) -> bool:
    """Membership that tells 1, 1.0 and True apart, as JSON does."""
    return any(type(v) is type(value) and v == value for v in values)


def dedupe(values: Iterable[Scalar]) -> list[Scalar]:
    out: list[Scalar] = []
    for v in values:
        if not _contains(out, v) and (not is_number(v) or v == v):
            out.append(v)
    return out


def related(full: str, paths: Collection[str]) -> bool:
    """Whether anything stored at dotted ``full`` could add leaves at, or above, a pattern path."""
    return any(p == full or p.startswith(full + ".") or full.startswith(p + ".") for p in paths)


def prune(value: Any, prefix: str, paths: Collection[str]) -> Any:
    """``value`` (found at dotted ``prefix``) without any key that ``related`` flags."""
    if isinstance(value, dict):
        return {
            k: prune(v, f"{prefix}.{k}", paths)
            for k, v in value.items()
            if not related(f"{prefix}.{k}", paths)
        }
    if isinstance(value, list):
        return [prune(v, prefix, paths) for v in value]
    return value


def place(root: dict[str, Any], path: str, value: Any) -> None:
    """Store ``value`` at dotted ``path`` (relative to ``root``), creating objects on the way.

    Place shorter paths first (sort by ``path.split(".")``): where a scalar already sits on the way,
    the rest of the path is joined into one dotted key.
    """
    parts = path.split(".")
    node = root
    i = 0
    while True:
        j = i + 1
        key = parts[i]
        # Grow the key over dots while a scalar (or list) blocks the plain one.
        while key in node and not isinstance(node[key], dict) and j < len(parts):
            key = f"{key}.{parts[j]}"
            j += 1
        if j == len(parts):
            if key in node:
                raise ValueError(f"cannot place a value at {path!r}: something is already there")
            node[key] = value
            return
        child = node.setdefault(key, {})
        if not isinstance(child, dict):  # pragma: no cover - the loop above grew the key instead
            raise ValueError(f"cannot place a value at {path!r}")
        node = child
        i = j
