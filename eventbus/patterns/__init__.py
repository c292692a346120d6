"""EventBridge event patterns: validation with AWS's messages, matching, and explanation."""

from eventbus.patterns import native

# Before the matcher's modules are imported: their compiled build, when it is current (native.py).
native.load(__path__)

from eventbus.patterns.matcher import Matcher  # noqa: E402
from eventbus.patterns.pattern import Pattern, load_event  # noqa: E402
from eventbus.patterns.reference import matches as reference_matches  # noqa: E402

__all__ = ["Matcher", "Pattern", "load_event", "reference_matches"]
