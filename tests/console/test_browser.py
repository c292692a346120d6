"""The console in a real browser: headless Chromium (Debian's) driven by Selenium, against a live
``running_server``.

Each page loads without a script error; events put through boto3 appear in the live tail with the
rules they matched and what each target was sent; the tail's filter takes a pattern typed in the
page; counters refresh without a reload; a rule is switched off and on; the sandbox answers valid,
invalid and non-matching input; a dead letter is redriven and delivered; a replay is started and
cancelled; an event carrying ``<script>`` and quotes is shown as text and nothing runs. Every page
is saved as a screenshot (see ``shots_folder``).

Every wait is on a condition (``wait_for``), bounded at 30 s: never a sleep.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventbus.console import DeadLetter, DeadLetterQueueInfo, Redriven
from eventbus.server import ArchiveInfo, ReplayInfo
from eventbus.server.errors import ApiError
from eventbus.targets.recording import recording_target

from .browser import wait_for
from .conftest import shots_folder

ACCOUNT = "arn:aws:events:us-east-1:123456789012"
SCRIPT = "<script>window.__pwned = 1; console.log('pwned')</script>\"'><img src=x onerror=\"window.__pwned = 2\">"


def by(kind: str, value: str) -> tuple[str, str]:
    from selenium.webdriver.common.by import By

    return ({"css": By.CSS_SELECTOR, "id": By.ID, "xpath": By.XPATH}[kind], value)


def css(driver: Any, selector: str) -> list[Any]:
    return list(driver.find_elements(*by("css", selector)))


def one(driver: Any, selector: str) -> Any:
    return driver.find_element(*by("css", selector))


def open_page(driver: Any, served: Any, path: str) -> None:
    driver.get(served.url + "/console" + path)
    wait_for(driver, lambda d: css(d, "html[data-console-ready]"), f"{path} to load its script")


def problems(driver: Any) -> list[str]:
    """What the page's console said at error level (a failed script, a CSP refusal)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def put(served: Any, detail: dict[str, Any], detail_type: str = "OrderPlaced") -> str:
    answer = served.client("events").put_events(
        Entries=[{"Source": "shop", "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": "orders"}]
    )
    assert answer["FailedEntryCount"] == 0, answer
    return str(answer["Entries"][0]["EventId"])


def row_of(driver: Any, event_id: str) -> Any:
    found = css(driver, f'tr[data-event="{event_id}"]')
    return found[0] if found else None


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shots_folder(tmp_path_factory)


@pytest.fixture(autouse=True)
def clean_log(chromium: Any) -> None:
    chromium.get_log("browser")  # what earlier tests left


PAGES = [
    ("/", "Topology"),
    ("/tail", "Live tail"),
    ("/rules", "Rules"),
    ("/rules/orders/placed", "Rule placed"),
    ("/dead-letters", "Dead letters"),
    ("/archives", "Archives and replays"),
    ("/sandbox", "Sandbox"),
]


@pytest.mark.parametrize(("path", "title"), PAGES, ids=[p for p, _ in PAGES])
def test_each_page_loads_labelled_and_without_a_script_error(chromium: Any, served: Any, path: str, title: str) -> None:
    open_page(chromium, served, path)
    assert one(chromium, "h1").text == title
    assert chromium.title == f"{title} · eventbus console"
    # Every control a person fills has a label (or an aria-label) a screen reader reads.
    unlabelled = chromium.execute_script(
        """return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea, button'))
             .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
             .map(e => e.outerHTML)"""
    )
    assert unlabelled == []
    assert one(chromium, "nav a[aria-current=page]").text in {"Topology", "Live tail", "Rules", "Dead letters", "Archives and replays", "Sandbox"}
    assert problems(chromium) == []


def test_the_tail_shows_events_as_they_are_put_with_rules_inputs_and_outcomes(chromium: Any, served: Any, shots: Path) -> None:
    open_page(chromium, served, "/tail")
    wait_for(chromium, lambda d: css(d, "#tail-form[data-connected]"), "the tail to connect")
    small = put(served, {"order": "o-1", "total": 20})
    big = put(served, {"order": "o-2", "total": 250})
    put(served, {"refund": "r-1"}, detail_type="Unrelated")
    row = wait_for(chromium, lambda d: row_of(d, big), "the big order in the tail")
    assert [p.text for p in row.find_elements(*by("css", ".pill:not([data-outcome])"))] in (["placed", "big"], ["big", "placed"])
    small_row = wait_for(chromium, lambda d: row_of(d, small), "the small order in the tail")
    assert [p.text for p in small_row.find_elements(*by("css", ".rules-list .pill:not([data-outcome])"))] == ["placed"]
    wait_for(
        chromium,
        lambda d: len(row_of(d, big).find_elements(*by("css", '[data-outcome="delivered"]'))) == 3,
        "three deliveries of the big order",
    )
    # Open it with the keyboard: the event, what each target was sent, each delivery.
    button = row.find_element(*by("css", "button[aria-expanded]"))
    button.send_keys("\n")
    detail = one(chromium, f"#{button.get_attribute('aria-controls')}")
    wait_for(chromium, lambda d: detail.is_displayed(), "the event's details to open")
    assert button.get_attribute("aria-expanded") == "true"
    assert json.loads(detail.find_element(*by("css", ".event-json")).text)["id"] == big
    texts = [pre.text for pre in detail.find_elements(*by("css", "pre.json"))]
    assert any(json.loads(t) == {"order": "o-2", "total": 250} for t in texts[1:])  # the summary target's input
    outcomes = [li.text for li in detail.find_elements(*by("css", "ul.outcomes li"))]
    assert sorted(outcomes) == [
        "big/notify: delivered (attempt 1)",
        "placed/audit: delivered (attempt 1)",
        "placed/summary: delivered (attempt 1)",
    ]
    chromium.save_screenshot(str(shots / "tail.png"))
    assert problems(chromium) == []


def test_the_page_keeps_only_its_last_rows(chromium: Any, served: Any) -> None:
    tail = served.server.app.state.console.tail
    tail.max_rows = 3
    try:
        open_page(chromium, served, "/tail")
        wait_for(chromium, lambda d: css(d, "#tail-form[data-connected]"), "the tail to connect")
        ids = [put(served, {"order": f"keep-{n}", "total": n}) for n in range(5)]
        wait_for(chromium, lambda d: row_of(d, ids[-1]), "the last event")
        assert [r.get_attribute("data-event") for r in css(chromium, "tr[data-event]")] == ids[:1:-1]
        assert len(css(chromium, "tr.detail")) == 3
    finally:
        tail.max_rows = 300


def test_the_tail_filters_by_a_pattern_typed_in_the_page(chromium: Any, served: Any) -> None:
    open_page(chromium, served, "/tail")
    wait_for(chromium, lambda d: css(d, "#tail-form[data-connected]"), "the tail to connect")
    box = one(chromium, "#tail-pattern")
    box.send_keys('{"detail": {"total": [{"numeric": [">>", 1]}]}}')
    one(chromium, "#tail-apply").click()
    error = wait_for(chromium, lambda d: (e := one(d, "#tail-filter-error")).is_displayed() and e, "the pattern's error")
    assert error.text.startswith("Invalid pattern: ") and "numeric" in error.text.lower()
    box.clear()
    box.send_keys('{"detail": {"total": [{"numeric": [">", 1000]}]}}')
    one(chromium, "#tail-apply").click()
    wait_for(chromium, lambda d: (d.find_element(*by("id", "tail-form")).get_attribute("data-filter") or "").startswith("{"), "the filter")
    assert not one(chromium, "#tail-filter-error").is_displayed()
    skipped = put(served, {"order": "o-3", "total": 5})
    shown = put(served, {"order": "o-4", "total": 5000})
    wait_for(chromium, lambda d: row_of(d, shown), "the matching event")
    # Routed in order on one bus: the first was judged (and left out) before the second was shown.
    assert row_of(chromium, skipped) is None


def test_an_event_with_a_script_and_quotes_is_shown_as_text_and_never_run(chromium: Any, served: Any) -> None:
    answer = httpx.get(served.url + "/console/tail")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    open_page(chromium, served, "/tail")
    wait_for(chromium, lambda d: css(d, "#tail-form[data-connected]"), "the tail to connect")
    event_id = put(served, {"order": SCRIPT, "total": 1}, detail_type=SCRIPT)
    row = wait_for(chromium, lambda d: row_of(d, event_id), "the event in the tail")
    assert row.find_element(*by("css", ".detail-type")).text == SCRIPT
    button = row.find_element(*by("css", "button[aria-expanded]"))
    button.click()
    detail = one(chromium, f"#{button.get_attribute('aria-controls')}")
    assert json.loads(detail.find_element(*by("css", ".event-json")).text)["detail"]["order"] == SCRIPT
    # The rule's page shows it too, rendered by the server.
    open_page(chromium, served, "/rules/orders/placed")
    cells = [c.get_attribute("textContent") for c in css(chromium, "table.data td")]
    assert any(SCRIPT in (c or "") for c in cells)
    # And the sandbox echoes it back.
    open_page(chromium, served, "/sandbox")
    event_box = one(chromium, "#pattern-event")
    event_box.clear()
    event_box.send_keys(json.dumps({"source": SCRIPT}))
    one(chromium, "#pattern-run").click()
    wait_for(chromium, lambda d: css(d, "#pattern-result"), "the sandbox's verdict")
    assert json.loads(one(chromium, "#pattern-event").get_attribute("value")) == {"source": SCRIPT}
    assert chromium.execute_script("return window.__pwned") is None
    assert css(chromium, "img[src=x]") == [] and css(chromium, "body script:not([src])") == []
    said = [e["message"] for e in chromium.get_log("browser")]
    assert not any("pwned" in m or "Content Security Policy" in m for m in said), said


def test_counters_refresh_without_a_reload(chromium: Any, served: Any, shots: Path) -> None:
    open_page(chromium, served, "/")
    chromium.execute_script("window.__sameDocument = true")
    cell = one(chromium, 'td[data-counters="rule_orders_big"]')
    before = int(cell.text.split("matched ", 1)[1].split(" ", 1)[0])
    put(served, {"order": "o-5", "total": 900})
    wait_for(chromium, lambda d: f"matched {before + 1} " in one(d, 'td[data-counters="rule_orders_big"]').text, "the rule's counter to move")
    wait_for(
        chromium,
        lambda d: "matched" in one(d, '[data-node-counters="rule_orders_big"]').text,
        "the drawing's counters",
    )
    assert chromium.execute_script("return window.__sameDocument") is True  # the page was not reloaded
    box = one(chromium, "#topology svg").size
    assert box["width"] > 400 and box["height"] > 150
    chromium.save_screenshot(str(shots / "topology.png"))
    assert problems(chromium) == []


def test_a_rule_is_switched_off_and_on(chromium: Any, served: Any, shots: Path) -> None:
    bus = served.server.state.buses.get("orders")
    open_page(chromium, served, "/rules")
    chromium.save_screenshot(str(shots / "rules.png"))
    one(chromium, 'button[aria-label="Disable rule big on bus orders"]').click()
    wait_for(chromium, lambda d: css(d, 'button[aria-label="Enable rule big on bus orders"]'), "the rule to show disabled")
    assert bus.describe_rule("big").state == "DISABLED"
    skipped = put(served, {"order": "o-6", "total": 700})
    open_page(chromium, served, "/rules/orders/big")
    row = wait_for(
        chromium,
        lambda d: next((r for r in css(d, "table.data tbody tr") if skipped in (r.get_attribute("textContent") or "")), None)
        or d.refresh(),
        "the event on the rule's page",
    )
    # Disabled: it did not match then, though the pattern matches it.
    assert "no (the pattern matches it now)" in row.text
    one(chromium, "form.inline button[type=submit]").click()
    wait_for(chromium, lambda d: "ENABLED" in one(d, "dl.facts").text, "the rule to show enabled")
    assert bus.describe_rule("big").state == "ENABLED"
    chromium.save_screenshot(str(shots / "rule.png"))


def test_the_sandbox_answers_valid_invalid_and_non_matching_input(chromium: Any, served: Any, shots: Path) -> None:
    open_page(chromium, served, "/sandbox")
    one(chromium, "#pattern-run").click()  # the sample event and pattern: a match
    result = wait_for(chromium, lambda d: css(d, "#pattern-result"), "the verdict")[0]
    assert result.text.startswith("Match")
    pattern = one(chromium, "#pattern-pattern")
    pattern.clear()
    pattern.send_keys('{"detail": {"total": [{"numeric": [">", 500]}]}}')
    one(chromium, "#pattern-run").click()
    wait_for(chromium, lambda d: one(d, "#pattern-result").text.startswith("No match"), "a miss")
    assert 'detail.total: numeric [">", 500] did not match 150' in one(chromium, "#pattern-result").text
    pattern = one(chromium, "#pattern-pattern")
    pattern.clear()
    pattern.send_keys('{"source": "shop"}')
    one(chromium, "#pattern-run").click()
    wait_for(chromium, lambda d: one(d, "#pattern-result").text.startswith("Invalid pattern"), "AWS's error")
    from eventbus import Pattern, PatternError

    with pytest.raises(PatternError) as info:
        Pattern('{"source": "shop"}')
    assert one(chromium, "#pattern-result pre").text == str(info.value)
    one(chromium, "#transform-run").click()
    output = wait_for(chromium, lambda d: css(d, "#transform-output"), "the rendered input")[0]
    assert json.loads(output.text) == {"order": "o-1", "total": 150, "rule": "console-sandbox"}
    chromium.save_screenshot(str(shots / "sandbox.png"))
    transformer = one(chromium, "#transform-transformer")
    transformer.clear()
    transformer.send_keys('{"InputPathsMap": {"x": "$.detail.nothing"}, "InputTemplate": "<y>"}')
    one(chromium, "#transform-run").click()
    wait_for(chromium, lambda d: css(d, "#transform-result pre.problem"), "the transformer's error")
    assert "y" in one(chromium, "#transform-result pre.problem").text
    assert problems(chromium) == []


# -- dead letters and replays: the durable services these pages drive --------------------------------


DLQ_CONFIG = """
buses:
  payments:
    rules:
      refunds:
        pattern: {source: [shop], detail-type: [RefundIssued]}
        targets:
          - id: ledger
            function: {function: "dlq_ledger:ledger"}
            retry_policy: {MaximumRetryAttempts: 0}
            dead_letter:
              queue: {type: sqlite, path: refunds-dlq.db}
"""

DLQ_FUNCTIONS = '''
"""The ledger refuses refunds while a file called closed exists beside the config."""
import json
from pathlib import Path


def ledger(event):
    if Path("closed").exists():
        raise RuntimeError("the ledger is closed for the night")
    with open("ledger.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps(event) + "\\n")
'''


def test_a_dead_letter_in_the_sqlite_queue_is_redriven_to_its_target(chromium: Any, tmp_path: Path) -> None:
    """Against ``eventbus serve`` in a process of its own, whose rule dead-letters to a SQLite
    queue: the page lists the entries with their reasons; Redrive sends one back to the one target
    it failed for, and it is delivered; Redrive selected sends the ticked ones; Redrive all the
    rest."""
    from tests.server.helpers import LiveServer

    (tmp_path / "dlq_ledger.py").write_text(DLQ_FUNCTIONS, encoding="utf-8")
    (tmp_path / "payments.yaml").write_text(DLQ_CONFIG, encoding="utf-8")
    (tmp_path / "closed").touch()
    server = LiveServer([tmp_path / "payments.yaml"], cwd=tmp_path)
    try:
        events = server.client("events")
        for refund in ("r-1", "r-2", "r-3", "r-4"):
            events.put_events(
                Entries=[{"Source": "shop", "DetailType": "RefundIssued", "Detail": json.dumps({"refund": refund}), "EventBusName": "payments"}]
            )
        chromium.get(server.url + "/console/dead-letters")
        wait_for(
            chromium,
            lambda d: "refunds-dlq\n4" in (d.find_element(*by("css", "table.data tbody")).text.replace(" ", "\n")) or d.refresh(),
            "four dead letters in the queue",
        )
        one(chromium, "table.data a").click()
        wait_for(chromium, lambda d: len(css(d, "input[name=id]")) == 4, "the queue's entries")
        text = one(chromium, "table.data").text
        assert "payments/refunds/ledger" in text and "the ledger is closed for the night" in text
        (tmp_path / "closed").unlink()
        first = css(chromium, "button[name=one]")[0]
        first.click()
        wait_for(chromium, lambda d: "Redriven: 1 sent back" in one(d, "main").text, "the redrive's result")
        ledger = tmp_path / "ledger.jsonl"
        wait_for(chromium, lambda d: ledger.exists() and ledger.read_text().count("\n") == 1, "the redriven refund delivered")
        boxes = css(chromium, "input[name=id]")
        assert len(boxes) == 3
        for box in boxes[:2]:
            box.send_keys(" ")  # ticked from the keyboard
        one(chromium, "button[name=which][value=selected]").click()
        wait_for(chromium, lambda d: "Redriven: 2 sent back" in one(d, "main").text, "the selected redriven")
        wait_for(chromium, lambda d: ledger.read_text().count("\n") == 3, "the selected refunds delivered")
        assert len(css(chromium, "input[name=id]")) == 1
        one(chromium, "button[name=which][value=all]").click()
        wait_for(chromium, lambda d: "This queue holds no dead letters" in one(d, "main").text, "an empty queue")
        wait_for(chromium, lambda d: ledger.read_text().count("\n") == 4, "every refund delivered")
        assert sorted(json.loads(line)["detail"]["refund"] for line in ledger.read_text().splitlines()) == ["r-1", "r-2", "r-3", "r-4"]
    finally:
        assert server.stop() == 0, "\n".join(server.lines)


def test_a_replay_of_a_served_archive_puts_its_events_back(chromium: Any, served: Any) -> None:
    """The served bus's own archive (kept in memory here): a replay started from the page puts
    the archived events back on the bus, with their replay-name, and shows itself completed."""
    events = served.client("events")
    events.create_archive(
        ArchiveName="orders-kept",
        EventSourceArn=f"{ACCOUNT}:event-bus/orders",
        EventPattern=json.dumps({"source": ["shop"], "detail": {"order": ["kept-1", "kept-2"]}}),
    )
    audit = recording_target("console-audit")
    start = datetime.now(UTC) - timedelta(minutes=1)
    for order in ("kept-1", "kept-2"):
        put(served, {"order": order, "total": 5})
    wait_for(chromium, lambda d: events.describe_archive(ArchiveName="orders-kept")["EventCount"] == 2, "two events archived")
    open_page(chromium, served, "/archives")
    row = wait_for(chromium, lambda d: [r for r in css(d, "table.data tbody tr") if "orders-kept" in r.text], "the archive listed")[0]
    assert "2" in row.text.split()
    one(chromium, "#replay-name").send_keys("kept-again")
    chromium.execute_script(
        "document.getElementById('replay-archive').value = 'orders-kept';"
        "document.getElementById('replay-start').value = arguments[0];"
        "document.getElementById('replay-end').value = arguments[1];",
        start.strftime("%Y-%m-%dT%H:%M:%S"),
        (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S"),
    )
    one(chromium, "#replay-form button[type=submit]").click()
    wait_for(
        chromium,
        lambda d: (r := css(d, 'tr[data-replay="kept-again"]')) and "COMPLETED" in r[0].text,
        "the replay completed, shown without a reload",
    )
    row = one(chromium, 'tr[data-replay="kept-again"]')
    assert int(row.find_element(*by("css", "progress")).get_attribute("value")) == 100
    assert "2 of 2 events" in row.text
    assert css(chromium, 'button[aria-label="Cancel replay kept-again"]') == []
    wait_for(
        chromium,
        lambda d: sorted(r.payload["detail"]["order"] for r in audit.received if r.payload.get("replay-name") == "kept-again")
        == ["kept-1", "kept-2"],
        "the replayed events delivered again",
    )
    assert problems(chromium) == []


class DeadLetters:
    """A dead-letter service over a recording dead-letter target: what the durable queue will
    do, minus keeping it across restarts (its redrive re-puts the event on its bus, where only
    the rule target it failed for matches it in this config)."""

    def __init__(self, served: Any, name: str) -> None:
        self.served = served
        self.name = name
        self.target = recording_target(name)

    def _letters(self) -> list[DeadLetter]:
        letters = []
        for received in self.target.received:
            attributes = received.context.attributes
            where = attributes.get("RULE_ARN", "").split(":rule/", 1)[-1]  # BUS/RULE, or RULE on default
            bus, _, rule = where.rpartition("/")
            letters.append(
                DeadLetter(
                    id=received.payload["id"],
                    queue=self.name,
                    event=received.payload,
                    bus=bus or "default",
                    rule=rule,
                    target_id=received.context.target_id,
                    error_code=attributes.get("ERROR_CODE"),
                    reason=attributes.get("ERROR_MESSAGE"),
                    retry_attempts=int(attributes.get("RETRY_ATTEMPTS", "0")),
                    condition=attributes.get("EXHAUSTED_RETRY_CONDITION"),
                    time=datetime.now(UTC),
                )
            )
        return letters

    async def queues(self) -> Sequence[DeadLetterQueueInfo]:
        return [DeadLetterQueueInfo(self.name, len(self.target.received))]

    async def entries(self, queue: str, limit: int) -> Sequence[DeadLetter]:
        return self._letters()[:limit]

    async def redrive(self, queue: str, ids: Sequence[str] | None) -> Redriven:
        sent = []
        for letter in self._letters():
            if ids is not None and letter.id not in ids:
                continue
            bus = self.served.server.state.buses.get(letter.bus)
            answer = await bus.put_events([letter.event])
            if answer["FailedEntryCount"] == 0:
                self.target.received[:] = [r for r in self.target.received if r.payload["id"] != letter.id]
                sent.append(letter.id)
        return Redriven(tuple(sent))


def test_a_dead_letter_is_redriven_and_delivered(chromium: Any, served: Any, shots: Path) -> None:
    console = served.server.app.state.console
    import console_functions  # the config's function module (conftest.py)

    before = console.dead_letters
    console.dead_letters = DeadLetters(served, "console-dead-letters")
    console_functions.CLOSED[0] = True
    entries = console_functions.ENTRIES
    try:
        first = put(served, {"refund": "r-1", "amount": 30}, detail_type="RefundIssued")
        second = put(served, {"refund": "r-2", "amount": 45}, detail_type="RefundIssued")
        open_page(chromium, served, "/dead-letters")
        wait_for(
            chromium,
            lambda d: "2" in one(d, "table.data tbody tr").text or d.refresh(),
            "two dead letters in the queue",
        )
        one(chromium, "table.data a").click()
        wait_for(chromium, lambda d: len(css(d, "input[name=id]")) == 2, "the queue's entries")
        text = one(chromium, "table.data").text
        assert "orders/refunds/ledger" in text and "the ledger is closed for the night" in text
        chromium.save_screenshot(str(shots / "dead-letters.png"))
        console_functions.CLOSED[0] = False  # the ledger opens: redriven refunds get through
        one(chromium, f'button[aria-label="Redrive dead letter {first}"]').click()
        wait_for(chromium, lambda d: "Redriven: 1 sent back" in one(d, "main").text, "the redrive's result")
        wait_for(chromium, lambda d: any(e["detail"].get("refund") == "r-1" for e in entries), "the redriven event delivered")
        assert [c.get_attribute("value") for c in css(chromium, "input[name=id]")] == [second]
        one(chromium, "button[name=which][value=all]").click()
        wait_for(chromium, lambda d: "This queue holds no dead letters" in one(d, "main").text, "an empty queue")
        wait_for(chromium, lambda d: any(e["detail"].get("refund") == "r-2" for e in entries), "the second delivered")
    finally:
        console.dead_letters = before
        console_functions.CLOSED[0] = False
    assert problems(chromium) == []


class Archives:
    """An archive service whose replays advance with the wall clock until cancelled (what the
    durable one reports, minus re-putting events)."""

    def __init__(self) -> None:
        now = datetime.now(UTC)
        self.archive = ArchiveInfo(
            "orders-archive", f"{ACCOUNT}:archive/orders-archive", "orders", f"{ACCOUNT}:event-bus/orders",
            "ENABLED", '{"source": ["shop"]}', 30, None, now - timedelta(days=2), event_count=1200, size_bytes=480_000,
        )
        self.replays: dict[str, ReplayInfo] = {}
        self.started: dict[str, datetime] = {}

    def create_archive(self, name: str, **_: Any) -> ArchiveInfo:
        raise ApiError("ValidationException", "not in this test")

    def describe_archive(self, name: str) -> ArchiveInfo:
        if name != self.archive.name:
            raise ApiError("ResourceNotFoundException", f"Archive {name} does not exist.")
        return self.archive

    def list_archives(self) -> Sequence[ArchiveInfo]:
        return [self.archive]

    def delete_archive(self, name: str) -> None:
        raise ApiError("ValidationException", "not in this test")

    async def start_replay(
        self, name: str, *, archive: str, start: datetime, end: datetime, destination_bus: str, rules: Sequence[str], description: str | None
    ) -> ReplayInfo:
        self.describe_archive(archive)
        info = ReplayInfo(
            name, f"{ACCOUNT}:replay/{name}", self.archive.arn, "RUNNING", f"{ACCOUNT}:event-bus/{destination_bus}",
            tuple(f"{ACCOUNT}:rule/{destination_bus}/{r}" for r in rules), start, end, description, started=datetime.now(UTC),
        )
        self.replays[name] = info
        self.started[name] = datetime.now(UTC)
        return info

    def describe_replay(self, name: str) -> ReplayInfo:
        info = self.replays[name]
        if info.state != "RUNNING":
            return info
        # Nearer the end every second, never reaching it: progress keeps moving until cancelled.
        elapsed = (datetime.now(UTC) - self.started[name]).total_seconds()
        share = min(0.99, 1 - 0.9 ** (1 + elapsed))
        return replace(info, last_replayed=info.event_start + (info.event_end - info.event_start) * share)

    def list_replays(self) -> Sequence[ReplayInfo]:
        return [self.describe_replay(n) for n in self.replays]

    def cancel_replay(self, name: str) -> ReplayInfo:
        info = self.describe_replay(name)
        self.replays[name] = replace(info, state="CANCELLED", state_reason="Cancelled from the console", ended=datetime.now(UTC))
        return self.replays[name]


def test_a_replay_is_started_its_progress_shown_and_cancelled(chromium: Any, served: Any, shots: Path) -> None:
    archives = Archives()
    before = served.server.archives.service
    served.server.archives.service = archives
    try:
        open_page(chromium, served, "/archives")
        assert "orders-archive" in one(chromium, "table.data").text
        one(chromium, "#replay-name").send_keys("yesterday")
        # datetime-local takes the keyboard's digits in the field's order (month, day, year, ...).
        start = datetime.now(UTC) - timedelta(days=1)
        chromium.execute_script(
            "document.getElementById('replay-start').value = arguments[0]", start.strftime("%Y-%m-%dT%H:%M:%S")
        )
        one(chromium, "#replay-rules").send_keys("placed")
        one(chromium, "#replay-form button[type=submit]").click()
        row = wait_for(chromium, lambda d: (r := css(d, 'tr[data-replay="yesterday"]')) and r[0], "the replay in the list")
        assert "RUNNING" in row.text
        info = archives.replays["yesterday"]
        assert info.filter_arns == (f"{ACCOUNT}:rule/orders/placed",)
        assert abs((info.event_start - start.replace(microsecond=0)).total_seconds()) < 1
        # Progress moves without a reload.
        first = int(row.find_element(*by("css", "progress")).get_attribute("value"))
        wait_for(
            chromium,
            lambda d: int(one(d, 'tr[data-replay="yesterday"] progress').get_attribute("value")) > first,
            "the replay's progress to move",
        )
        chromium.save_screenshot(str(shots / "archives.png"))
        one(chromium, 'button[aria-label="Cancel replay yesterday"]').click()
        wait_for(chromium, lambda d: "CANCELLED" in one(d, 'tr[data-replay="yesterday"]').text, "the replay cancelled")
        assert archives.replays["yesterday"].state == "CANCELLED"
        assert css(chromium, 'button[aria-label="Cancel replay yesterday"]') == []
    finally:
        served.server.archives.service = before
    assert problems(chromium) == []


def test_pages_without_their_services_say_what_they_need(chromium: Any, served: Any) -> None:
    open_page(chromium, served, "/dead-letters")
    assert "SQLite queue" in one(chromium, "table.data").text  # no rule here dead-letters to one
    console = served.server.app.state.console
    dead_letters, archives = console.dead_letters, served.server.archives.service
    console.dead_letters = served.server.archives.service = None
    try:
        open_page(chromium, served, "/dead-letters")
        assert "no dead-letter service" in one(chromium, "[role=note]").text
        open_page(chromium, served, "/archives")
        assert "no archive service" in one(chromium, "[role=note]").text
    finally:
        console.dead_letters, served.server.archives.service = dead_letters, archives
