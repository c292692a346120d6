"""Matching throughput: ``Matcher`` against LocalStack's and moto's engines, 1 to 10,000 rules.

    python benchmarks/match.py            # about three minutes
    python benchmarks/match.py --quick    # well under a minute, fewer events and peers capped harder
    python benchmarks/match.py --only shared --sizes 1000,10000   # one family's table alone
    python benchmarks/match.py --only shared --eventbus ../old    # the same, another checkout's eventbus
    make bench                            # the same, in .venv-bench where the peers are installed

Seeded and reproducible. Events are realistic ~1 KB EventBridge events (nested detail, arrays of
objects, numbers, IP addresses). Two rule families, each at 1, 10, 100, 1,000 and 10,000 rules:

* mixed: rules as an application's buses hold them: mostly keyed on a source and a detail-type,
  refined by one or two detail conditions drawn from every operator, overlapping the way real
  rules do (several rules for one kind of event, a few broad ones on a source alone);
* distinct: per-customer routing rules that share source and detail-type and each name their
  own customer id, the shape that lets an engine stay flat as rules grow.

For each size: events per second of CPU time of ``Matcher`` and, on the same events, of LocalStack's engine
(``EventPatternCompiler`` + ``EventRuleEngine``, each pattern compiled once, the rules looped
over per event) and of moto's ``EventPattern``, when installed, with ratios; and the cost of
``json.loads`` of the same events' text as a floor. Slow peers are measured on as many events
as fit a time budget (at least three). Then the memory (tracemalloc) and the time to add 10,000
rules, a check that match time grows linearly with an event's size, the worst events the
benchmark can build within the 256 KB limit on an event (each against the rules it was built
against: ms per ``Matcher.match`` and per ``Pattern.matches``), and the targets.

The header says whether the matcher ran compiled (``make native``, eventbus/patterns/native.py)
or as pure Python; ``EVENTBUS_PURE_PYTHON=1`` measures the latter with a build present.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import random
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

# The checkout first on sys.path, so the benchmark measures this tree's eventbus (or the one
# ``--eventbus`` names, read before the import: before/after comparisons run this same script).
_HERE = Path(__file__).resolve().parent
_TREE = _HERE.parent
if "--eventbus" in sys.argv[:-1]:
    _TREE = Path(sys.argv[sys.argv.index("--eventbus") + 1]).resolve()
sys.path[:] = [str(_TREE)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from eventbus import Matcher  # noqa: E402 (after the sys.path fix above)

SEED = 20261128
SIZES = (1, 10, 100, 1_000, 10_000)

SERVICES = [
    "orders", "payments", "shipping", "inventory", "accounts", "auth", "billing", "catalog",
    "search", "reviews", "notifications", "analytics", "fraud", "support", "pricing", "loyalty",
    "returns", "warehouse", "media", "audit",
]  # fmt: skip
DOMAINS = ["retail", "b2b", "platform"]
ACTIONS = [
    "Created", "Updated", "Deleted", "Failed", "Completed", "Requested",
    "Approved", "Expired", "Shipped", "Refunded", "Cancelled", "Retried",
]  # fmt: skip
STATUSES = ["PENDING", "ACTIVE", "FAILED", "COMPLETED", "CANCELLED", "ON_HOLD"]
COUNTRIES = ["DE", "FR", "US", "GB", "JP", "BR", "IN", "ES", "IT", "NL"]
CURRENCIES = ["EUR", "USD", "GBP", "JPY", "BRL"]
TIERS = ["gold", "silver", "bronze", "platinum"]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"]
BROWSERS = ["Firefox/128.0", "Chrome/126.0.0.0", "Safari/605.1.15", "Edg/126.0.0.0"]
CUSTOMERS = 10_000


def _source(service: str, domain: str = "retail") -> str:
    return f"com.example.{domain}.{service}"


def _detail_type(service: str, action: str) -> str:
    return f"{service.title()} {action}"


def make_event(rng: random.Random, *, service: str | None = None, action: str | None = None) -> dict[str, Any]:
    domain = "retail" if service else rng.choice(DOMAINS)
    service = service or rng.choice(SERVICES)
    action = action or rng.choice(ACTIONS)
    region = rng.choice(REGIONS)
    account = f"{rng.randrange(10**11, 10**12):012d}"
    items = [
        {"sku": f"SKU-{rng.randrange(10_000):04d}", "qty": rng.randint(1, 5), "price": round(rng.uniform(1, 500), 2)}
        for _ in range(rng.randint(1, 3))
    ]
    detail: dict[str, Any] = {
        "id": f"{service[:3]}-{rng.randrange(10**8):08d}",
        "status": rng.choice(STATUSES),
        "amount": round(rng.uniform(0, 5_000), 2),
        "currency": rng.choice(CURRENCIES),
        "customer": {
            "id": f"c-{rng.randrange(CUSTOMERS):05d}",
            "tier": rng.choice(TIERS),
            "country": rng.choice(COUNTRIES),
            "email": f"user{rng.randrange(10**6)}@{rng.choice(['example.com', 'mail.test', 'corp.example'])}",
        },
        "items": items,
        "sourceIp": rng.choice(
            [
                f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                f"192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                f"203.0.113.{rng.randrange(1, 255)}",
                f"2001:db8::{rng.randrange(1, 0xFFFF):x}",
            ]
        ),
        "userAgent": f"Mozilla/5.0 (X11; Linux x86_64) {rng.choice(BROWSERS)}",
        "latencyMs": rng.randrange(1, 3_000),
        "retry": rng.random() < 0.2,
        "tags": rng.sample(["priority", "gift", "b2b", "promo", "test", "mobile"], rng.randint(0, 3)),
    }
    if detail["status"] == "FAILED":
        detail["errorCode"] = rng.choice(["E_TIMEOUT", "E_DECLINED", "E_INTERNAL"])
    return {
        "version": "0",
        "id": f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-"
        f"{rng.getrandbits(16):04x}-{rng.getrandbits(48):012x}",
        "detail-type": _detail_type(service, action),
        "source": _source(service, domain),
        "account": account,
        "time": f"2026-11-{rng.randint(1, 28):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z",
        "region": region,
        "resources": [
            f"arn:aws:{service}:{region}:{account}:{service[:-1] if service.endswith('s') else service}/"
            f"{rng.getrandbits(40):010x}"
            for _ in range(rng.randint(1, 2))
        ],
        "detail": detail,
    }


def _detail_condition(rng: random.Random) -> dict[str, Any]:
    """One refinement on the detail, from every operator."""
    choice = rng.randrange(16)
    if choice == 0:
        return {"status": rng.sample(STATUSES, 2)}
    if choice == 1:
        low = rng.randrange(0, 4_000, 100)
        return {"amount": [{"numeric": [">=", low, "<", low + rng.choice([100, 500, 1_000])]}]}
    if choice == 2:
        return {"customer": {"tier": [{"anything-but": rng.choice(TIERS)}]}}
    if choice == 3:
        return {"customer": {"country": [{"equals-ignore-case": rng.choice(COUNTRIES).lower()}]}}
    if choice == 4:
        return {"customer": {"email": [{"suffix": rng.choice(["@example.com", "@mail.test"])}]}}
    if choice == 5:
        return {"customer": {"id": [{"prefix": f"c-{rng.randrange(10)}"}]}}
    if choice == 6:
        return {"userAgent": [{"wildcard": f"Mozilla/5.0 (*) {rng.choice(BROWSERS).split('/')[0]}/*"}]}
    if choice == 7:
        return {"sourceIp": [{"cidr": rng.choice(["10.0.0.0/8", "192.168.0.0/16", "203.0.113.0/24", "2001:db8::/32"])}]}
    if choice == 8:
        return {"errorCode": [{"exists": rng.random() < 0.5}]}
    if choice == 9:
        return {"items": {"sku": [{"prefix": f"SKU-{rng.randrange(10)}"}], "qty": [{"numeric": [">=", rng.randint(2, 5)]}]}}
    if choice == 10:
        return {"currency": [{"anything-but": {"prefix": rng.choice(["EU", "US"])}}]}
    if choice == 11:
        return {"retry": [True]}
    if choice == 12:
        return {"latencyMs": [{"numeric": [">", rng.choice([500, 1_000, 2_000])]}]}
    if choice == 13:
        return {"tags": [rng.choice(["priority", "gift", "b2b", "promo"])]}
    if choice == 14:
        return {"customer": {"tier": [{"prefix": {"equals-ignore-case": rng.choice(["GOLD", "PLAT"])}}]}}
    return {"status": [{"anything-but": {"suffix": "ED"}}], "currency": [{"suffix": {"equals-ignore-case": "d"}}]}


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def mixed_rules(rng: random.Random, count: int) -> list[dict[str, Any]]:
    rules = []
    for _ in range(count):
        service = rng.choice(SERVICES)
        roll = rng.random()
        rule: dict[str, Any] = {"source": [_source(service, rng.choice(DOMAINS))]}
        if roll < 0.05:  # broad: a whole service, narrowed by its detail only
            pass
        elif roll < 0.10:
            rule["detail-type"] = [{"anything-but": _detail_type(service, rng.choice(ACTIONS))}]
        elif roll < 0.15:
            rule["detail-type"] = [{"wildcard": f"{service.title()} *ed"}]
        else:
            rule["detail-type"] = [_detail_type(service, a) for a in rng.sample(ACTIONS, rng.choice([1, 1, 1, 2]))]
        detail: dict[str, Any] = {}
        for _ in range(rng.choice([1, 1, 2])):
            _merge(detail, _detail_condition(rng))
        if rng.random() < 0.1:
            detail = {"$or": [detail, _detail_condition(rng)]}
        rule["detail"] = detail
        if rng.random() < 0.05:
            rule["region"] = [{"prefix": rng.choice(["us-", "eu-"])}]
        rules.append(rule)
    return rules


def distinct_rules(count: int) -> list[dict[str, Any]]:
    return [
        {
            "source": [_source("orders")],
            "detail-type": [_detail_type("orders", "Created")],
            "detail": {"customer": {"id": [f"c-{i:05d}"]}},
        }
        for i in range(count)
    ]


def distinct_events(rng: random.Random, count: int, rules: int) -> list[dict[str, Any]]:
    """Order events each for a customer that has a rule: one match per event at every size."""
    events = []
    for _ in range(count):
        event = make_event(rng, service="orders", action="Created")
        event["detail"]["customer"]["id"] = f"c-{rng.randrange(rules):05d}"
        events.append(event)
    return events


# --- shared anchors: a company's bus, few sources and types, rules that differ in their detail ----


class Vocabulary(NamedTuple):
    """The words a shared-anchors workload draws from; ``SHARED`` below, and variants of it."""

    sources: list[str]
    types: list[str]
    statuses: list[str]
    tiers: list[str]
    countries: list[str]
    domains: list[str]
    tags: list[str]
    blocks: list[str]
    sku_digits: int


SHARED = Vocabulary(
    sources=[f"com.acme.{s}" for s in ("orders", "payments", "shipping", "accounts", "catalog", "support", "billing", "fulfilment")],
    types=[
        "Order Placed", "Order Paid", "Order Shipped", "Order Delivered", "Order Cancelled", "Order Returned",
        "Payment Authorized", "Payment Captured", "Payment Failed", "Refund Issued", "Invoice Sent", "Ticket Opened",
    ],
    statuses=["NEW", "PENDING", "PAID", "SHIPPED", "DELIVERED", "RETURNED", "CANCELLED"],
    tiers=["free", "basic", "pro", "enterprise"],
    countries=["DE", "FR", "US", "GB", "JP", "BR", "IN", "ES"],
    domains=["example.com", "mail.test", "corp.example", "shop.example", "post.test"],
    tags=["priority", "gift", "b2b", "promo", "mobile", "repeat"],
    blocks=["10.0.0.0/8", "10.20.0.0/16", "192.168.0.0/16", "172.16.0.0/12", "203.0.113.0/24", "2001:db8::/32"],
    sku_digits=1,
)  # fmt: skip
#: The same shape with other words and other vocabulary sizes (more types, statuses, SKU prefixes).
SHARED_VARIANTS = [
    SHARED._replace(
        sources=[f"org.example.svc{i}" for i in range(6)],
        types=[f"Entity{i // 4} {('Created', 'Updated', 'Deleted', 'Archived')[i % 4]}" for i in range(20)],
        statuses=[f"S{i}" for i in range(10)],
        sku_digits=2,
    ),
    SHARED._replace(
        sources=[f"io.shop.{s}" for s in ("cart", "checkout", "pay", "ship", "stock", "user", "mail", "audit", "risk", "tax")],
        types=SHARED.types[:8],
        statuses=SHARED.statuses[:5],
        countries=["DE", "FR", "US"],
        tiers=["a", "b", "c", "d", "e", "f"],
    ),
]


def shared_event(rng: random.Random, words: Vocabulary = SHARED) -> dict[str, Any]:
    """An event of about 750 bytes of JSON: one of the few sources and detail-types, and a detail
    every rule family below has something to say about."""
    detail: dict[str, Any] = {
        "orderId": f"o-{rng.randrange(10**9):09d}",
        "status": rng.choice(words.statuses),
        "total": round(rng.uniform(0, 2_000), 2),
        "currency": rng.choice(["EUR", "USD", "GBP"]),
        "customer": {
            "id": f"c-{rng.randrange(10**6):06d}",
            "email": f"user{rng.randrange(10**5)}@{rng.choice(words.domains)}",
            "country": rng.choice(words.countries) if rng.random() < 0.7 else rng.choice(words.countries).lower(),
            "tier": rng.choice(words.tiers),
        },
        "items": [
            {
                "sku": f"SKU-{rng.randrange(10**4):04d}",
                "qty": rng.randint(1, 6),
                "price": round(rng.uniform(1, 400), 2),
            }
            for _ in range(rng.randint(1, 4))
        ],
        "clientIp": rng.choice(
            [
                f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                f"192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                f"172.{rng.randrange(16, 32)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                f"198.51.100.{rng.randrange(1, 255)}",
                f"2001:db8::{rng.randrange(1, 0xFFFF):x}",
            ]
        ),
        "shipping": {
            "method": rng.choice(["standard", "express", "pickup"]),
            "city": rng.choice(["Berlin", "Lyon", "Austin", "Leeds", "Osaka", "Recife"]),
            "eta": f"2026-12-{rng.randint(1, 28):02d}",
        },
        "flags": {"express": rng.random() < 0.3, "gift": rng.random() < 0.1},
        "tags": rng.sample(words.tags, rng.randint(0, 3)),
    }
    roll = rng.random()
    if roll < 0.4:
        detail["coupon"] = rng.choice(["SAVE10", "WELCOME", "VIP"])
    elif roll < 0.7:
        detail["coupon"] = None
    return {
        "version": "0",
        "id": f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-"
        f"{rng.getrandbits(16):04x}-{rng.getrandbits(48):012x}",
        "detail-type": rng.choice(words.types),
        "source": rng.choice(words.sources),
        "account": "123456789012",
        "time": f"2026-11-{rng.randint(1, 28):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    }


def _shared_condition(rng: random.Random, words: Vocabulary) -> dict[str, Any]:
    """One detail condition, from small vocabularies: statuses, totals, emails, SKUs in items, IPs, countries, tiers, tags."""
    kind = rng.randrange(12)
    if kind == 0:
        return {"status": rng.sample(words.statuses, rng.randint(1, 3))}
    if kind == 1:
        return {"status": [{"anything-but": rng.sample(words.statuses, 2)}]}
    if kind == 2:
        low = rng.randrange(0, 1_800, 100)
        return {"total": [{"numeric": [">=", low, "<", low + rng.choice([100, 250, 500])]}]}
    if kind == 3:
        return {"customer": {"email": [{"suffix": "@" + rng.choice(words.domains)}]}}
    if kind == 4:
        return {"customer": {"email": [{"wildcard": f"user{rng.randrange(10)}*@*.{rng.choice(words.domains).split('.')[-1]}"}]}}
    if kind == 5:
        return {"items": {"sku": [{"prefix": f"SKU-{rng.randrange(10**words.sku_digits):0{words.sku_digits}d}"}]}}
    if kind == 6:
        return {
            "items": {
                "sku": [{"prefix": f"SKU-{rng.randrange(10**words.sku_digits):0{words.sku_digits}d}"}],
                "qty": [{"numeric": [">=", rng.randint(2, 5)]}],
            }
        }
    if kind == 7:
        return {"clientIp": [{"cidr": rng.choice(words.blocks)}]}
    if kind == 8:
        return {"customer": {"country": [{"equals-ignore-case": rng.choice(words.countries).lower()}]}}
    if kind == 9:
        return {"coupon": [{"exists": rng.random() < 0.5}]}
    if kind == 10:
        return {
            "$or": [
                {"customer": {"tier": [rng.choice(words.tiers)]}},
                {"total": [{"numeric": [">", rng.choice([500, 1_000, 1_500])]}]},
            ]
        }
    return {"customer": {"tier": [rng.choice(words.tiers)]}, "flags": {"express": [True]}, "tags": [rng.choice(words.tags)]}


def shared_rules(rng: random.Random, count: int, words: Vocabulary = SHARED) -> list[dict[str, Any]]:
    """Rules as a company writes them for its own bus: each on one source, 70 % also on one or
    two detail-types, and one detail condition drawn from small vocabularies, so that thousands
    of rules share a few hundred (source, detail-type) pairs and differ only in their detail."""
    rules = []
    for _ in range(count):
        rule: dict[str, Any] = {"source": [rng.choice(words.sources)]}
        if rng.random() < 0.7:
            rule["detail-type"] = rng.sample(words.types, rng.choice([1, 1, 2]))
        rule["detail"] = _shared_condition(rng, words)
        rules.append(rule)
    return rules


# --- timing ---------------------------------------------------------------------------------------


def rate(run: Callable[[Any], Any], items: list[Any], budget: float, minimum: int = 3) -> tuple[float, int]:
    """Items per second of CPU time over as many passes through ``items`` as fit ``budget``.

    CPU time (``time.process_time``), because the machines this runs on are shared and wall time
    there measures the neighbours too; the garbage collector is paused while timing, as
    ``timeit`` does, so that a collection set off by earlier work is not billed to this run.
    """
    gc.collect()
    gc.disable()
    try:
        done = 0
        start = time.process_time()
        deadline = start + budget
        while True:
            for item in items:
                run(item)
                done += 1
                if done >= minimum and time.process_time() > deadline:
                    return done / (time.process_time() - start), done
            if time.process_time() > deadline and done >= minimum:
                return done / (time.process_time() - start), done
    finally:
        gc.enable()


class Peers:
    """LocalStack's and moto's engines, where installed."""

    def __init__(self) -> None:
        self.localstack: Any = None
        self.moto: Any = None
        try:
            engine = importlib.import_module("localstack.services.events.event_rule_engine")
            self.localstack = (engine.EventPatternCompiler(), engine.EventRuleEngine())
        except Exception as exc:  # not installed, or broken: say so and go on
            print(f"LocalStack: unavailable ({type(exc).__name__}: {exc})")
        try:
            self.moto = importlib.import_module("moto.events.models").EventPattern
        except Exception as exc:
            print(f"moto: unavailable ({type(exc).__name__}: {exc})")

    def localstack_runner(self, rules: list[dict[str, Any]]) -> Callable[[dict[str, Any]], list[int]] | None:
        if self.localstack is None:
            return None
        compiler, engine = self.localstack
        compiled = [compiler.compile_event_pattern(rule) for rule in rules]
        evaluate = engine.evaluate_pattern_on_event

        def run(event: dict[str, Any]) -> list[int]:
            return [i for i, pattern in enumerate(compiled) if evaluate(pattern, event)]

        return run

    def moto_runner(self, rules: list[dict[str, Any]]) -> Callable[[dict[str, Any]], list[int]] | None:
        if self.moto is None:
            return None
        patterns = [self.moto(json.dumps(rule), rule) for rule in rules]

        def run(event: dict[str, Any]) -> list[int]:
            out = []
            for i, pattern in enumerate(patterns):
                try:
                    if pattern.matches_event(event):
                        out.append(i)
                except Exception:  # an operator moto does not know
                    pass
            return out

        return run


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _ratio(ours: float, theirs: float | None) -> str:
    return "-" if not theirs else f"{ours / theirs:,.0f}x" if ours / theirs >= 10 else f"{ours / theirs:.1f}x"


class Row(NamedTuple):
    ours: float
    localstack: float | None
    moto: float | None
    json_loads: float
    #: ``Matcher.match`` on the events' JSON text (parsing included).
    text: float = 0.0


def bench_family(
    title: str,
    rules_for: Callable[[int], list[dict[str, Any]]],
    events_for: Callable[[int], list[dict[str, Any]]],
    peers: Peers,
    args: argparse.Namespace,
) -> dict[int, Row]:
    print(f"\n## {title}")
    print(
        f"{'rules':>7} {'Matcher ev/s':>13} {'match us':>9} {'from text':>10} {'matches/ev':>10} {'LocalStack ev/s':>16} "
        f"{'x LS':>7} {'moto ev/s':>10} {'x moto':>7} {'json.loads ev/s':>16} {'add s':>7}"
    )
    results: dict[int, Row] = {}
    for size in SIZES:
        rules = rules_for(size)
        events = events_for(size)
        texts = [json.dumps(e) for e in events]
        start = time.process_time()
        matcher = Matcher()
        for i, rule in enumerate(rules):
            matcher.add(f"rule-{i}", rule)
        added = time.process_time() - start
        ours, _ = rate(matcher.match, events, args.budget)
        from_text, _ = rate(matcher.match, texts, args.budget)
        matches = sum(len(matcher.match(e)) for e in events) / len(events)
        floor, _ = rate(json.loads, texts, args.budget / 2)
        ls_rate = moto_rate = None
        peer_budget = args.peer_budget
        runner = peers.localstack_runner(rules)
        if runner is not None:
            ls_rate, _ = rate(runner, events, peer_budget)
        runner = peers.moto_runner(rules) if size <= args.moto_max else None
        if runner is not None:
            moto_rate, _ = rate(runner, events, peer_budget)
        results[size] = Row(ours, ls_rate, moto_rate, floor, from_text)
        print(
            f"{size:>7,} {_fmt(ours):>13} {1e6 / ours:>9.1f} {_fmt(from_text):>10} {matches:>10.2f} {_fmt(ls_rate):>16} "
            f"{_ratio(ours, ls_rate):>7} {_fmt(moto_rate):>10} {_ratio(ours, moto_rate):>7} {_fmt(floor):>16} {added:>7.2f}"
        )
    return results


def rule_mix(rules: list[dict[str, Any]]) -> str:
    """Which operators the rules use, counted over their conditions."""
    counts: Counter[str] = Counter()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$or":
                    counts["$or"] += 1
                    for branch in value:
                        visit(branch)
                else:
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                if isinstance(item, dict):
                    name = next(iter(item))
                    inner = item[name]
                    if isinstance(inner, dict):
                        name = f"{name}/{next(iter(inner))}"
                    counts[name] += 1
                else:
                    counts["exact"] += 1

    for rule in rules:
        visit(rule)
    total = sum(counts.values())
    return ", ".join(f"{name} {100 * n / total:.0f}%" for name, n in counts.most_common())


def memory_and_add_time(rules: list[dict[str, Any]]) -> tuple[float, float]:
    """MB held by a matcher with these rules (tracemalloc), and CPU seconds to add them (timed
    apart: tracing every allocation slows adding several times over)."""
    gc.collect()
    start = time.process_time()
    matcher = Matcher()
    for i, rule in enumerate(rules):
        matcher.add(f"rule-{i}", rule)
    elapsed = time.process_time() - start
    del matcher
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    matcher = Matcher()
    for i, rule in enumerate(rules):
        matcher.add(f"rule-{i}", rule)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(matcher) == len(rules)
    return used / 2**20, elapsed


def scaling(args: argparse.Namespace) -> list[tuple[int, float]]:
    """Match time per array element as an event's array grows, with rules of every operator
    (wildcards with several stars included) on that array's path."""
    rng = random.Random(SEED + 7)
    matcher = Matcher()
    ops: list[Any] = [
        {"wildcard": "*a*b*c*"},
        {"wildcard": "x*y*z"},
        {"prefix": "ab"},
        {"suffix": "yz"},
        {"anything-but": {"wildcard": "*q*r*"}},
        {"equals-ignore-case": "abc"},
        {"numeric": [">", 5]},
        {"cidr": "10.0.0.0/8"},
    ]
    for i, op in enumerate(ops):
        matcher.add(f"s{i}", {"detail": {"values": [op], "other": [{"exists": False}]}})
        matcher.add(f"t{i}", {"detail": {"rows": {"v": [op], "w": [f"w{i}"]}}})
    out = []
    for size in (100, 1_000, 10_000):
        values = ["".join(rng.choice("abcxyzq") for _ in range(40)) for _ in range(size)]
        rows = [{"v": v, "w": f"w{i % 9}"} for i, v in enumerate(values)]
        event = {"detail": {"values": values, "rows": rows}}
        per_second, _ = rate(matcher.match, [event], args.budget / 2, minimum=2)
        out.append((size, 1e6 / per_second / size))
    return out


# --- candidates that share an anchor: which way to verify them --------------------------------


def _without_crowds(rules: list[dict[str, Any]]) -> Matcher:
    """A matcher whose buckets never crowd: every branch under a key is a candidate."""
    from eventbus.patterns import matcher as matcher_module

    saved = matcher_module.CROWD
    matcher_module.CROWD = 10**9
    try:
        matcher = Matcher()
        for i, rule in enumerate(rules):
            matcher.add(f"rule-{i}", rule)
    finally:
        matcher_module.CROWD = saved
    return matcher


class _Combined:
    """The two other designs considered besides second-level indexes, built on the same
    anchors (a matcher without crowds): ``bitsets`` ORs, per bucket, the masks of the branches
    whose fields fail (Python integers over the bucket's slots, so the AND/OR run in C), then
    reads the surviving bits; ``counting`` counts, per branch, the fields that hold among its
    checks. Each distinct field is evaluated once per event in both. Array consistency is left
    out (both would need it on top), which only flatters them."""

    def __init__(self, rules: list[dict[str, Any]], mode: str) -> None:
        from eventbus.patterns import matcher as matcher_module

        self.matcher = _without_crowds(rules)
        self.mode = mode
        self.plans: dict[int, Any] = {}
        self._collect = matcher_module._collect_pairs
        self._flatten = matcher_module.flatten

    def _plan(self, bucket: tuple[Any, ...]) -> Any:
        """Per bucket: each distinct check field with the mask of the branches needing it."""
        plan = self.plans.get(id(bucket))
        if plan is None:
            masks: dict[Any, int] = {}
            needs: dict[Any, list[int]] = {}
            for slot, branch in enumerate(bucket):
                for field in branch.check:
                    masks[field] = masks.get(field, 0) | 1 << slot
                    needs.setdefault(field, []).append(slot)
            sizes = [len(branch.check) for branch in bucket]
            plan = self.plans[id(bucket)] = (bucket, tuple(masks.items()), tuple(needs.items()), sizes)
        return plan

    def match(self, event: dict[str, Any]) -> set[str]:
        snapshot = self.matcher._snapshot
        flat, _ = self._flatten(event, snapshot.trie)
        buckets: list[tuple[Any, ...]] = []
        for path, index, seconds in snapshot.probes:
            values = flat.get(path)
            if values is None:
                continue
            if index is not None:
                index.collect(values, buckets)
            if seconds is not None:
                self._collect(values, seconds, flat, buckets)
        memo: dict[Any, bool] = {}
        matched: set[str] = set()

        def holds(field: Any) -> bool:
            verdict = memo.get(field)
            if verdict is None:
                found = flat.get(field.path)
                verdict = memo[field] = field.absence if found is None else field.holds(found)
            return verdict

        for raw in buckets:
            bucket, masks, needs, sizes = self._plan(raw)
            if self.mode == "bitsets":
                alive = (1 << len(bucket)) - 1
                for field, mask in masks:
                    if not holds(field):
                        alive &= ~mask
                while alive:
                    low = alive & -alive
                    matched.add(bucket[low.bit_length() - 1].name)
                    alive ^= low
            else:
                counts = [0] * len(bucket)
                for field, slots in needs:
                    if holds(field):
                        for slot in slots:
                            counts[slot] += 1
                for slot, count in enumerate(counts):
                    if count == sizes[slot]:
                        matched.add(bucket[slot].name)
        return matched


def _own_condition(i: int) -> dict[str, Any]:
    """One source for all, and a condition of the rule's own (a suffix, a prefix or a range)."""
    if i % 3 == 0:
        return {"source": ["shop"], "detail": {"email": [{"suffix": f"@d{i}.example"}]}}
    if i % 3 == 1:
        return {"source": ["shop"], "detail": {"sku": [{"prefix": f"SKU-{i:05d}"}]}}
    return {"source": ["shop"], "detail": {"total": [{"numeric": [">=", i, "<", i + 1]}]}}


def compare_designs(args: argparse.Namespace) -> list[tuple[str, dict[str, float]]]:
    """Events per second (dicts) of each way to verify candidates that share an anchor: on the
    shared-anchors family, and on 10,000 rules that share one source and each have a condition
    of their own; candidates per event without and with second-level indexes."""
    rng = random.Random(SEED + 30)
    events = [shared_event(rng) for _ in range(args.events // 2)]
    all_rules = shared_rules(random.Random(SEED + 31), 10_000)
    own_events = [
        {
            "source": "shop",
            "detail": {
                "email": f"u@d{rng.randrange(10_000)}.example",
                "sku": f"SKU-{rng.randrange(10_000):05d}-x",
                "total": rng.randrange(10_000) + 0.5,
            },
        }
        for _ in range(args.events // 2)
    ]
    workloads = [
        ("shared, 1,000", all_rules[:1_000], events),
        ("shared, 10,000", all_rules, events),
        ("own condition, 10,000", [_own_condition(i) for i in range(10_000)], own_events),
    ]
    out = []
    for label, rules, events in workloads:
        plain = _without_crowds(rules)
        crowded = Matcher()
        for i, rule in enumerate(rules):
            crowded.add(f"rule-{i}", rule)
        designs: dict[str, Callable[[Any], Any]] = {
            "one by one": plain.match,
            "bitsets": _Combined(rules, "bitsets").match,
            "counting": _Combined(rules, "counting").match,
            "second-level indexes": crowded.match,
        }
        rates = {name: rate(run, events, args.budget)[0] for name, run in designs.items()}
        rates["candidates, one by one"] = _candidates(plain, events)
        rates["candidates, second-level"] = _candidates(crowded, events)
        out.append((label, rates))
    return out


def _candidates(matcher: Matcher, events: list[dict[str, Any]]) -> float:
    """Branches verified per event (crowds expanded)."""
    from eventbus.patterns import matcher as matcher_module
    from eventbus.patterns.crowd import Crowd

    snapshot = matcher._snapshot
    total = 0
    for event in events:
        flat, _ = matcher_module.flatten(event, snapshot.trie)
        buckets: list[tuple[Any, ...]] = []
        for path, index, seconds in snapshot.probes:
            values = flat.get(path)
            if values is None:
                continue
            if index is not None:
                index.collect(values, buckets)
            if seconds is not None:
                matcher_module._collect_pairs(values, seconds, flat, buckets)
        for bucket in buckets:
            if type(bucket[0]) is Crowd:
                bucket[0].expand(flat, buckets)
            else:
                total += len(bucket)
    return total / len(events)


# --- the worst events within the size limit ------------------------------------------------------

EVENT_LIMIT = 256 * 1024
WORST_OPS: list[Any] = [
    {"wildcard": "*a*b*c*"},
    {"wildcard": "x*y*z"},
    {"prefix": "ab"},
    {"suffix": "yz"},
    {"anything-but": {"wildcard": "*q*r*"}},
    {"equals-ignore-case": "abc"},
    {"numeric": [">", 5]},
    {"numeric": [">", 1, "<=", 100]},
    {"cidr": "10.0.0.0/8"},
    {"anything-but": [1, 2, 3]},
    {"prefix": {"equals-ignore-case": "AB"}},
]


def _nested(levels: int, n: int, level: int = 0) -> Any:
    """Arrays ``levels`` deep, ``n`` elements each; the elements at level k hold ``f<k>`` and
    the next level's array ``l<k+1>``; the innermost hold ``f<levels>``, ``g`` and ``h``."""
    if level == levels:
        return {f"f{levels}": 1, "g": 1, "h": 1}
    return [{f"f{level}": 1, f"l{level + 1}": _nested(levels, n, level + 1)} for _ in range(n)]


def _nested_rule(levels: int, absent: list[str]) -> dict[str, Any]:
    """Every level's field, and ``exists: false`` on the innermost fields named in ``absent``."""
    rule: dict[str, Any] = {f"f{levels}": [1], **{name: [{"exists": False}] for name in absent}}
    for level in range(levels - 1, -1, -1):
        rule = {f"f{level}": [1], f"l{level + 1}": rule}
    return {"l0": rule}


def _deep(width: int) -> dict[str, Any]:
    """Arrays nested 900 deep (JSON parsers stop near 1,000), each level holding ``width`` objects."""
    value: Any = {"p": 1, "q": 2}
    for _ in range(900):
        value = [value, *({"p": 2} for _ in range(width))]
    return {"a": value}


def worst_shapes() -> list[tuple[str, Callable[[int], dict[str, Any]], list[dict[str, Any]]]]:
    """Event shapes built against the matcher, each with the rules it is built against. Every
    shape is filled up to the 256 KB limit on an event's JSON."""
    rng = random.Random(SEED + 9)
    absent: list[Any] = [{"exists": False}]
    words = ["abc", "ab", "xyz", "10.1.2.3", "q", "AbC", "xqr"]
    return [
        # Nested arrays, each level's field in every element, exists: false at the
        # bottom, so that no choice works and a search would try them all.
        ("arrays 3 deep, exists:false", lambda n: {"l0": _nested(3, n)}, [_nested_rule(3, ["g", "h"])]),
        ("arrays 4 deep, exists:false", lambda n: {"l0": _nested(4, n)}, [_nested_rule(4, ["g"])]),
        (
            "sibling arrays in each element",
            lambda n: {"a": [{"b": [{"x": i} for i in range(n)], "c": [{"y": i} for i in range(n)], "d": [{"z": i} for i in range(n)]} for _ in range(n)]},
            [{"a": {"b": {"x": [0]}, "c": {"y": [1]}, "d": {"z": absent}}}],
        ),
        (
            "one path spelled two ways",
            # The plain spelling first: the walk has gone through half the event when it
            # meets the key with dots, and reads the whole event again.
            lambda n: {"a": {"b": [{"p": {"q": [2], "r": {"s": 1}}} for _ in range(n)]}, "a.b": [{"p.q": 1, "p": {"r": [1]}} for _ in range(n)]},
            [{"a": {"b": {"p": {"q": [1], "r": [2]}}}}, {"a.b.p.q": [2], "a.b.p.r.s": absent}],
        ),
        ("arrays 900 deep", _deep, [{"a": {"p": [1], "q": absent}}, {"a": {"p": [2], "q": [2]}}]),
        (
            "array of short values, every operator",
            lambda n: {"a": [rng.choice(words) for _ in range(n)] + list(range(n))},
            [{"a": [op]} for op in WORST_OPS],
        ),
        (
            "distinct numbers, 80 ranges",
            lambda n: {"a": list(range(n))},
            [{"a": [op]} for op in WORST_OPS] + [{"a": [{"numeric": [">", i, "<", i + 7]}]} for i in range(0, 200, 3)],
        ),
        (
            "array of objects, every operator",
            lambda n: {"r": [{"v": rng.choice(words) + str(i), "w": i % 10} for i in range(n)]},
            [{"r": {"v": [op], "w": [{"exists": False}, 3]}} for op in WORST_OPS],
        ),
        (
            "long strings, wildcards",
            lambda n: {"a": "ab" * n, "b": ["xq" * 50 for _ in range(n // 100)]},
            [{"a": [op]} for op in WORST_OPS] + [{"b": [op]} for op in WORST_OPS],
        ),
    ]


def _fill(make: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """The largest ``make(n)`` whose JSON fits the event size limit."""
    low, high = 1, 2
    while len(json.dumps(make(high))) <= EVENT_LIMIT:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if len(json.dumps(make(middle))) <= EVENT_LIMIT:
            low = middle
        else:
            high = middle
    return make(low)


def worst_events(repeat: int) -> list[tuple[str, int, float, float, int]]:
    """Per shape: KB of JSON, ms of ``Matcher.match`` with all its rules, ms of the slowest
    single ``Pattern.matches``, and the matches; best of ``repeat`` runs (CPU time)."""
    from eventbus import Pattern

    out = []
    for name, make, rules in worst_shapes():
        event = _fill(make)
        matcher = Matcher()
        for i, rule in enumerate(rules):
            matcher.add(f"r{i}", rule)
        patterns = [Pattern(rule) for rule in rules]
        best = slowest = float("inf")
        found: set[str] = set()
        for _ in range(repeat):
            # As in rate(): the collector paused while timing, so that a collection set off by
            # the benchmark's own garbage is not billed to the match.
            gc.collect()
            gc.disable()
            try:
                start = time.process_time()
                found = matcher.match(event)
                best = min(best, time.process_time() - start)
                each = []
                for pattern in patterns:
                    start = time.process_time()
                    pattern.matches(event)
                    each.append(time.process_time() - start)
                slowest = min(slowest, max(each))
            finally:
                gc.enable()
        assert found == {f"r{i}" for i, p in enumerate(patterns) if p.matches(event)}, name
        out.append((name, len(json.dumps(event)) // 1024, 1e3 * best, 1e3 * slowest, len(found)))
    return out


def only(args: argparse.Namespace, peers: Peers) -> None:
    """One family's table at the sizes asked for (``--only``)."""
    global SIZES
    if args.sizes:
        SIZES = tuple(int(size) for size in args.sizes.split(","))
    if args.only == "mixed":
        rng = random.Random(SEED)
        events = [make_event(rng) for _ in range(args.events)]
        rules = mixed_rules(random.Random(SEED + 1), max(SIZES))
        bench_family("mixed rules", lambda n: rules[:n], lambda n: events, peers, args)
    elif args.only == "distinct":
        bench_family(
            "distinct rules (one customer id each)",
            distinct_rules,
            lambda n: distinct_events(random.Random(SEED + 2), args.events, n),
            peers,
            args,
        )
    else:
        shared_rng = random.Random(SEED + 20)
        events = [shared_event(shared_rng) for _ in range(args.events)]
        rules = shared_rules(random.Random(SEED + 21), max(max(SIZES), 10_000))
        bench_family("shared anchors", lambda n: rules[:n], lambda n: events, peers, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer events and tighter peer budgets")
    parser.add_argument(
        "--only", choices=["mixed", "distinct", "shared"], help="measure one family's table and nothing else"
    )
    parser.add_argument("--sizes", help="rule counts for --only, comma-separated (default: 1 to 10,000)")
    parser.add_argument("--eventbus", metavar="CHECKOUT", help="measure the eventbus package of another checkout")
    args = parser.parse_args()
    if args.sizes and not args.only:
        parser.error("--sizes goes with --only")
    args.events = 200 if args.quick else 1_000
    args.budget = 0.3 if args.quick else 1.0
    args.peer_budget = 0.5 if args.quick else 2.5
    args.moto_max = 1_000 if args.quick else 10_000

    print(f"# Matcher benchmark (seed {SEED}{', --quick' if args.quick else ''}); Python {sys.version.split()[0]}")
    import eventbus
    from eventbus.patterns import native

    print(f"eventbus from {Path(eventbus.__file__).parent}; matcher: {native.why()}")
    peers = Peers()
    if args.only:
        only(args, peers)
        return
    rng = random.Random(SEED)
    events = [make_event(rng) for _ in range(args.events)]
    size = sum(len(json.dumps(e)) for e in events) / len(events)
    print(f"events: {len(events)} distinct, {size:,.0f} bytes of JSON on average")

    all_mixed = mixed_rules(random.Random(SEED + 1), max(SIZES))
    print(f"mixed rule mix (10,000 rules, share of conditions): {rule_mix(all_mixed)}")
    mixed = bench_family("mixed rules", lambda n: all_mixed[:n], lambda n: events, peers, args)

    distinct = bench_family(
        "distinct rules (one customer id each)",
        distinct_rules,
        lambda n: distinct_events(random.Random(SEED + 2), args.events, n),
        peers,
        args,
    )

    shared_rng = random.Random(SEED + 20)
    shared_evs = [shared_event(shared_rng) for _ in range(args.events)]
    all_shared = shared_rules(random.Random(SEED + 21), max(SIZES))
    size = sum(len(json.dumps(e)) for e in shared_evs) / len(shared_evs)
    print(
        f"\nshared anchors: {len(SHARED.sources)} sources x {len(SHARED.types)} detail-types, events of "
        f"{size:,.0f} bytes; rule mix (10,000 rules): {rule_mix(all_shared)}"
    )
    shared = bench_family("shared anchors (few sources and types, rules differ in detail)", lambda n: all_shared[:n], lambda n: shared_evs, peers, args)

    print("\n## shared anchors, other vocabularies and seeds (Matcher only)")
    print(f"{'variant':>8} {'rules':>7} {'ev/s dicts':>11} {'ev/s text':>10} {'matches/ev':>10} {'10,000/10':>10}")
    for number, words in enumerate(SHARED_VARIANTS, 1):
        rng = random.Random(SEED + 40 + number)
        evs = [shared_event(rng, words) for _ in range(args.events // 2)]
        texts = [json.dumps(e) for e in evs]
        variant_rules = shared_rules(random.Random(SEED + 50 + number), 10_000, words)
        base = 0.0
        for count in (10, 1_000, 10_000):
            matcher = Matcher()
            for i, rule in enumerate(variant_rules[:count]):
                matcher.add(f"rule-{i}", rule)
            dicts, _ = rate(matcher.match, evs, args.budget / 2)
            text, _ = rate(matcher.match, texts, args.budget / 2)
            base = base or dicts
            matches = sum(len(matcher.match(e)) for e in evs) / len(evs)
            print(f"{number:>8} {count:>7,} {_fmt(dicts):>11} {_fmt(text):>10} {matches:>10.2f} {dicts / base:>10.3f}")

    print("\n## candidates that share an anchor: ways to verify them (shared anchors, events/s from dicts)")
    designs = compare_designs(args)
    names = list(designs[0][1])
    print(f"{'workload':>22} " + " ".join(f"{name:>24}" for name in names))
    for label, rates in designs:
        print(f"{label:>22} " + " ".join(f"{_fmt(rates[name]):>24}" for name in names))

    print("\n## 10,000 rules: memory and time to add")
    memory, add_time = memory_and_add_time(all_mixed)
    d_memory, d_add_time = memory_and_add_time(distinct_rules(10_000))
    s_memory, s_add_time = memory_and_add_time(all_shared)
    print(f"mixed:    {memory:6.1f} MB (tracemalloc), added in {add_time:.2f} s of CPU")
    print(f"distinct: {d_memory:6.1f} MB (tracemalloc), added in {d_add_time:.2f} s of CPU")
    print(f"shared:   {s_memory:6.1f} MB (tracemalloc), added in {s_add_time:.2f} s of CPU")
    print("(patterns given as dicts: the time includes parsing and validating each one)")

    print("\n## linear in the event's size (16 rules on one array path)")
    rows = scaling(args)
    for n, per in rows:
        print(f"array of {n:>6,} values: {per:.2f} us per value")

    print("\n## the worst events within 256 KB (best of 3 runs, CPU ms)")
    print(f"{'shape':40} {'KB':>4} {'rules':>5} {'Matcher ms':>11} {'Pattern ms':>11} {'matches':>8}")
    worst = worst_events(3)
    for (name, kb, ours, single, found), (_, _, rules) in zip(worst, worst_shapes(), strict=True):
        print(f"{name:40} {kb:>4} {len(rules):>5} {ours:>11.1f} {single:>11.1f} {found:>8}")

    print("\n## targets")
    json_floor_us = 1e6 / distinct[1_000].json_loads
    match_us = 1e6 / distinct[1_000].ours
    checks = [
        ("1,000 mixed rules >= 1,000x LocalStack", mixed[1_000].localstack, mixed[1_000].ours, 1_000),
        ("1 mixed rule >= 2x LocalStack", mixed[1].localstack, mixed[1].ours, 2),
        ("1 distinct rule >= 2x LocalStack", distinct[1].localstack, distinct[1].ours, 2),
    ]
    for label, theirs, ours, factor in checks:
        if theirs is None:
            print(f"- {label}: LocalStack not installed")
        else:
            verdict = "met" if ours >= factor * theirs else "NOT met"
            print(f"- {label}: {ours / theirs:,.0f}x, {verdict}")
    ratio = distinct[10_000].ours / distinct[10].ours
    print(f"- distinct: 10,000 rules >= 1/2 of 10 rules: {ratio:.2f}, {'met' if ratio >= 0.5 else 'NOT met'}")
    print(
        f"- distinct: match at 1,000 rules {match_us:.1f} us <= json.loads {json_floor_us:.1f} us: "
        f"{'met' if match_us <= json_floor_us else 'NOT met'}"
    )
    ratio = mixed[10_000].ours / mixed[10].ours
    print(f"- mixed: 10,000 rules >= 1/10 of 10 rules: {ratio:.2f}, {'met' if ratio >= 0.1 else 'NOT met'}")
    if shared[1_000].localstack is None:
        print("- shared: 1,000 rules >= 1,000x LocalStack: LocalStack not installed")
    else:
        factor = shared[1_000].ours / shared[1_000].localstack
        print(f"- shared: 1,000 rules >= 1,000x LocalStack: {factor:,.0f}x, {'met' if factor >= 1_000 else 'NOT met'}")
        factor = shared[1_000].text / shared[1_000].localstack
        print(
            f"- shared: 1,000 rules from JSON text >= 1,000x LocalStack (on dicts): {factor:,.0f}x, "
            f"{'met' if factor >= 1_000 else 'NOT met'}"
        )
    for label, value in (("dicts", shared[10_000].ours), ("JSON text", shared[10_000].text)):
        print(f"- shared: 10,000 rules >= 3,000 events/s from {label}: {value:,.0f}, {'met' if value >= 3_000 else 'NOT met'}")
    for label, high, low in (
        ("dicts", shared[10_000].ours, shared[10].ours),
        ("JSON text", shared[10_000].text, shared[10].text),
    ):
        print(f"- shared: 10,000 rules >= 0.03 of 10 rules ({label}): {high / low:.3f}, {'met' if high / low >= 0.03 else 'NOT met'}")
    most = max(memory, d_memory, s_memory)
    print(f"- 10,000 rules in <= 200 MB: {most:.1f} MB, {'met' if most <= 200 else 'NOT met'}")
    print(f"- adding 10,000 rules takes seconds: {max(add_time, d_add_time, s_add_time):.2f} s")
    growth = rows[-1][1] / rows[0][1]
    print(f"- per-value cost, 10,000 vs 100 values: {growth:.2f}x ({'linear' if growth < 2 else 'NOT linear'})")
    slowest = max(worst, key=lambda row: row[2])
    print(
        f"- worst event within 256 KB < 50 ms per match: {slowest[2]:.1f} ms ({slowest[0]}), "
        f"{'met' if slowest[2] < 50 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
