"""From an ARN to one of this library's targets: what EventBridge's API names targets by.

| ARN | becomes |
| --- | --- |
| ``arn:aws:events:R:A:api-destination/NAME[/ID]`` | an ``http`` target: the destination and its connection, plus the target's ``HttpParameters`` |
| ``arn:aws:events:R:A:event-bus/NAME`` | a ``bus`` target: the bus of that name |
| ``arn:aws:sqs:R:A:NAME`` | the config's queue called NAME (a named ``queue`` target, or a queue of that name) |
| ``arn:aws:lambda:R:A:function:NAME[:QUALIFIER]`` | the function the config declares as NAME under ``functions:`` |

Anything else raises ``UnmappableArnError`` (a ``ValidationException``) with the reason, which
PutTargets answers as that target's failure entry (and CreatePipe as its error). The resolver
knows only what it is given: the functions and queues a config declares
(``eventbus.config.arns.resolver_for``), the API destinations a server made, the buses running.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from eventbus.errors import EventBusError
from eventbus.targets.base import TargetConfig

__all__ = ["Arn", "ArnResolver", "UnmappableArnError", "parse_arn"]

_ARN = re.compile(r"^arn:(?P<partition>[\w-]+):(?P<service>[\w-]+):(?P<region>[\w-]*):(?P<account>\d*):(?P<resource>.+)$")


class UnmappableArnError(EventBusError, ValueError):
    """An ARN nothing here stands for; ``str()`` says why, and what would map."""

    error_code = "ValidationException"


@dataclass(frozen=True, slots=True)
class Arn:
    service: str
    region: str
    account: str
    resource: str


def parse_arn(text: str) -> Arn:
    match = _ARN.match(text) if isinstance(text, str) else None
    if match is None:
        raise UnmappableArnError(f"{text!r} is not an ARN (arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE)")
    return Arn(match["service"], match["region"], match["account"], match["resource"])


class ArnResolver:
    """Maps ARNs onto target configs, from what the config and the API declared."""

    def __init__(
        self,
        *,
        functions: Mapping[str, TargetConfig],
        queues: Mapping[str, TargetConfig],
        destination: Callable[[str, Mapping[str, Any]], TargetConfig | None] = lambda name, params: None,
        bus_exists: Callable[[str], bool] = lambda name: True,
    ) -> None:
        self.functions = functions
        self.queues = queues
        self.destination = destination
        self.bus_exists = bus_exists

    def target(self, arn: str, http_parameters: Mapping[str, Any] | None = None) -> TargetConfig:
        """The target config ``arn`` stands for; ``UnmappableArnError`` when there is none."""
        from eventbus.targets.bus import BusTargetConfig

        parsed = parse_arn(arn)
        service, resource = parsed.service, parsed.resource
        if service == "events" and resource.startswith("event-bus/"):
            name = resource.removeprefix("event-bus/")
            if not self.bus_exists(name):
                raise UnmappableArnError(f"Event bus {name} does not exist.")
            return BusTargetConfig(bus=name)
        if service == "events" and resource.startswith("api-destination/"):
            name = resource.removeprefix("api-destination/").split("/", 1)[0]
            found = self.destination(name, http_parameters or {})
            if found is None:
                raise UnmappableArnError(f"API destination {name} does not exist.")
            return found
        if service == "sqs":
            return self.queue(arn)
        if service == "lambda" and resource.startswith("function:"):
            name = resource.removeprefix("function:").split(":", 1)[0]
            config = self.functions.get(name)
            if config is None:
                known = ", ".join(sorted(self.functions)) or "none"
                raise UnmappableArnError(
                    f"No function named {name}: functions are declared in the config under functions: "
                    f"(declared: {known})."
                )
            return config
        raise UnmappableArnError(
            f"eventbus cannot deliver to {arn}: targets are API destinations, event buses, SQS queues "
            "of the config and Lambda functions the config declares under functions:."
        )

    def queue(self, arn: str) -> TargetConfig:
        parsed = parse_arn(arn)
        if parsed.service != "sqs":
            raise UnmappableArnError(f"{arn} is not an SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME)")
        name = parsed.resource
        config = self.queues.get(name)
        if config is None:
            known = ", ".join(sorted(self.queues)) or "none"
            raise UnmappableArnError(f"No queue named {name} in the config (queues: {known}).")
        return config
