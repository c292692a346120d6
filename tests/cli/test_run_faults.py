"""``eventbus run`` against what a demanding user throws at it: bad stdin lines, signals with stdin
still open, reloads under load, broken and half-saved configs, a second signal during the drain.

Every test runs the real command in a subprocess and waits on its status lines or on files its
targets write, each wait bounded and generous, never a sub-second margin.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli.test_run import Running

#: A function target that records each event's ``detail.n`` and event id, and holds back the
#: events whose ``detail.hold`` is true until the file ``GATE_FILE`` names exists (bounded).
SINK = """\
import json, os, time

def record(event):
    detail = event["detail"]
    if detail.get("hold"):
        deadline = time.monotonic() + 120
        while not os.path.exists(os.environ["GATE_FILE"]):
            if time.monotonic() > deadline:
                raise RuntimeError("gate never opened")
            time.sleep(0.02)
    with open(os.environ["SINK_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps({"n": detail.get("n"), "id": event["id"]}) + "\\n")

def fast(event):
    record({**event, "detail": {**event["detail"], "hold": False}})
"""


def sink_config(
    function: str = "record", *, drain_timeout: float = 30, extra: str = "", backend: str | None = "memory"
) -> str:
    # Memory unless asked: most of these tests are about what a process in memory abandons.
    where = f", backend: {backend}" if backend else ""
    return (
        f"runtime: {{python_path: ['.']{where}}}\n"
        f"defaults: {{bus: {{drain_timeout: {drain_timeout}}}}}\n"
        "buses:\n  orders:\n    rules:\n      all:\n        pattern: {source: [shop]}\n        targets:\n"
        f"          - function: {{function: 'sink:{function}'}}\n            max_concurrency: 1\n" + extra
    )


class Folder:
    """A config folder with the sink module, and the files the sink writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "sink.py").write_text(SINK, encoding="utf-8")
        self.sink = path / "sink.jsonl"
        self.gate = path / "gate"
        self.config = path / "orders.yaml"
        self.env = {"SINK_FILE": str(self.sink), "GATE_FILE": str(self.gate)}

    def write(self, text: str) -> None:
        self.config.write_text(text, encoding="utf-8")

    def records(self) -> list[dict[str, object]]:
        if not self.sink.exists():
            return []
        return [json.loads(line) for line in self.sink.read_text(encoding="utf-8").splitlines()]

    def numbers(self) -> list[int]:
        return sorted(int(str(r["n"])) for r in self.records())

    def run(self, *args: str) -> Running:
        return Running(*args, env=self.env)


def order(n: int, *, hold: bool = False) -> str:
    detail: dict[str, object] = {"n": n, "hold": True} if hold else {"n": n}
    return json.dumps({"source": "shop", "detail-type": "OrderPlaced", "detail": detail})


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def sync(run: Running, number: int) -> str:
    """Send line ``number``, one sure to be refused, and wait for its answer: the process has then
    dealt with every line before it (lines are taken in order)."""
    run.send(json.dumps({"sync": number}))
    return run.wait_for(f"stdin line {number}: ")


def rejections(lines: list[str]) -> dict[int, str]:
    """``{line number: reason}`` from ``stdin line N: reason`` status lines; a number twice fails."""
    found: dict[int, str] = {}
    for line in lines:
        match = re.match(r"eventbus: stdin line (\d+): (.*)", line)
        if match:
            number = int(match.group(1))
            assert number not in found, f"line {number} answered twice: {found[number]!r}, {match.group(2)!r}"
            found[number] = match.group(2)
    return found


# -- item 1: nothing a line holds stops the process -----------------------------------------

BAD_LINES = [
    json.dumps({"EventBusName": ["x"], "Source": "shop", "DetailType": "d", "Detail": "{}"}),
    json.dumps({"EventBusName": {"name": "orders"}, "Source": "shop", "DetailType": "d", "Detail": "{}"}),
    "[" * 1000 + "]" * 1000,
    '{"source": "shop", "detail-type": "d", "detail": ' + '{"a": ' * 995 + "1" + "}" * 995 + "}",
    json.dumps({"Source": "shop", "DetailType": "d", "Detail": '{"a": ' * 995 + "1" + "}" * 995}),
    '{"a": ' * 100_000,
    "[]",
    "not json",
    '[{"source": "shop", "detail-type": "d", "detail": {"n": 1000}}, 5]',
]


def test_no_stdin_line_stops_the_process(tmp_path: Path) -> None:
    folder = Folder(tmp_path)
    folder.write(sink_config())
    with folder.run("--stdin", str(folder.config)) as run:
        run.wait_for("running: orders")
        sent = 0
        for n in range(10):
            run.send(order(n))
            sent += 1
        bad_numbers = []
        for n, line in enumerate(BAD_LINES):
            run.send(line)
            bad_numbers.append(sent + 1)
            sent += 1
            run.send(order(10 + n))
            sent += 1
        run.close_stdin()
        summary = run.wait_for("stdin closed after")
        assert summary.endswith(
            f"stdin closed after {10 + len(BAD_LINES)} event(s) ({sent} line(s): {len(BAD_LINES)} rejected, 0 blank)"
        )
        wait_until(lambda: len(folder.records()) == 10 + len(BAD_LINES), "every good event delivered")
        assert run.stop() == 0
        run.wait_for("stopped")
    answered = rejections(run.seen)
    assert sorted(answered) == bad_numbers
    assert answered[bad_numbers[0]] == "not put: EventBusName must be a string, not list"
    assert answered[bad_numbers[2]] == "not valid JSON: nested too deeply"
    assert answered[bad_numbers[4]] == "not put: MalformedDetail: Detail is malformed."
    assert answered[bad_numbers[-1]] == "event 2: an event must be a JSON object, not int"
    assert folder.numbers() == list(range(10 + len(BAD_LINES)))
    assert not any("cannot run" in line or "Traceback" in line for line in run.seen)


# -- item 3: SIGTERM ends the run although stdin stays open ----------------------------------


def test_sigterm_ends_run_while_stdin_stays_open(tmp_path: Path) -> None:
    folder = Folder(tmp_path)
    folder.write(sink_config())
    with folder.run("--stdin", str(folder.config)) as run:
        run.wait_for("running: orders")
        run.send(order(1))
        wait_until(lambda: folder.numbers() == [1], "the event delivered")
        # stdin is never closed: the process must end on the signal alone.
        assert run.stop(timeout=30) == 0
        run.wait_for("stopped")
        assert any("stdin not read further after 1 event(s)" in line for line in run.seen)


# -- items 2 and 6: no edit stops a running bus -------------------------------------------------


def test_a_reload_that_fails_for_any_reason_keeps_the_running_config(tmp_path: Path) -> None:
    folder = Folder(tmp_path)
    folder.write(sink_config())
    (tmp_path / "raises.py").write_text("raise RuntimeError('boom at import')\n", encoding="utf-8")
    (tmp_path / "syntax.py").write_text("def broken(:\n", encoding="utf-8")
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(3)\n", encoding="utf-8")
    edits = [
        (sink_config().replace("sink:record", "raises:record"), "RuntimeError: boom at import"),
        (sink_config().replace("sink:record", "syntax:record"), "SyntaxError: invalid syntax (syntax.py, line 1)"),
        (sink_config().replace("sink:record", "exits:record"), "SystemExit: 3"),
        (sink_config().replace("sink:record", "sink:nothing"), "has no attribute 'nothing'"),
    ]
    with folder.run("--watch", "--stdin", str(folder.config)) as run:
        run.wait_for("running: orders")
        run.wait_for("watching")
        for n, (text, reason) in enumerate(edits):
            folder.write(text)
            assert reason in run.wait_for("function.function: ")
            run.wait_for("the changed config is not valid; the running config stays")
            run.send(order(n))
            wait_until(lambda n=n: folder.numbers() == list(range(n + 1)), f"event {n} delivered")
        folder.write(sink_config(function="fast"))
        run.wait_for("reloaded: orders")
        assert run.stop() == 0
    assert not any("Traceback" in line or "cannot run" in line for line in run.seen)


def test_watch_refuses_an_empty_or_half_saved_config(tmp_path: Path) -> None:
    folder = Folder(tmp_path)
    folder.write(sink_config())
    with folder.run("--watch", "--stdin", str(folder.config)) as run:
        run.wait_for("running: orders")
        run.wait_for("watching")
        for n, text in enumerate(["", "runtime: {python_path: ['.']}\n", "buses:\n"]):
            folder.write(text)
            line = run.wait_for("the running config stays")
            assert "(an empty or half-saved file?)" in line or "not valid" in line, line
            run.send(order(n))
            wait_until(lambda n=n: folder.numbers() == list(range(n + 1)), f"event {n} delivered")
        # Said explicitly, removing every bus is a reload like any other.
        folder.write("buses: {}\n")
        run.wait_for("reloaded: no buses")
        run.send(order(99))
        assert run.wait_for("stdin line 4:").endswith("not put: name the bus: the config declares 0 (none)")
        assert run.stop() == 0
    assert "empty or half-saved" in "\n".join(run.seen)
    assert folder.numbers() == [0, 1, 2]


# -- item 5: a reload drops nothing -----------------------------------------------------------


def test_a_reload_keeps_delivering_what_the_old_config_accepted(tmp_path: Path) -> None:
    folder = Folder(tmp_path)
    # A drain deadline far shorter than the held events take: the reload must not use it.
    folder.write(sink_config(drain_timeout=1))
    with folder.run("--watch", "--stdin", str(folder.config)) as run:
        run.wait_for("running: orders")
        run.wait_for("watching")
        for n in range(10):
            run.send(order(n, hold=True))
        sync(run, 11)
        folder.write(sink_config(function="fast", drain_timeout=1))
        run.wait_for("reloaded: orders")
        assert "goes on delivering 10 accepted event(s)" in run.wait_for("in the background")
        # The new config takes events at once, while the old one still holds its ten.
        run.send(order(100))
        wait_until(lambda: folder.numbers() == [100], "the new config's event delivered")
        folder.gate.touch()
        run.wait_for("the previous config delivered what it had accepted and stopped")
        assert folder.numbers() == [*range(10), 100]
        assert run.stop() == 0
        run.wait_for("stopped")
    assert not any("undelivered at shutdown" in line for line in run.seen)


def test_a_durable_reload_hands_over_through_the_state_file(tmp_path: Path) -> None:
    folder = Folder(tmp_path)
    # No backend named: eventbus run keeps the state in .eventbus/orders.db beside the config.
    folder.write(sink_config(drain_timeout=1, backend=None))
    with folder.run("--watch", "--stdin", str(folder.config)) as run:
        run.wait_for("running: orders")
        run.wait_for("watching")
        for n in range(10):
            run.send(order(n, hold=True))
        sync(run, 11)
        folder.write(sink_config(function="fast", drain_timeout=1, backend=None))
        run.wait_for("reloaded: orders")
        handed = run.wait_for("handed")
        assert "handed 10 pending delivery(ies) over through" in handed and ".eventbus/orders.db" in handed
        # The new config delivers what the old one held: none waits for the old one's gate.
        wait_until(lambda: set(folder.numbers()) == set(range(10)), "the handed-over events delivered")
        run.send(order(100))
        wait_until(lambda: 100 in folder.numbers(), "the new config's own event delivered")
        folder.gate.touch()  # the old config's delivery that was under way may finish too
        assert run.stop() == 0
        run.wait_for("stopped")
    assert (tmp_path / ".eventbus" / "orders.db").exists()
    assert not any("undelivered at shutdown" in line for line in run.seen)


# -- item 10: what a shutdown abandons is said, exactly ----------------------------------------


def abandoned_ids(path: Path) -> list[str]:
    return [json.loads(line)["event"]["id"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_second_signal_stops_at_once_and_names_what_it_abandons(tmp_path: Path) -> None:
    folder = Folder(tmp_path)
    folder.write(sink_config(drain_timeout=600))
    report = tmp_path / "left.jsonl"
    with folder.run("--stdin", "--abandoned", str(report), str(folder.config)) as run:
        run.wait_for("running: orders")
        for n in range(4):
            run.send(order(n))
        for n in range(4, 10):
            run.send(order(n, hold=True))
        sync(run, 11)
        wait_until(lambda: len(folder.records()) == 4, "the four events not held delivered")
        run.process.send_signal(signal.SIGTERM)
        run.wait_for("stopping: draining accepted events")
        run.process.send_signal(signal.SIGINT)
        assert run.process.wait(30) == 1
        line = run.wait_for("received again: stopping now;")
    assert line.endswith(f"SIGINT received again: stopping now; 6 accepted event(s) were not delivered; their ids and the events are in {report}")
    delivered = [str(r["id"]) for r in folder.records()]
    left = abandoned_ids(report)
    assert len(left) == 6 and not set(left) & set(delivered)
    assert sorted(json.loads(line)["event"]["detail"]["n"] for line in report.read_text().splitlines()) == list(range(4, 10))
    assert all(json.loads(line)["bus"] == "orders" for line in report.read_text().splitlines())


def test_a_drain_cut_short_reports_exactly_the_undelivered(tmp_path: Path) -> None:
    folder = Folder(tmp_path)
    folder.write(sink_config(drain_timeout=2))
    report = tmp_path / "left.jsonl"
    with folder.run("--stdin", "--abandoned", str(report), str(folder.config)) as run:
        run.wait_for("running: orders")
        for n in range(10):
            run.send(order(n, hold=n == 4))
        sync(run, 11)
        # Event 4 blocks the target (max_concurrency 1): 0-3 are delivered, 5-9 wait behind it.
        wait_until(lambda: len(folder.records()) == 4, "the events before the held one delivered")
        assert run.stop(timeout=60) == 1
        line = run.wait_for("stopped;")
        logged = next(line for line in run.seen if "undelivered at shutdown" in line)
    assert line.endswith(f"stopped; 6 accepted event(s) were not delivered; their ids and the events are in {report}")
    assert "events=6 " in logged + " "
    delivered = [str(r["id"]) for r in folder.records()]
    left = abandoned_ids(report)
    assert len(delivered) == 4 and len(left) == 6 and not set(left) & set(delivered)


def test_the_abandoned_file_defaults_to_a_new_file_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventbus.cli._runner import write_abandoned

    monkeypatch.chdir(tmp_path)
    event = {"id": "e-1", "source": "shop", "detail": {"n": 1}}
    written = write_abandoned(None, [("orders", event)])
    assert written is not None
    path = Path(written)
    assert path.parent == Path(".") and re.fullmatch(r"eventbus-abandoned-\d{8}-\d{6}-\d+\.jsonl", path.name)
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"bus": "orders", "event": event}]


# -- the property: every line is accounted for, and the process stays up ------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
ENTRY_KEYS = ["Source", "DetailType", "Detail", "EventBusName", "Resources", "Time", "source", "detail-type", "detail"]


def deep(depth: int, kind: str) -> str:
    """JSON nested ``depth`` deep: a bare array or object, or an event's detail."""
    if kind == "array":
        return "[" * depth + "]" * depth
    nested = '{"a": ' * depth + "1" + "}" * depth
    if kind == "object":
        return nested
    return '{"source": "shop", "detail-type": "d", "detail": ' + nested + "}"


#: (bytes of the line, marker of a valid event or None).
LINE = st.one_of(
    st.uuids().map(lambda u: (order_line(str(u)), str(u))),
    st.text(max_size=80).map(lambda t: (t.replace("\n", " ").encode("utf-8", "surrogatepass"), None)),
    st.binary(max_size=80).map(lambda b: (b.replace(b"\n", b" "), None)),
    JSON_VALUES.map(lambda v: (json.dumps(v).encode(), None)),
    st.dictionaries(st.sampled_from(ENTRY_KEYS), JSON_VALUES, max_size=5).map(lambda d: (json.dumps(d).encode(), None)),
    st.tuples(st.integers(1, 5000), st.sampled_from(["array", "object", "detail"])).map(
        lambda t: (deep(*t).encode(), None)
    ),
)


def order_line(marker: str) -> bytes:
    return json.dumps({"source": "shop", "detail-type": "Probe", "detail": {"marker": marker}}).encode()


def is_blank(raw: bytes) -> bool:
    try:
        return not raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False


class Probe:
    """Lines sent so far and how each was answered, against one long-running process."""

    def __init__(self, run: Running, sink: Path) -> None:
        self.run = run
        self.sink = sink
        self.sent = 0
        self.blank = 0
        self.rejected: dict[int, str] = {}
        self.markers: set[str] = set()
        #: Lines neither blank nor rejected: each put one event at least.
        self.accepted_lines = 0

    def check(self, lines: list[tuple[bytes, str | None]]) -> None:
        assert self.run.process.poll() is None, "the process ended"
        first = self.sent + 1
        stdin = self.run.process.stdin
        assert stdin is not None
        stdin.flush()
        stdin.buffer.write(b"".join(raw + b"\n" for raw, _ in lines))
        stdin.buffer.flush()
        self.sent += len(lines)
        self.sent += 1
        before = len(self.run.seen)
        sync(self.run, self.sent)
        answered = rejections(self.run.seen[before:])
        assert "sync" in answered.pop(self.sent)
        assert all(first <= n < self.sent for n in answered), answered
        assert not set(answered) & set(self.rejected), "a line answered twice"
        self.rejected.update(answered)
        self.rejected[self.sent] = "sync"
        for number, (raw, marker) in enumerate(lines, first):
            if marker is not None:
                assert number not in answered, (raw, answered[number])
                self.markers.add(marker)
            if is_blank(raw):
                assert number not in answered
                self.blank += 1
            elif number not in answered:
                self.accepted_lines += 1

    def finish(self) -> None:
        self.run.close_stdin()
        summary = self.run.wait_for("stdin closed after")
        match = re.search(r"after (\d+) event\(s\) \((\d+) line\(s\): (\d+) rejected, (\d+) blank\)$", summary)
        assert match, summary
        events, lines, rejected, blank = map(int, match.groups())
        assert (lines, rejected, blank) == (self.sent, len(self.rejected), self.blank)
        assert events >= self.accepted_lines
        # Every accepted event reaches the sink, the probes among them.
        wait_until(lambda: self.sink.exists() and len(self.sink.read_text().splitlines()) >= events, "all delivered")
        delivered = self.sink.read_text().splitlines()
        assert len(delivered) == events
        # Read as text: an accepted event may be nested deeper than this test's stack can parse.
        assert self.markers <= set(re.findall(r'"marker":\s*"([0-9a-f-]{36})"', "\n".join(delivered)))
        assert self.run.stop() == 0


def test_every_stdin_line_ends_accepted_or_answered_and_the_process_stays_up(tmp_path: Path) -> None:
    sink = tmp_path / "all.jsonl"
    config = tmp_path / "fuzz.yaml"
    config.write_text(
        "buses:\n  fuzz:\n    rules:\n      everything:\n        pattern: {version: ['0']}\n        targets:\n"
        f"          - file: {{path: '{sink}'}}\n            retry_policy: {{MaximumRetryAttempts: 0}}\n",
        encoding="utf-8",
    )
    with Running("--stdin", str(config)) as run:
        run.wait_for("running: fuzz")
        probe = Probe(run, sink)

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(st.lists(LINE, min_size=1, max_size=8))
        def lines_are_accounted_for(lines: list[tuple[bytes, str | None]]) -> None:
            probe.check(lines)

        lines_are_accounted_for()
        probe.finish()
    assert not any("Traceback" in line or "cannot run" in line for line in run.seen)

