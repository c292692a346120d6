"""EventBridge event patterns: validation with AWS's messages, matching, and explanation."""

from eventbus.patterns.matcher import Matcher
from eventbus.patterns.pattern import Pattern, load_event
from eventbus.patterns.reference import matches as reference_matches

__all__ = ["Matcher", "Pattern", "load_event", "reference_matches"]
