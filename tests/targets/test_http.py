from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus.bus import ManualClock
from eventbus.errors import (
    ConfigError,
    NonRetryableError,
    ResourceNotFoundError,
    RetryableError,
    TargetPermissionError,
    TargetTimeoutError,
    ThrottledError,
)
from eventbus.targets.base import DeliveryContext
from eventbus.targets.connection import ApiKeyAuth, BasicAuth, Connection, OAuthClientCredentials, Parameter
from eventbus.targets.http import HttpTarget, HttpTargetConfig, RateLimiter, parse_retry_after
from eventbus.targets.registry import build_target

from .http_app import ApiApp, free_port

pytestmark = pytest.mark.anyio

RULE = DeliveryContext(kind="rule")
PIPE = DeliveryContext(kind="pipe")
EVENT = '{"source":"app","detail-type":"T","detail":{"n":1}}'

START = ManualClock().now()

API_KEY = "api-key-value-secret-123"
PASSWORD = "basic-password-secret-456"
QUERY_SECRET = "query-secret-789"


async def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait (bounded, generously: the condition is expected to hold soon) until ``check()``."""
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0.005)


@pytest.fixture
def api(asgi_server: Callable[[Any], str]) -> tuple[ApiApp, str]:
    app = ApiApp()
    return app, asgi_server(app)


async def test_post_with_headers_and_json_response(api: tuple[ApiApp, str]) -> None:
    app, base = api
    target = HttpTarget.create(f"{base}/api/orders")
    result = await target.deliver([EVENT, EVENT], RULE)
    assert result == [{"path": "/api/orders", "query": {}, "method": "POST", "body": json.loads(EVENT)}] * 2
    seen = app.requests[0]
    assert seen.headers["user-agent"] == "Amazon/EventBridge/ApiDestinations"
    assert seen.headers["content-type"] == "application/json; charset=utf-8"
    assert seen.body == EVENT.encode()
    await target.aclose()


async def test_pipe_batch_is_one_request_with_an_array(api: tuple[ApiApp, str]) -> None:
    app, base = api
    target = HttpTarget.create(f"{base}/text")
    assert await target.deliver(['{"a":1}', '{"b":2}'], PIPE) == "plain text"
    assert len(app.requests) == 1 and app.requests[0].json() == [{"a": 1}, {"b": 2}]
    await target.aclose()


async def test_path_and_query_parameters_connection_wins(api: tuple[ApiApp, str]) -> None:
    app, base = api
    connection = Connection(
        auth=ApiKeyAuth(api_key_name="x-api-key", api_key_value=API_KEY),
        invocation_http_parameters={
            "header_parameters": {"x-team": "from-connection"},
            "query_string_parameters": {"region": "eu", "token": Parameter(value=QUERY_SECRET)},
            "body_parameters": {"source": "overridden"},
        },
    )
    target = build_target(
        "http",
        {
            "endpoint": f"{base}/api/*/items/*",
            "http_method": "PUT",
            "path_parameter_values": ["a b", "42/x"],
            "header_parameters": {"X-Team": "from-target", "x-only-target": "1"},
            "query_string_parameters": {"region": "us", "page": "2"},
            "connection": connection.model_dump(mode="python"),
        },
    )
    out = await target.deliver([EVENT], RULE)
    seen = app.requests[0]
    assert seen.method == "PUT"
    assert seen.path == "/api/a b/items/42/x"  # decoded by the server; sent as %20 and %2F
    assert seen.query == {"region": "eu", "page": "2", "token": QUERY_SECRET}
    assert seen.headers["x-team"] == "from-connection"
    assert [k for k, _ in seen.raw_headers].count("x-team") == 1
    assert seen.headers["x-only-target"] == "1"
    assert seen.headers["x-api-key"] == API_KEY
    assert out[0]["body"]["source"] == "overridden"
    await target.aclose()


def test_path_parameter_count_must_match() -> None:
    with pytest.raises(ConfigError, match=r"endpoint has 2 path parameter\(s\)"):
        build_target("http", {"endpoint": "http://127.0.0.1/a/*/b/*", "path_parameter_values": ["x"]})
    with pytest.raises(ConfigError, match="endpoint"):
        build_target("http", {"endpoint": "ftp://127.0.0.1/"})


async def test_basic_auth(api: tuple[ApiApp, str]) -> None:
    app, base = api
    target = HttpTarget.create(
        f"{base}/api", connection=Connection(auth=BasicAuth(username="u", password=PASSWORD))
    )
    await target.deliver([EVENT], RULE)
    import base64

    assert app.requests[0].headers["authorization"] == "Basic " + base64.b64encode(
        f"u:{PASSWORD}".encode()
    ).decode()
    await target.aclose()


def _oauth(base: str, app: ApiApp, secret: str | None = None) -> Connection:
    return Connection(
        name="oauth",
        auth=OAuthClientCredentials(
            authorization_endpoint=f"{base}/token",
            client_id=app.client_id,
            client_secret=secret or app.client_secret,
            oauth_http_parameters={"body_parameters": {"scope": "events"}},
        ),
    )


async def test_oauth_token_is_fetched_once_and_cached(api: tuple[ApiApp, str]) -> None:
    app, base = api
    target = HttpTarget.create(f"{base}/api", connection=_oauth(base, app))
    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(target.deliver, [EVENT], RULE)
    assert app.token_fetches == 1
    token_request = app.token_requests[0]
    assert token_request.method == "POST"
    assert b"grant_type=client_credentials" in token_request.body and b"scope=events" in token_request.body
    assert {r.headers["authorization"] for r in app.requests} == {"Bearer token-1"}
    await target.aclose()


async def test_expired_token_gets_401_then_refresh(api: tuple[ApiApp, str]) -> None:
    app, base = api
    app.token_lifetime = None  # no expires_in: only a 401 tells the target to refresh
    target = HttpTarget.create(f"{base}/api", connection=_oauth(base, app))
    await target.deliver([EVENT], RULE)
    app.revoke_tokens()
    result = await target.deliver([EVENT], RULE)
    assert result[0]["path"] == "/api"
    assert app.token_fetches == 2
    assert [r.headers["authorization"] for r in app.requests] == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]
    await target.aclose()


async def test_concurrent_401s_share_one_refresh(api: tuple[ApiApp, str]) -> None:
    app, base = api
    app.token_lifetime = None
    target = HttpTarget.create(f"{base}/api", connection=_oauth(base, app))
    await target.deliver([EVENT], RULE)
    app.revoke_tokens()
    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(target.deliver, [EVENT], RULE)
    assert app.token_fetches == 2
    await target.aclose()


async def test_proxy_auth_407_also_refreshes(api: tuple[ApiApp, str]) -> None:
    app, base = api
    target = HttpTarget.create(f"{base}/api", connection=_oauth(base, app))
    app.scripted = [(407, {}, "{}")]
    await target.deliver([EVENT], RULE)
    assert app.token_fetches == 2
    await target.aclose()


@pytest.mark.parametrize(("lifetime", "margin"), [(3600, 30), (100, 10)])
async def test_token_lifetime_is_honoured(api: tuple[ApiApp, str], lifetime: int, margin: int) -> None:
    # The target renews a token 30 s before it expires, or at 90% of its life if that is shorter.
    app, base = api
    clock = ManualClock()
    app.now = lambda: clock.now().timestamp()
    app.token_lifetime = lifetime
    target = HttpTarget.create(
        f"{base}/api", connection=_oauth(base, app), clock=clock, invocation_rate_limit_per_second=None
    )
    await target.deliver([EVENT], RULE)
    clock.advance(lifetime - margin - 0.001)
    await target.deliver([EVENT], RULE)
    assert app.token_fetches == 1  # still within its life, less the margin
    clock.advance(0.001)
    await target.deliver([EVENT], RULE)
    assert app.token_fetches == 2
    assert [r.headers["authorization"] for r in app.requests] == ["Bearer token-1"] * 2 + ["Bearer token-2"]
    # No 401 round trip: the token was renewed before it expired.
    await target.aclose()


async def test_wrong_client_secret_is_a_permission_error(api: tuple[ApiApp, str]) -> None:
    app, base = api
    target = HttpTarget.create(f"{base}/api", connection=_oauth(base, app, secret="wrong-secret-000"))
    with pytest.raises(TargetPermissionError, match="refused the credentials") as info:
        await target.deliver([EVENT], RULE)
    assert "wrong-secret-000" not in str(info.value)
    await target.aclose()


@pytest.mark.parametrize(
    ("status", "headers", "error", "code", "retry_after"),
    [
        (429, {"Retry-After": "7"}, ThrottledError, "THROTTLING", 7.0),
        (503, {"Retry-After": "2"}, RetryableError, "SDK_CLIENT_ERROR", 2.0),
        (500, {}, RetryableError, "SDK_CLIENT_ERROR", None),
        (400, {}, NonRetryableError, "SDK_CLIENT_ERROR", None),
        (403, {}, TargetPermissionError, "NO_PERMISSIONS", None),
        (404, {}, ResourceNotFoundError, "NO_RESOURCE", None),
        (409, {}, NonRetryableError, "SDK_CLIENT_ERROR", None),
    ],
)
async def test_status_classification(
    api: tuple[ApiApp, str],
    status: int,
    headers: dict[str, str],
    error: type[Exception],
    code: str,
    retry_after: float | None,
) -> None:
    app, base = api
    app.scripted = [(status, headers, '{"why":"scripted"}')]
    target = HttpTarget.create(f"{base}/api")
    with pytest.raises(error) as info:
        await target.deliver([EVENT], RULE)
    assert type(info.value) is error
    assert info.value.error_code == code  # type: ignore[attr-defined]
    assert info.value.retry_after == retry_after  # type: ignore[attr-defined]
    assert f"answered {status}" in str(info.value) and "scripted" in str(info.value)
    await target.aclose()


async def test_retry_after_as_http_date(api: tuple[ApiApp, str]) -> None:
    app, base = api
    when = datetime.now(UTC) + timedelta(seconds=30)
    app.scripted = [(429, {"Retry-After": format_datetime(when, usegmt=True)}, "")]
    target = HttpTarget.create(f"{base}/api")
    with pytest.raises(ThrottledError) as info:
        await target.deliver([EVENT], RULE)
    # Counted from the moment the answer was read: some of the 30 s went by on the way.
    assert info.value.retry_after is not None and 0 < info.value.retry_after <= 30
    await target.aclose()


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after("-5") == 0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past
    now = datetime(2015, 10, 21, 7, 27, 30, tzinfo=UTC)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 30
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


async def test_timeout_and_unreachable(api: tuple[ApiApp, str]) -> None:
    _app, base = api
    target = HttpTarget.create(f"{base}/slow?seconds=0.6", timeout=0.2)
    with pytest.raises(TargetTimeoutError, match=r"timed out after 0\.2 seconds"):
        await target.deliver([EVENT], RULE)
    await target.aclose()
    closed = HttpTarget.create(f"http://127.0.0.1:{free_port()}/api")
    with pytest.raises(RetryableError, match="ConnectError"):
        await closed.deliver([EVENT], RULE)
    await closed.aclose()


async def test_rate_limiter_hands_out_slots_one_interval_apart() -> None:
    clock = ManualClock()
    limiter = RateLimiter(20, clock=clock)  # a slot every 50 ms
    granted: list[float] = []

    async def call(n: int) -> None:
        await limiter.acquire()
        granted.append((clock.now() - START).total_seconds())

    async with anyio.create_task_group() as tg:
        for n in range(4):
            tg.start_soon(call, n)
        await anyio.wait_all_tasks_blocked()
        assert granted == [0.0]  # the others wait for their slots, none is dropped
        clock.advance(0.049)
        await anyio.wait_all_tasks_blocked()
        assert granted == [0.0]
        clock.advance(0.001)
        await anyio.wait_all_tasks_blocked()
        assert granted == [0.0, 0.05]
        clock.advance(1)  # late: both remaining slots are due at once
    assert granted == [0.0, 0.05, 1.05, 1.05]
    async with anyio.create_task_group() as tg:
        tg.start_soon(call, 4)  # the clock is past every slot handed out: due at once
        tg.start_soon(call, 5)  # and the next one interval later
        await anyio.wait_all_tasks_blocked()
        assert granted[4:] == [1.05]
        clock.advance(0.05)
    assert granted[4:] == [1.05, 1.1]


async def test_rate_limit_delays_but_delivers_everything(api: tuple[ApiApp, str]) -> None:
    app, base = api
    calls, rate = 12, 20
    clock = ManualClock()
    app.now = lambda: (clock.now() - START).total_seconds()
    target = HttpTarget.create(f"{base}/api", invocation_rate_limit_per_second=rate, clock=clock)
    async with anyio.create_task_group() as tg:
        for _ in range(calls):
            tg.start_soon(target.deliver, [EVENT], RULE)
        for sent in range(1, calls + 1):
            # Each request is sent only once the clock reaches its slot: wait for it, then move on.
            await eventually(lambda n=sent: len(app.requests) == n, what=f"request {sent}")
            clock.advance(1 / rate)
    # Every call got through, each at or after its slot (the clock the server read on arrival).
    arrivals = [r.at for r in app.requests]
    assert [round(at, 6) for at in arrivals] == [round(n / rate, 6) for n in range(calls)]
    await target.aclose()


async def test_secrets_never_in_repr_errors_or_logs(
    api: tuple[ApiApp, str], caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    app, base = api
    connection = Connection(
        auth=OAuthClientCredentials(
            authorization_endpoint=f"{base}/token", client_id=app.client_id, client_secret=app.client_secret
        ),
        invocation_http_parameters={
            "header_parameters": {"x-api-key": Parameter(value=API_KEY)},
            "query_string_parameters": {"sig": Parameter(value=QUERY_SECRET)},
        },
    )
    config = HttpTargetConfig(endpoint=f"{base}/api", connection=connection)
    target = config.build()
    caplog.set_level(logging.DEBUG)
    await target.deliver([EVENT], RULE)
    # The server echoes the query (secret included) in an error body: still scrubbed.
    app.scripted = [(500, {}, json.dumps({"echo": QUERY_SECRET, "token": "token-1"}))]
    with pytest.raises(RetryableError) as info:
        await target.deliver([EVENT], RULE)
    await target.aclose()
    captured = capsys.readouterr()
    texts = [repr(config), str(config), repr(target), repr(connection), str(info.value), repr(info.value),
             caplog.text, captured.out, captured.err, json.dumps(config.model_dump(mode="json"))]
    assert "HTTP Request" in caplog.text  # httpx did log the request line
    for secret in (app.client_secret, QUERY_SECRET, API_KEY, "token-1"):
        for text in texts:
            assert secret not in text


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=3))
def test_path_values_are_encoded_into_one_segment_each(values: list[str]) -> None:
    endpoint = "http://127.0.0.1:9/base/" + "/".join("*" for _ in values)
    target = HttpTarget.create(endpoint, path_parameter_values=values)
    import httpx

    segments = httpx.URL(target.url).raw_path.decode().split("/")[2:]
    from urllib.parse import unquote

    assert [unquote(s) for s in segments] == values
