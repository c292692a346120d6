"""What a pattern allows, worked out once before any drawing.

``Analysis`` answers two questions about a parsed pattern within an envelope:

* which ``$or`` branches some envelope can satisfy, and with which alternatives per field
  (``FieldPlan``): the matching generator draws only among those;
* how to make every branch fail at once (``violation_plan``): pick one field rule per branch and
  give its path a value (or an absence) that fails all the rules picked at that path. This is a
  small constraint search; fields shared by several branches (``$or`` forks them) usually let one
  violation serve them all.

When either is impossible the reason is kept in words, for the error the strategies raise.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from eventbus.patterns.parse import FieldRule, ParsedPattern
from eventbus.patterns.values import Condition, Scalar
from eventbus.testing._layout import Domain, EnvelopeSpec, dedupe, domain_for, fitted_witnesses, spliced
from eventbus.testing._values import GENERIC_VALUES, violations, witnesses

__all__ = ["ABSENT", "Absent", "Analysis", "FieldPlan"]

#: How many rule choices the violation search may try before it gives up.
SEARCH_BUDGET = 20_000


class Absent:
    """The assignment "no leaf at this path"."""

    _instance: Absent | None = None

    def __new__(cls) -> Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = Absent()


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """How one field rule of a branch can be satisfied: by absence, or by one of ``options``
    (an alternative with the fixed values proven to satisfy it inside the domain)."""

    rule: FieldRule
    domain: Domain
    absent_ok: bool
    options: tuple[tuple[Condition, tuple[Scalar, ...]], ...]

    @property
    def feasible(self) -> bool:
        return self.absent_ok or bool(self.options)


def _describe_rule(rule: FieldRule) -> str:
    alternatives = ", ".join(c.describe() for c in rule.conditions)
    return f"{rule.path}: [{alternatives}]"


class Analysis:
    """Everything the generators need to know about one pattern inside one kind of envelope."""

    def __init__(self, parsed: ParsedPattern, spec: EnvelopeSpec) -> None:
        self.parsed = parsed
        self.spec = spec
        self.paths: tuple[str, ...] = tuple(sorted({r.path for b in parsed.branches for r in b}))
        self.domains = {p: domain_for(p, spec) for p in self.paths}
        self.branch_plans: list[tuple[FieldPlan, ...]] = [
            tuple(self._field_plan(rule) for rule in branch) for branch in parsed.branches
        ]
        self.matchable = [i for i, plan in enumerate(self.branch_plans) if all(f.feasible for f in plan)]
        self._pools = {p: self._violation_pool(p) for p in self.paths}
        self._feasible_cache: dict[tuple[str, frozenset[FieldRule]], tuple[bool, tuple[Scalar, ...]]] = {}
        self.static_violation = self.violation_plan(None)

    # --- matching -----------------------------------------------------------------------------

    def _field_plan(self, rule: FieldRule) -> FieldPlan:
        domain = self.domains[rule.path]
        options = []
        for c in rule.requires_leaf:
            found = fitted_witnesses(c, witnesses(c), domain)
            if found:
                options.append((c, tuple(found)))
        return FieldPlan(rule, domain, rule.allows_absence and domain.can_be_absent, tuple(options))

    def unmatchable_fields(self) -> list[str]:
        """For each ``$or`` branch, the field rule no envelope can satisfy (``account: ["1"]``)."""
        found = [_describe_rule(next(f for f in plan if not f.feasible).rule) for plan in self.branch_plans]
        return list(dict.fromkeys(found))

    def why_unmatchable(self) -> str:
        reasons = []
        for number, plan in enumerate(self.branch_plans, 1):
            bad = next(f for f in plan if not f.feasible)
            where = f"$or branch {number}: " if len(self.branch_plans) > 1 else ""
            reasons.append(
                f"{where}no alternative of {_describe_rule(bad.rule)} fits a valid envelope, "
                f"where {bad.rule.path} is {bad.domain.describe}"
            )
        return "; ".join(reasons)

    # --- not matching -------------------------------------------------------------------------

    def _violation_pool(self, path: str) -> tuple[Scalar, ...]:
        domain = self.domains[path]
        if domain.leafless:
            return ()
        values: list[Scalar] = list(GENERIC_VALUES)
        for branch in self.parsed.branches:
            for rule in branch:
                if rule.path == path:
                    for c in rule.conditions:
                        values += violations(c)
                        values += witnesses(c)
        values += domain.samples
        if domain.samples:
            # Near misses that still fit the domain: a sample with each violation spliced in.
            values += spliced(values, domain)
        return tuple(v for v in dedupe(values) if domain.valid(v))

    def violating(self, path: str, rules: frozenset[FieldRule]) -> tuple[bool, tuple[Scalar, ...]]:
        """Can ``path`` be absent while every rule in ``rules`` fails, and which pool values fail
        them all?"""
        key = (path, rules)
        cached = self._feasible_cache.get(key)
        if cached is not None:
            return cached
        domain = self.domains[path]
        absent = domain.can_be_absent and not any(r.allows_absence for r in rules)
        conditions = [c for r in rules for c in r.requires_leaf]
        values = tuple(v for v in self._pools[path] if not any(c.test(v) for c in conditions))
        result = (absent, values)
        self._feasible_cache[key] = result
        return result

    def violation_plan(self, rng: random.Random | None) -> dict[str, frozenset[FieldRule]] | None:
        """For every branch, a rule to break, grouped by path; None when no event breaks them all.

        ``rng`` shuffles the choices (deterministic order without it)."""
        branches = [tuple(dict.fromkeys(b)) for b in self.parsed.branches]
        if rng is not None:
            branches = [tuple(rng.sample(b, len(b))) for b in branches]
            rng.shuffle(branches)
        chosen: dict[str, frozenset[FieldRule]] = {}
        budget = [SEARCH_BUDGET]

        def ok(path: str, rules: frozenset[FieldRule]) -> bool:
            absent, values = self.violating(path, rules)
            return absent or bool(values)

        def search(i: int) -> bool:
            if i == len(branches):
                return True
            budget[0] -= 1
            if budget[0] < 0:
                return False
            branch = branches[i]
            if any(rule in chosen.get(rule.path, frozenset()) for rule in branch):
                return search(i + 1)
            for rule in branch:
                before = chosen.get(rule.path, frozenset())
                after = before | {rule}
                if not ok(rule.path, after):
                    continue
                chosen[rule.path] = after
                if search(i + 1):
                    return True
                if before:
                    chosen[rule.path] = before
                else:
                    del chosen[rule.path]
            return False

        return dict(chosen) if search(0) else None

    def _breakable(self, rule: FieldRule) -> bool:
        absent, values = self.violating(rule.path, frozenset({rule}))
        return absent or bool(values)

    def why_unrefutable(self) -> str:
        for number, branch in enumerate(self.parsed.branches, 1):
            if not any(self._breakable(r) for r in branch):
                where = f"$or branch {number} " if len(self.parsed.branches) > 1 else "it "
                parts = []
                for r in branch:
                    domain = self.domains[r.path]
                    if domain.leafless:
                        parts.append(
                            f"{r.path} never holds a leaf ({domain.describe}) and the rule allows absence"
                        )
                    elif r.allows_absence:
                        parts.append(
                            f"{_describe_rule(r)} accepts absence and every value {r.path} can hold "
                            f"({domain.describe})"
                        )
                    else:
                        parts.append(
                            f"{_describe_rule(r)}: {r.path} is always present and the rule accepts "
                            f"every value it can hold ({domain.describe})"
                        )
                return f"{where}matches every valid envelope: " + "; ".join(parts)
        return "no single event can break every $or branch at once"


def pattern_text(parsed: ParsedPattern) -> str:
    text = json.dumps(parsed.source, separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= 200 else text[:197] + "..."
