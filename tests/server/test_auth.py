"""Authentication: SigV4 with the config's access keys, bearer API keys, anonymous only on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from cli.helpers import eventbus

from .conftest import write
from .helpers import ACCESS_KEY, SECRET_KEY, LiveServer

API_KEY = "bearer-key-for-tests"

CONFIG = f"""
server:
  credentials:
    - {{access_key_id: {ACCESS_KEY}, secret_access_key: {SECRET_KEY}}}
  api_keys: ["{API_KEY}"]
buses:
  guarded: {{}}
"""


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("auth")
    server = LiveServer([write(folder, "guarded.yaml", CONFIG)], cwd=folder)
    yield server
    assert server.stop() == 0, "\n".join(server.lines)


def signed(server: LiveServer, service: str = "events", **override: Any) -> Any:
    keys = {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY, **override}
    return server.client(service, **keys)


def test_requests_signed_with_a_declared_key_are_served(guarded: LiveServer) -> None:
    events = signed(guarded)
    answer = events.put_events(Entries=[{"Source": "a", "DetailType": "b", "Detail": "{}", "EventBusName": "guarded"}])
    assert answer["FailedEntryCount"] == 0
    events.put_rule(Name="signed", EventBusName="guarded", EventPattern='{"source": ["a"]}')
    assert [r["Name"] for r in events.list_rules(EventBusName="guarded", NamePrefix="sig")["Rules"]] == ["signed"]
    # The Pipes API signs a path and a query string too.
    pipes = signed(guarded, "pipes")
    assert pipes.list_pipes(NamePrefix="none", Limit=5)["Pipes"] == []


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ({"aws_secret_access_key": "wrong-secret"}, "InvalidSignatureException"),
        ({"aws_access_key_id": "AKIDUNKNOWN"}, "UnrecognizedClientException"),
    ],
)
def test_wrongly_signed_requests_are_refused(guarded: LiveServer, keys: dict[str, str], error: str) -> None:
    events = signed(guarded, **keys)
    with pytest.raises(ClientError) as info:
        events.list_rules(EventBusName="guarded")
    assert info.value.response["Error"]["Code"] == error
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert SECRET_KEY not in str(info.value)


def test_unsigned_requests_are_refused(guarded: LiveServer) -> None:
    response = httpx.post(
        guarded.url + "/",
        json={},
        headers={"X-Amz-Target": "AWSEvents.ListRules", "Content-Type": "application/x-amz-json-1.1"},
    )
    assert response.status_code == 403
    assert response.json() == {"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"}


def test_a_changed_body_breaks_the_signature(guarded: LiveServer) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = b'{"EventBusName": "guarded"}'
    request = AWSRequest(
        method="POST",
        url=guarded.url + "/",
        data=body,
        headers={"X-Amz-Target": "AWSEvents.ListRules", "Content-Type": "application/x-amz-json-1.1"},
    )
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "events", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    assert httpx.post(guarded.url + "/", content=body, headers=headers).status_code == 200
    tampered = httpx.post(guarded.url + "/", content=body.replace(b"guarded", b"default"), headers=headers)
    assert tampered.status_code == 403
    assert tampered.json()["__type"] == "InvalidSignatureException"


def test_bearer_api_keys(guarded: LiveServer) -> None:
    headers = {"X-Amz-Target": "AWSEvents.ListEventBuses", "Content-Type": "application/x-amz-json-1.1"}
    good = httpx.post(guarded.url + "/", json={}, headers={**headers, "Authorization": f"Bearer {API_KEY}"})
    assert good.status_code == 200 and {b["Name"] for b in good.json()["EventBuses"]} == {"default", "guarded"}
    bad = httpx.post(guarded.url + "/", json={}, headers={**headers, "Authorization": "Bearer nope"})
    assert bad.status_code == 403 and bad.json()["__type"] == "UnrecognizedClientException"
    assert httpx.get(guarded.url + "/metrics").status_code == 403
    metrics = httpx.get(guarded.url + "/metrics", headers={"Authorization": f"Bearer {API_KEY}"})
    assert metrics.status_code == 200 and "eventbus_bus_events_total" in metrics.text


def test_health_checks_need_no_credentials(guarded: LiveServer) -> None:
    assert httpx.get(guarded.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(guarded.url + "/readyz").status_code == 200


def test_anonymous_access_is_refused_off_loopback_at_start(tmp_path: Path) -> None:
    config = write(tmp_path, "open.yaml", "buses:\n  open: {}\n")
    # Refused before anything binds: no traffic leaves loopback.
    result = eventbus("serve", str(config), "--host", "0.0.0.0", "--port", "0", cwd=tmp_path)
    assert result.returncode == 1
    assert "refusing to serve on 0.0.0.0 without authentication" in result.stderr
    assert "server.credentials" in result.stderr and "Traceback" not in result.stderr


def test_an_invalid_config_is_reported_not_served(tmp_path: Path) -> None:
    config = write(tmp_path, "bad.yaml", "server:\n  prot: 1\n")
    result = eventbus("serve", str(config), "--port", "0", cwd=tmp_path)
    assert result.returncode == 1
    assert "server.prot: unknown key; did you mean 'port'?" in result.stderr
