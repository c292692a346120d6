"""The names a bus takes on a NATS server: streams, subjects, consumers and buckets.

Everything a deployment creates starts with its prefix (``stream`` in the settings,
``EVENTBUS`` unless told otherwise), then the bus's name as a token. Bus, rule and target names
may hold characters NATS names and subject tokens cannot (``.``, ``/``), so a token keeps
letters, digits and ``-`` and writes any other character as ``_`` and two hex digits: ``a.b_c``
becomes ``a_2Eb_5Fc``. The escape is reversible and never produces ``__``, which therefore
separates a rule's token from its target's in a consumer name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = ["BusNames", "token", "untoken"]

#: Longer names are shortened with a digest: NATS keeps streams and consumers in folders of
#: these names, and file systems stop at 255 bytes.
_MAX_NAME = 200


def token(name: str) -> str:
    """``name`` as a NATS subject token and name fragment (see the module's docstring)."""
    out = []
    for char in name:
        if ("a" <= char <= "z") or ("A" <= char <= "Z") or ("0" <= char <= "9") or char == "-":
            out.append(char)
        else:
            out.extend(f"_{byte:02X}" for byte in char.encode())
    return "".join(out)


def untoken(text: str) -> str:
    """The name ``token`` made ``text`` from."""
    raw = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "_":
            raw.append(int(text[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(ord(text[i]))
            i += 1
    return raw.decode()


def _bounded(name: str) -> str:
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name[: _MAX_NAME - 17]}-{digest}"


@dataclass(frozen=True)
class BusNames:
    """Where bus ``bus`` of deployment ``prefix`` lives on the server."""

    prefix: str
    bus: str
    token: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", token(self.bus))

    @property
    def events_stream(self) -> str:
        """The events accepted and not routed yet (work-queue retention)."""
        return _bounded(f"{self.prefix}_{self.token}_EVENTS")

    @property
    def events_subject(self) -> str:
        return f"{self.prefix}.{self.token}.events"

    @property
    def deliveries_stream(self) -> str:
        """One message per (event, rule target) until the delivery ended (work-queue retention),
        on the route's subject (``shared_subject``): its one consumer, ``shared_consumer``,
        hands every route's deliveries to every worker."""
        return _bounded(f"{self.prefix}_{self.token}_DELIVERIES")

    @property
    def deliveries_prefix(self) -> str:
        return f"{self.prefix}.{self.token}.deliveries"

    @property
    def parked_stream(self) -> str:
        """Deliveries a worker took and had no room for (work-queue retention), each on its
        route's subject (``parked_subject``), leased by the route's own consumer. A stream of
        their own: every consumer of a stream costs the server a look at each message stored
        and each acknowledgement, so the deliveries stream keeps one."""
        return _bounded(f"{self.prefix}_{self.token}_PARKED")

    @property
    def parked_prefix(self) -> str:
        return f"{self.prefix}.{self.token}.parked"

    @property
    def rules_bucket(self) -> str:
        """The rules and targets put while the bus runs (a key-value bucket)."""
        return _bounded(f"{self.prefix}_{self.token}_RULES")

    @property
    def schedules_bucket(self) -> str:
        """The last fire time of each scheduled rule (a key-value bucket)."""
        return _bounded(f"{self.prefix}_{self.token}_SCHEDULES")

    #: The durable consumer every worker routes the bus's events from.
    router: str = "router"
    #: The durable consumer every worker takes every route's deliveries from, in batches. (A
    #: route's own consumer, on the parked stream, is ``<rule>__<target>``.)
    shared_consumer: str = "deliveries"

    def shared_subject(self, route: str) -> str:
        """Where route ``<rule>/<target id>``'s deliveries are published (``shared_consumer``)."""
        rule, _, target = route.partition("/")
        return f"{self.deliveries_prefix}.{token(rule)}.{token(target)}"

    def parked_subject(self, route: str) -> str:
        """Where route ``<rule>/<target id>``'s parked deliveries wait for its own consumer."""
        rule, _, target = route.partition("/")
        return f"{self.parked_prefix}.{token(rule)}.{token(target)}"

    def route_consumer(self, route: str) -> str:
        """The durable consumer every worker leases route ``route``'s parked deliveries from."""
        rule, _, target = route.partition("/")
        return _bounded(f"{token(rule)}__{token(target)}")

    def route_of(self, subject: str) -> str | None:
        """The route a delivery subject (shared or parked) belongs to (``None`` for another subject)."""
        for head in (self.deliveries_prefix + ".", self.parked_prefix + "."):
            if subject.startswith(head):
                parts = subject[len(head) :].split(".")
                if len(parts) != 2:
                    return None
                return f"{untoken(parts[0])}/{untoken(parts[1])}"
        return None
