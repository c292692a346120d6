"""A live ``eventbus serve`` subprocess on a free loopback port, boto3 clients for it, and a
loopback HTTP receiver that records what targets send it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
_SERVING = re.compile(r"serving on (http://\S+)")

#: Test credentials for configs that declare them (never real ones).
ACCESS_KEY = "AKIDEVENTBUSTEST"
SECRET_KEY = "test-secret-key-not-real"


class LiveServer:
    """``eventbus serve FILES --port 0``; ``url`` once it announced where it listens."""

    def __init__(self, files: Sequence[Path], *, cwd: Path, args: Sequence[str] = ()) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env.pop("COLUMNS", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eventbus.cli", "serve", *map(str, files), "--port", "0", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._announced = threading.Event()
        self.url = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._announced.wait(60):
            self.stop()
            raise AssertionError("eventbus serve did not start:\n" + "\n".join(self.lines))
        if not self.url:
            raise AssertionError("eventbus serve exited:\n" + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            match = _SERVING.search(line)
            if match and not self.url:
                self.url = match.group(1)
                self._announced.set()
        self._announced.set()

    def client(self, service: str = "events", **credentials: Any) -> Any:
        options = {"aws_access_key_id": "anonymous", "aws_secret_access_key": "anonymous"}
        options.update(credentials)
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=30, connect_timeout=10),
            **options,
        )

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the drain; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._reader.join(10)
        return code


class Receiver:
    """An HTTP server on 127.0.0.1 recording each request's method, path, headers and JSON body."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = status
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._cond:
                    receiver.requests.append(
                        {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    receiver._cond.notify_all()
                self.send_response(receiver.status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_POST = do_PUT = do_GET = _handle

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def bodies(self) -> list[Any]:
        with self._cond:
            return [json.loads(r["body"]) if r["body"] else None for r in self.requests]

    def wait_for(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        """Until ``count`` requests arrived (an AssertionError after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.requests)} of {count} requests arrived in {timeout} s")
                self._cond.wait(left)
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
