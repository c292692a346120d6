"""Target input transformation: what a rule target or a pipe stage receives for an event.

- ``TargetInput``: a rule target's ``Input`` / ``InputPath`` / ``InputTransformer`` (or the whole
  event), validated as PutTargets validates and rendered as EventBridge delivers.
- ``InputTransformer``: the ``InputPathsMap`` + ``InputTemplate`` model.
- ``PipeTemplate``: an EventBridge Pipes input template (``<$.body.key>``, ``<aws.pipes.*>``).
"""

from __future__ import annotations

from eventbus.transform.pipes import PipeTemplate
from eventbus.transform.target_input import InputTransformer, TargetInput

__all__ = ["InputTransformer", "PipeTemplate", "TargetInput"]
