"""One pattern against one event, the fast way: what ``Pattern.matches`` and ``explain`` run.

The same parts as ``Matcher`` without its indexes: the event is flattened along the pattern's
own paths, each field is judged once with its compiled test, and only a branch with two or more
fields inside arrays runs the exact consistency decision, linear in the event's size
(``consistency.py``). The reference matcher decides the same thing by trying every combination
of leaves, which is exponential in the worst case: it stays the oracle of the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventbus.patterns.consistency import consistent
from eventbus.patterns.fields import Field, field_key
from eventbus.patterns.flatten import EMPTY_TRIE, PathNode, flatten, trie_with
from eventbus.patterns.parse import ParsedPattern

__all__ = ["CompiledPattern"]


class CompiledPattern:
    """A parsed pattern's branches as compiled ``Field``s, and the trie of its paths."""

    __slots__ = ("branches", "trie")

    def __init__(self, parsed: ParsedPattern) -> None:
        interned: dict[tuple[Any, ...], Field] = {}
        trie: PathNode = EMPTY_TRIE
        branches: list[tuple[Field, ...]] = []
        for branch in parsed.branches:
            fields: list[Field] = []
            for rule in branch:
                key = field_key(rule)
                field = interned.get(key)
                if field is None:
                    field = interned[key] = Field(rule)
                    trie = trie_with(trie, rule.path)
                fields.append(field)
            branches.append(tuple(fields))
        self.branches = tuple(branches)
        self.trie = trie

    def matches(self, event: Mapping[str, Any]) -> bool:
        flat, recorded = flatten(event, self.trie)
        in_arrays = recorded.in_arrays()
        verdicts: dict[Field, bool] = {}
        for fields in self.branches:
            holds = True
            needed_fails = False
            for field in fields:
                verdict = verdicts.get(field)
                if verdict is None:
                    values = flat.get(field.path)
                    verdict = verdicts[field] = field.absence if values is None else field.holds(values)
                if not verdict:
                    holds = False
                    needed_fails = needed_fails or not field.absence
            if sum(1 for field in fields if field.path in in_arrays) < 2:
                if holds:
                    return True
                continue
            # Two or more fields in arrays: only the exact decision can say, unless a field
            # that needs a value has none that satisfies it anywhere.
            if needed_fails:
                continue
            if consistent(fields, recorded):
                return True
        return False
