"""TagResource, UntagResource and ListTagsForResource, on event buses and rules (what EventBridge
tags), and the ``Tags`` of CreateEventBus and PutRule.

Tags live with the resource: kept in the ``ResourceStore`` by ARN (a durable server keeps them in
its state file), gone when the bus or rule is deleted. A rule's tags are set when PutRule creates
it; a PutRule that updates a rule leaves them alone, as AWS does.
"""

from __future__ import annotations

from typing import Any

from eventbus.server.awsjson import Handler
from eventbus.server.errors import ApiError
from eventbus.server.state import ServerState

__all__ = ["TagsApi"]

#: AWS's limit of tags per resource.
MAX_TAGS = 50


class TagsApi:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def handlers(self) -> dict[str, Handler]:
        return {
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "ListTagsForResource": self.list_tags_for_resource,
        }

    def _check(self, arn: str) -> None:
        """``ResourceNotFoundException`` unless ``arn`` names a bus or a rule the server has."""
        _, _, kind_and_name = arn.partition(":event-bus/") if ":event-bus/" in arn else ("", "", "")
        if kind_and_name:
            if kind_and_name not in self.state.buses:
                raise ApiError("ResourceNotFoundException", f"Event bus {kind_and_name} does not exist.")
            return
        _, _, path = arn.partition(":rule/")
        if not arn.startswith("arn:") or not path:
            raise ApiError("ResourceNotFoundException", f"Resource {arn} does not exist.")
        bus, _, rule = path.rpartition("/")
        self.state.buses.get(bus or "default").describe_rule(rule)  # ResourceNotFoundException

    def set(self, arn: str, tags: list[dict[str, str]]) -> None:
        """Add (or change) ``tags`` ([{"Key", "Value"}]) on the resource ``arn``."""
        current = dict(self.state.tags.get(arn, {}))
        current.update({tag["Key"]: tag["Value"] for tag in tags})
        if len(current) > MAX_TAGS:
            raise ApiError(
                "LimitExceededException", f"The resource {arn} would have {len(current)} tags; the limit is {MAX_TAGS}."
            )
        self.state.tags[arn] = current
        self.state.store.save("tags", arn, current)

    def forget(self, arn: str) -> None:
        """The resource is gone: so are its tags."""
        if self.state.tags.pop(arn, None) is not None:
            self.state.store.delete("tags", arn)

    def forget_under(self, bus_arn: str, rule_prefix: str) -> None:
        """A bus is gone: its tags and its rules' (``rule_prefix``: ARNs of its rules start so)."""
        for arn in [a for a in self.state.tags if a == bus_arn or a.startswith(rule_prefix)]:
            self.forget(arn)

    async def tag_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["ResourceARN"]
        self._check(arn)
        self.set(arn, params["Tags"])
        return {}

    async def untag_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["ResourceARN"]
        self._check(arn)
        current = {k: v for k, v in self.state.tags.get(arn, {}).items() if k not in set(params["TagKeys"])}
        if current:
            self.state.tags[arn] = current
            self.state.store.save("tags", arn, current)
        else:
            self.forget(arn)
        return {}

    async def list_tags_for_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["ResourceARN"]
        self._check(arn)
        return {"Tags": [{"Key": k, "Value": v} for k, v in sorted(self.state.tags.get(arn, {}).items())]}
