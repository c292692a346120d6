"""Secrets never leave the process: not in logs, reprs, error messages or dead letters.

A config with a secret of every kind (API key, basic password, OAuth client secret and its token,
secret header and query parameters, a NATS URL with a password; inline and from ``${ENV}``) runs
an event into targets that all fail against a server that echoes every request it gets, so each
secret travels into error messages, dead letters and log lines. Everything that came out is then
scanned for each secret, raw and in every encoding it may have taken on the way.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets as random_secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import anyio
import pytest
import structlog

from eventbus.config import load_config
from eventbus.config.build import Runtime
from eventbus.config.topology import topology

from .http_app import free_port

pytestmark = pytest.mark.anyio


def _new(prefix: str) -> str:
    return f"{prefix}-{random_secrets.token_hex(6)}"


API_KEY = _new("api-key")
BASIC_PASSWORD = _new("basic/pw:é")
CLIENT_SECRET = _new("oauth-client")
HEADER_SECRET = _new("header")
QUERY_SECRET = "q secret&1 " + random_secrets.token_hex(4)  # needs URL-encoding
NATS_PASSWORD = _new("nats-pw")
OAUTH_TOKEN = _new("oauth-token")
URL_PASSWORD = _new("url-pw")


def encodings(secret: str) -> set[str]:
    """The forms a secret may take in text that leaves the process."""
    found = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        base64.b64encode(secret.encode()).decode().rstrip("="),
    }
    found |= {f.lower() for f in found if "%" in f}
    return found


def every_form() -> dict[str, set[str]]:
    forms = {name: encodings(value) for name, value in SECRETS.items()}
    forms["basic header"] = {base64.b64encode(f"ops:{BASIC_PASSWORD}".encode()).decode()}
    forms["oauth basic header"] = {base64.b64encode(f"eventbus:{CLIENT_SECRET}".encode()).decode()}
    return forms


SECRETS = {
    "api key": API_KEY,
    "basic password": BASIC_PASSWORD,
    "oauth client secret": CLIENT_SECRET,
    "secret header": HEADER_SECRET,
    "secret query parameter": QUERY_SECRET,
    "nats password": NATS_PASSWORD,
    "oauth token": OAUTH_TOKEN,
    "password in an endpoint URL": URL_PASSWORD,
}


class EchoApp:
    """Answers every API call with an error that repeats the request: path, query and headers."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        path = scope["raw_path"].decode() + "?" + scope["query_string"].decode()
        self.requests.append({"path": path, "headers": headers, "body": body.decode()})
        if scope["path"] == "/token":
            status, answer = 200, {"access_token": OAUTH_TOKEN, "expires_in": 3600}
        else:
            status = int(scope["path"].rsplit("/", 1)[1])
            # The path last: an error message quotes the end of a long body.
            answer = {"headers": headers, "body": body.decode(), "message": f"cannot serve {path}"}
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": json.dumps(answer).encode()})


CONFIG = """
connections:
  basic:
    auth: {{type: BASIC, username: ops, password: "{basic}"}}
  key:
    auth: {{type: API_KEY, api_key_name: x-api-key, api_key_value: "${{API_KEY}}"}}
    invocation_http_parameters:
      header_parameters:
        x-signature: {{value: "{header}", is_value_secret: true}}
      query_string_parameters:
        sig: {{value: "${{QUERY_SECRET}}", is_value_secret: true}}
  oauth:
    auth:
      type: OAUTH_CLIENT_CREDENTIALS
      authorization_endpoint: "{base}/token"
      client_id: eventbus
      client_secret: "${{CLIENT_SECRET}}"

defaults:
  retry_policy: {{MaximumRetryAttempts: 0}}
  dead_letter: {{file: {{path: "{out}/dead.jsonl", format: record}}}}
  bus: {{backoff: {{base: 0.001, cap: 0.002}}, drain_timeout: 20}}

buses:
  secure:
    rules:
      every:
        pattern: {{source: [app]}}
        targets:
          - id: basic
            http: {{endpoint: "{base}/api/404", connection: basic}}
          - id: key
            http: {{endpoint: "{base}/api/500", connection: key}}
          - id: oauth
            http: {{endpoint: "{base}/api/403", connection: oauth}}
          - id: nats
            nats:
              servers: ["nats://ops:{nats}@127.0.0.1:{nats_port}"]
              subject: events.app
              connect_timeout: 0.2
          - id: nowhere
            http: {{endpoint: "{base_with_password}/api/400", connection: key}}
            dead_letter: {{nats: {{servers: ["nats://ops:{nats}@127.0.0.1:{nats_port}"], subject: dl, connect_timeout: 0.2}}}}
"""


def config_text(base: str, out: Path) -> str:
    return CONFIG.format(
        base=base,
        base_with_password=base.replace("://", f"://ops:{URL_PASSWORD}@"),
        basic=BASIC_PASSWORD,
        header=HEADER_SECRET,
        nats=NATS_PASSWORD,
        nats_port=free_port(),
        out=out,
    )


@pytest.fixture
def captured_logs() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """Every log record at every level (eventbus's, httpx's request lines, uvicorn's...), printed
    twice: as a plain handler prints them, and as structlog's ProcessorFormatter renders them
    (as the command line does, and applications rendering JSON)."""
    plain, rendered = io.StringIO(), io.StringIO()
    plain_handler = logging.StreamHandler(plain)
    plain_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    structured_handler = logging.StreamHandler(rendered)
    structured_handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[structlog.stdlib.add_log_level],
        )
    )
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(plain_handler)
    root.addHandler(structured_handler)
    root.setLevel(logging.DEBUG)
    levels = {name: logging.getLogger(name).level for name in ("eventbus", "httpx", "httpcore")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield plain, rendered
    finally:
        root.removeHandler(plain_handler)
        root.removeHandler(structured_handler)
        root.setLevel(old_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def test_no_secret_leaves_the_process_in_any_encoding(
    tmp_path: Path,
    asgi_server: Callable[[Any], str],
    captured_logs: tuple[io.StringIO, io.StringIO],
) -> None:
    app = EchoApp()
    base = asgi_server(app)
    out = tmp_path / "out"
    config_file = tmp_path / "secure.yaml"
    config_file.write_text(config_text(base, out))
    environ = {"API_KEY": API_KEY, "QUERY_SECRET": QUERY_SECRET, "CLIENT_SECRET": CLIENT_SECRET}
    loaded = load_config(config_file, environ)
    graph = topology([loaded])
    texts: dict[str, str] = {
        "repr(load_config(...))": repr(loaded),
        "str(model)": str(loaded.model),
        "graph": graph.to_mermaid() + graph.to_dot(),
    }

    runtime = Runtime([loaded])
    async with runtime:
        bus = runtime.bus()
        answer = await bus.put_events([{"Source": "app", "DetailType": "t", "Detail": '{"n": 1}'}])
        assert answer["FailedEntryCount"] == 0
        with anyio.fail_after(60):
            await runtime.wait_idle()
        texts["repr(runtime.targets)"] = repr(runtime.targets)
        texts["metrics"] = json.dumps(bus.metrics())

    # Every secret went out to the server, so each had its chance to leak back.
    sent = json.dumps(app.requests)
    assert QUERY_SECRET.replace(" ", "+").replace("&", "%26") in sent and API_KEY in sent
    assert OAUTH_TOKEN in sent and HEADER_SECRET in sent

    dead_letters = (out / "dead.jsonl").read_text()
    lines = [json.loads(line) for line in dead_letters.splitlines()]
    assert sorted(line["target_id"] for line in lines) == ["basic", "key", "nats", "oauth"]
    messages = {line["target_id"]: line["attributes"]["ERROR_MESSAGE"] for line in lines}
    # The reasons are there, with the echoed secrets masked out of them.
    assert "answered 500" in messages["key"] and "**********" in messages["key"]
    assert messages["nats"].startswith("Cannot connect to NATS at nats://ops:**********@127.0.0.1:")
    plain, rendered = captured_logs
    texts["dead letters"] = dead_letters
    texts["logs as printed"] = plain.getvalue()
    texts["logs rendered by structlog"] = rendered.getvalue()
    for logs in (texts["logs as printed"], texts["logs rendered by structlog"]):
        assert "HTTP Request" in logs  # httpx logged its request lines
        assert "dead-lettered" in logs and "**********" in logs  # with the reasons, masked
        assert "dead letter failed" in logs  # the nats dead letter of 'nowhere'

    leaks = [
        f"{name} ({form!r}) in {where}"
        for name, found in every_form().items()
        for form in found
        for where, text in texts.items()
        if form in text
    ]
    assert not leaks, "\n".join(leaks)


def test_the_command_line_prints_no_secret(tmp_path: Path, asgi_server: Callable[[Any], str]) -> None:
    app = EchoApp()
    base = asgi_server(app)
    config_file = tmp_path / "secure.yaml"
    config_file.write_text(config_text(base, tmp_path / "out"))
    env = {"API_KEY": API_KEY, "QUERY_SECRET": QUERY_SECRET, "CLIENT_SECRET": CLIENT_SECRET, "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-m", "eventbus.cli", "put", "-c", str(config_file), "--timeout", "60",
         '{"source": "app", "detail-type": "t", "detail": {}}'],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert app.requests, result.stderr  # the targets were called
    texts = {"stdout": result.stdout, "stderr": result.stderr, "dead letters": (tmp_path / "out/dead.jsonl").read_text()}
    leaks = [
        f"{name} ({form!r}) in {where}"
        for name, found in every_form().items()
        for form in found
        for where, text in texts.items()
        if form in text
    ]
    assert not leaks, "\n".join(leaks)
