"""The console over plain HTTP: its headers, who gets in, CSRF refusals, escaping, the WebSocket
tail's guards and bounds (the browser tests are in test_browser.py)."""

from __future__ import annotations

import json
import re
import socket as socket_module
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.server.helpers import LiveServer

API_KEY = "console-test-api-key"
ACCESS_KEY = "AKIDCONSOLETEST"
SECRET_KEY = "console-test-secret-not-real"

GUARDED = f"""
server:
  credentials:
    - {{access_key_id: {ACCESS_KEY}, secret_access_key: {SECRET_KEY}}}
  api_keys: ["{API_KEY}"]
buses:
  guarded:
    rules:
      placed:
        pattern: {{source: [shop]}}
        targets:
          - recording: {{name: console-guarded}}
"""

SCRIPT = "<script>window.__pwned = 1</script>\"'><img src=x onerror=\"window.__pwned = 2\">"


def csrf_of(page: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page)
    assert found, "the page carries its CSRF token"
    return found.group(1)


def put(served: Any, detail: dict[str, Any], *, detail_type: str = "OrderPlaced", bus: str = "orders") -> str:
    answer = served.client("events").put_events(
        Entries=[{"Source": "shop", "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": bus}]
    )
    assert answer["FailedEntryCount"] == 0, answer
    return str(answer["Entries"][0]["EventId"])


def wait_until(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"waited {timeout:g} s for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``eventbus serve`` in a process of its own, with credentials (one process holds one
    ``default`` bus: the other server is in this one)."""
    folder = tmp_path_factory.mktemp("guarded")
    config = folder / "orders.yaml"
    config.write_text(GUARDED, encoding="utf-8")
    server = LiveServer([config], cwd=folder)
    yield server
    assert server.stop() == 0, "\n".join(server.lines)


# -- headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/console/", "/console/sandbox", "/console/api/topology", "/console/static/console.js", "/console/login"])
def test_every_response_sends_a_strict_content_security_policy(served: Any, path: str) -> None:
    answer = httpx.get(served.url + path)
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script, no other origin
    assert "unsafe" not in policy and "*" not in policy
    assert directives["frame-ancestors"] == "'none'" and directives["form-action"] == "'self'"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"


def test_pages_load_scripts_only_from_the_package(served: Any) -> None:
    page = httpx.get(served.url + "/console/").text
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts == ['<script src="/console/static/console.js" defer>']
    assert "<script>" not in page and " on" not in re.sub(r"<[^>]*>", "", "") and "javascript:" not in page
    assert not re.search(r"<[^>]+\son\w+=", page)  # no inline event handlers
    assert not re.search(r"https?://(?!www\.w3\.org)", page)  # nothing from another site


# -- escaping ------------------------------------------------------------------------------------


def test_a_value_from_an_event_is_escaped_wherever_it_is_shown(served: Any) -> None:
    put(served, {"order": SCRIPT, "total": 1})
    client = httpx.Client(base_url=served.url)
    page = wait_until(
        lambda: (p := client.get("/console/rules/orders/placed").text) and "&lt;script&gt;" in p and p,
        "the event on the rule's page",
    )
    assert "<script>window" not in page and "<img src=x" not in page
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page or "&lt;script&gt;" in page
    sandbox = client.get("/console/sandbox").text
    token = csrf_of(sandbox)
    answer = client.post(
        "/console/sandbox",
        data={"csrf_token": token, "test": "pattern", "event": json.dumps({"source": SCRIPT}), "pattern": '{"source": ["shop"]}'},
        headers={"accept": "text/html"},
    )
    assert answer.status_code == 200
    assert "<script>window" not in answer.text and "&lt;script&gt;window.__pwned" in answer.text
    assert "&#34;" in answer.text or "&quot;" in answer.text  # quotes too


# -- CSRF ----------------------------------------------------------------------------------------


def test_an_action_without_the_forms_csrf_token_is_refused(served: Any) -> None:
    client = httpx.Client(base_url=served.url)
    token = csrf_of(client.get("/console/rules").text)
    bus = served.server.state.buses.get("orders")
    for data in ({"state": "DISABLED"}, {"state": "DISABLED", "csrf_token": "0" * 64}):
        refused = client.post("/console/rules/orders/big/state", data=data)
        assert refused.status_code == 403 and "reload the page" in refused.json()["error"]
    # A token from another browser's session is no good either.
    other = httpx.Client(base_url=served.url)
    other_token = csrf_of(other.get("/console/rules").text)
    assert other_token != token
    assert client.post("/console/rules/orders/big/state", data={"state": "DISABLED", "csrf_token": other_token}).status_code == 403
    assert bus.describe_rule("big").state == "ENABLED"
    accepted = client.post("/console/rules/orders/big/state", data={"state": "DISABLED", "csrf_token": token})
    assert accepted.status_code == 200 and accepted.json()["state"] == "DISABLED"
    assert bus.describe_rule("big").state == "DISABLED"
    client.post("/console/rules/orders/big/state", data={"state": "ENABLED", "csrf_token": token})
    assert bus.describe_rule("big").state == "ENABLED"


def test_a_rule_made_through_the_api_is_switched_as_disable_rule_would(served: Any) -> None:
    events = served.client("events")
    events.put_rule(Name="from-api", EventBusName="orders", EventPattern='{"source": ["api"]}')
    client = httpx.Client(base_url=served.url)
    token = csrf_of(client.get("/console/rules").text)
    answer = client.post("/console/rules/orders/from-api/state", data={"state": "DISABLED", "csrf_token": token})
    assert answer.status_code == 200
    assert events.describe_rule(Name="from-api", EventBusName="orders")["State"] == "DISABLED"
    # The server's store keeps the state, as it keeps DisableRule's.
    stored = served.server.state.store.load("rule")["orders/from-api"]
    assert stored["State"] == "DISABLED"
    missing = client.post("/console/rules/orders/nowhere/state", data={"state": "ENABLED", "csrf_token": token})
    assert missing.status_code == 400 and missing.json()["code"] == "ResourceNotFoundException"
    events.delete_rule(Name="from-api", EventBusName="orders")


def test_an_action_from_another_site_is_refused_even_with_a_token(served: Any) -> None:
    client = httpx.Client(base_url=served.url)
    token = csrf_of(client.get("/console/rules").text)
    data = {"state": "DISABLED", "csrf_token": token}
    for headers in ({"origin": "http://evil.example"}, {"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"}):
        refused = client.post("/console/rules/orders/big/state", data=data, headers=headers)
        assert refused.status_code == 403 and "console's own pages" in refused.json()["error"]
    assert served.server.state.buses.get("orders").describe_rule("big").state == "ENABLED"


def test_the_sign_in_form_needs_its_token_too(guarded: Any) -> None:
    client = httpx.Client(base_url=guarded.url)
    client.get("/console/login")
    refused = client.post("/console/login", data={"api_key": API_KEY})
    assert refused.status_code == 403
    assert client.get("/console/rules").status_code == 303  # still not signed in


def test_a_body_over_the_servers_limit_is_refused_unread(served: Any) -> None:
    client = httpx.Client(base_url=served.url)
    token = csrf_of(client.get("/console/sandbox").text)
    limit = served.server.settings.max_body_bytes
    answer = client.post("/console/sandbox", data={"csrf_token": token, "test": "pattern", "event": "x" * limit, "pattern": "{}"})
    assert answer.status_code == 413 and str(limit) in answer.json()["error"]


# -- who gets in ------------------------------------------------------------------------------------


def test_a_server_with_credentials_sends_browsers_to_sign_in(guarded: Any) -> None:
    client = httpx.Client(base_url=guarded.url)
    answer = client.get("/console/rules?x=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?next=%2Fconsole%2Frules%3Fx%3D1"
    assert client.get("/console/api/topology").status_code == 401
    login = client.get("/console/login")
    assert login.status_code == 200 and 'name="api_key"' in login.text


@pytest.mark.parametrize(
    "fields",
    [{"api_key": API_KEY}, {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}],
    ids=["api-key", "access-key"],
)
def test_signing_in_with_a_credential_the_api_takes(guarded: Any, fields: dict[str, str]) -> None:
    client = httpx.Client(base_url=guarded.url)
    token = csrf_of(client.get("/console/login").text)
    answer = client.post("/console/login", data={"csrf_token": token, "next": "/console/rules", **fields})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/rules"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert client.get("/console/rules").status_code == 200
    assert client.get("/console/api/topology").status_code == 200
    # Signing out ends it.
    token = csrf_of(client.get("/console/rules").text)
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/console/rules").status_code == 303


@pytest.mark.parametrize(
    "fields",
    [{"api_key": "wrong"}, {"access_key_id": ACCESS_KEY, "secret_access_key": "wrong"}, {"access_key_id": "AKIDNOBODY", "secret_access_key": SECRET_KEY}],
    ids=["api-key", "secret", "access-key-id"],
)
def test_a_wrong_credential_does_not_sign_in(guarded: Any, fields: dict[str, str]) -> None:
    client = httpx.Client(base_url=guarded.url)
    token = csrf_of(client.get("/console/login").text)
    answer = client.post("/console/login", data={"csrf_token": token, **fields})
    assert answer.status_code == 403 and "not a credential this server accepts" in answer.text
    assert SECRET_KEY not in answer.text and API_KEY not in answer.text
    assert client.get("/console/rules").status_code == 303


def test_a_forged_or_stale_session_cookie_is_ignored(guarded: Any) -> None:
    client = httpx.Client(base_url=guarded.url)
    token = csrf_of(client.get("/console/login").text)
    client.post("/console/login", data={"csrf_token": token, "api_key": API_KEY})
    value = client.cookies["eventbus_console"]
    sid, _, expires, signature = value.split(".")
    stranger = httpx.Client(base_url=guarded.url)
    stranger.get("/console/login")
    s_sid, s_in, s_expires, s_signature = stranger.cookies["eventbus_console"].split(".")
    assert s_in == "0"
    forgeries = (
        f"{s_sid}.1.{s_expires}.{s_signature}",  # "signed in" written into a stranger's cookie
        f"{sid}.1.{int(expires) + 999}.{signature}",
        f"{sid}.1.{expires}.{'0' * 64}",
        "garbage",
    )
    for forged in forgeries:
        other = httpx.Client(base_url=guarded.url, cookies={"eventbus_console": forged})
        assert other.get("/console/rules").status_code == 303


def test_scripts_may_send_the_apis_own_credentials_instead(guarded: Any) -> None:
    bearer = {"authorization": f"Bearer {API_KEY}"}
    assert httpx.get(guarded.url + "/console/api/topology", headers=bearer).status_code == 200
    wrong = httpx.get(guarded.url + "/console/api/topology", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 403
    # An Authorization header is something no other site can make a browser send: no CSRF token.
    answer = httpx.post(
        guarded.url + "/console/sandbox",
        data={"test": "pattern", "event": '{"source": "shop"}', "pattern": '{"source": ["shop"]}'},
        headers=bearer,
    )
    assert answer.status_code == 200 and answer.json() == {"matched": True, "error": None, "explanation": []}


# -- the sandbox ---------------------------------------------------------------------------------------


def sandbox(served: Any, **data: str) -> dict[str, Any]:
    client = httpx.Client(base_url=served.url)
    token = csrf_of(client.get("/console/sandbox").text)
    answer = client.post("/console/sandbox", data={"csrf_token": token, **data}, headers={"accept": "application/json"})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_the_sandbox_answers_as_the_library_does(served: Any) -> None:
    from eventbus import Pattern, PatternError, TargetInput

    event = {"source": "shop", "detail": {"total": 42, "order": "o-1"}}
    assert sandbox(served, test="pattern", event=json.dumps(event), pattern='{"source": ["shop"]}')["matched"] is True
    miss = sandbox(served, test="pattern", event=json.dumps(event), pattern='{"detail": {"total": [{"numeric": [">", 100]}]}}')
    assert miss["matched"] is False
    assert miss["explanation"] == Pattern({"detail": {"total": [{"numeric": [">", 100]}]}}).explain(event)
    bad = sandbox(served, test="pattern", event=json.dumps(event), pattern='{"source": "shop"}')
    with pytest.raises(PatternError) as info:
        Pattern('{"source": "shop"}')
    assert bad["matched"] is None and bad["error"] == str(info.value)
    transformer = {"InputPathsMap": {"o": "$.detail.order"}, "InputTemplate": '{"order": <o>}'}
    rendered = sandbox(served, test="transform", event=json.dumps(event), transformer=json.dumps(transformer))
    assert rendered == {"output": TargetInput("t", input_transformer=transformer).render(event, rule_name="x", rule_arn="y"), "error": None}
    invalid = {"InputPathsMap": {"aws.events.rule-name": "$.detail"}, "InputTemplate": "<x>"}
    refused = sandbox(served, test="transform", event=json.dumps(event), transformer=json.dumps(invalid))
    with pytest.raises(ValueError) as problem:
        TargetInput("console-sandbox", input_transformer=invalid)
    assert refused == {"output": None, "error": str(problem.value)}


# -- the live tail's WebSocket ------------------------------------------------------------------------


def ws_url(served: Any, query: str = "") -> str:
    return served.url.replace("http://", "ws://") + "/console/ws/tail" + query


def messages(socket: Any, until: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not until(got):
        left = deadline - time.monotonic()
        assert left > 0, f"waited {timeout:g} s; got {[m['type'] for m in got]}"
        try:
            got.append(json.loads(socket.recv(timeout=left)))
        except TimeoutError:
            continue
    return got


def test_the_tail_sends_routed_events_with_their_rules_inputs_and_outcomes(served: Any) -> None:
    with connect(ws_url(served, "?bus=orders"), open_timeout=30) as socket:
        hello = messages(socket, lambda got: got)[0]
        assert hello == {"type": "hello", "buses": ["orders"], "max_rows": 300}
        event_id = put(served, {"order": "o-7", "total": 150})
        got = messages(
            socket,
            lambda got: sum(1 for m in got if m["type"] == "outcome" and m["id"] == event_id and m["kind"] == "delivered") == 3,
        )
    [event] = [m for m in got if m["type"] == "event" and m["id"] == event_id]
    assert sorted(event["rules"]) == ["big", "placed"]
    inputs = {(i["rule"], i["target"]): i for i in event["inputs"]}
    assert json.loads(inputs[("placed", "summary")]["payload"]) == {"order": "o-7", "total": 150}
    assert json.loads(inputs[("placed", "audit")]["payload"])["id"] == event_id
    assert json.loads(event["event"])["detail"] == {"order": "o-7", "total": 150}
    assert got.index(event) < min(i for i, m in enumerate(got) if m["type"] == "outcome")


def test_the_tail_filters_by_a_pattern_and_names_an_invalid_one(served: Any) -> None:
    with connect(ws_url(served), open_timeout=30) as socket:
        messages(socket, lambda got: got)
        socket.send(json.dumps({"type": "filter", "pattern": '{"detail": {"total": [{"numeric": ["<"]}]}}'}))
        [refused] = messages(socket, lambda got: got)
        assert refused["type"] == "filter" and refused["ok"] is False
        assert "numeric" in refused["error"].lower()
        socket.send(json.dumps({"type": "filter", "pattern": '{"detail": {"order": ["wanted"]}}'}))
        assert messages(socket, lambda got: got)[0]["ok"] is True
        put(served, {"order": "unwanted", "total": 1})
        wanted = put(served, {"order": "wanted", "total": 1})
        got = messages(socket, lambda got: any(m["type"] == "event" for m in got))
    assert [m["id"] for m in got if m["type"] == "event"] == [wanted]


def test_the_tail_refuses_another_sites_page_and_a_stranger(served: Any, guarded: Any) -> None:
    with connect(ws_url(served), origin="http://evil.example", open_timeout=30) as socket, pytest.raises(ConnectionClosed) as info:  # type: ignore[arg-type]
        socket.recv(timeout=30)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    with connect(ws_url(guarded), open_timeout=30) as socket, pytest.raises(ConnectionClosed) as info:
        socket.recv(timeout=30)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    with connect(ws_url(guarded), additional_headers={"Authorization": f"Bearer {API_KEY}"}, open_timeout=30) as socket:
        assert json.loads(socket.recv(timeout=30))["type"] == "hello"


def test_a_page_that_does_not_read_never_slows_the_bus_and_is_told_what_it_lost(served: Any) -> None:
    console = served.server.app.state.console
    console.tail.max_queued = 20
    bus = served.server.state.buses.get("orders")
    delivered_before = console.watch.target_counts("orders", "placed/audit")["delivered"]
    big = "x" * 150_000
    events = 40
    # A small receive buffer: what the page does not read piles up on the server's side.
    host, port = served.url.removeprefix("http://").split(":")
    sock = socket_module.socket(socket_module.AF_INET, socket_module.SOCK_STREAM)
    sock.setsockopt(socket_module.SOL_SOCKET, socket_module.SO_RCVBUF, 32_768)
    sock.settimeout(30)
    sock.connect((host, int(port)))
    try:
        with connect(
            ws_url(served, "?bus=orders"), sock=sock, open_timeout=30, close_timeout=1, max_size=None, max_queue=1, compression=None
        ) as socket:
            messages(socket, lambda got: got)  # hello: from here on this client reads nothing
            for n in range(events // 2):
                served.client("events").put_events(
                    Entries=[
                        {"Source": "shop", "DetailType": "OrderPlaced", "Detail": json.dumps({"n": n, "i": i, "pad": big}), "EventBusName": "orders"}
                        for i in range(2)
                    ]
                )
            # Every event is delivered while the page reads nothing.
            wait_until(
                lambda: console.watch.target_counts("orders", "placed/audit")["delivered"] - delivered_before == events
                and bus.pending() == 0,
                "the bus to deliver every event",
            )
            got = messages(socket, lambda got: any(m["type"] == "lost" for m in got))
    finally:
        console.tail.max_queued = 1_000
    lost = sum(m["count"] for m in got if m["type"] == "lost")
    assert lost > 0
    assert len([m for m in got if m["type"] == "event"]) < events


def test_static_files_ship_in_the_package() -> None:
    import eventbus.console

    folder = Path(eventbus.console.__file__).parent
    for name in ("static/console.js", "static/console.css", "static/favicon.svg", "templates/base.html"):
        assert (folder / name).is_file(), name
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"eventbus.console" = ["templates/*.html", "static/*.js", "static/*.css", "static/*.svg"]' in pyproject


def test_the_docs_show_every_page_the_browser_tests_photograph() -> None:
    root = Path(__file__).resolve().parents[2]
    page = (root / "docs" / "console.md").read_text(encoding="utf-8")
    shown = re.findall(r"!\[[^\]]+\]\((console/[\w-]+\.png)\)", page)
    taken = set(re.findall(r'shots / "([\w-]+\.png)"', (Path(__file__).parent / "test_browser.py").read_text(encoding="utf-8")))
    assert {s.removeprefix("console/") for s in shown} == taken
    for name in shown:
        data = (root / "docs" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
