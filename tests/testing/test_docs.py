"""Every code block of docs/**/*.md (the tutorials too) and README.md is loaded or run, so a doc cannot drift from the code.

- ``yaml``, ``toml`` and ``json`` blocks that are config files are loaded by the real loader
  (``eventbus.config.load_config``); config test files (``tests:``) are run against the config
  they test (``config:``, else the nearest config block above them on the page) and must pass;
  events are read with ``Event.from_dict`` (or, without an envelope, validated as the PutEvents
  entry they stand for); any other TOML or JSON must at least parse.
- ``python`` blocks of a page run in order in one namespace, in a process and a fresh folder of
  their own (top-level ``await`` allowed); blocks that define ``test_`` functions are run by pytest
  in that folder instead.
- ``console`` blocks: each ``$ eventbus ...`` command runs in that folder, and must print the
  lines that follow it (when the block shows any) and not fail as a usage error.

A block opts out only with a visible marker on the line before it, saying why::

    <!-- docs-test: skip: a fragment of the block above -->

and ``<!-- docs-test: file NAME -->`` writes the block to ``NAME`` in the page's folder before
anything runs (the config a worked example's tests read, a conftest.py).
``<!-- docs-test: serve NAME -->`` before a ``console`` block runs ``eventbus serve NAME`` on a free
loopback port while its commands run: ``aws`` commands (the AWS CLI of the test extra) go to that
server (their ``http://127.0.0.1:4010`` is its address) and must succeed. Modules that docs name
in ``function`` targets without showing them (``shop.handlers``...) live in ``docs_modules/``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MODULES = Path(__file__).resolve().parent / "docs_modules"
RUNNER = Path(__file__).resolve().parent / "docs_runner.py"
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]

#: Languages a block may have; anything else must be added here on purpose.
CHECKED = {"python", "yaml", "toml", "json", "console"}
#: ``mermaid`` blocks are drawings; a tutorial's is checked against ``eventbus graph`` of its example
#: by tests/examples/test_tutorials.py.
UNCHECKED = {"text", "sh", "", "mermaid"}

#: Opt-outs are for blocks that cannot stand alone; keep them rare.
MAX_SKIPPED = 6

CONFIG_KEYS = {
    "version", "runtime", "defaults", "connections", "targets", "buses", "pipes", "maps", "functions", "server", "invoke",
}

_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_MARKER = re.compile(
    r"<!--\s*docs-test:\s*(?:skip:\s*(?P<why>.*?)|file\s+(?P<file>\S+)|serve\s+(?P<serve>\S+))\s*-->"
)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    text: str
    skip: str | None
    file: str | None
    serve: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page.name}:{self.line}"


def _blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _MARKER.search(before)
        found.append(
            Block(
                page,
                line,
                match.group(1),
                match.group(2),
                skip=marker.group("why") if marker and marker.group("why") is not None else None,
                file=marker.group("file") if marker else None,
                serve=marker.group("serve") if marker else None,
            )
        )
    return found


ALL = [block for page in PAGES if page.exists() for block in _blocks(page)]


def _ids(blocks: list[Block]) -> list[str]:
    return [block.where for block in blocks]


def _data(block: Block) -> Any:
    if block.language == "yaml":
        return yaml.safe_load(block.text)
    if block.language == "toml":
        return tomllib.loads(block.text)
    return json.loads(block.text)


def _is_config(data: Any) -> bool:
    return data is None or (isinstance(data, dict) and bool(data) and set(data) <= CONFIG_KEYS)


def _environ(text: str) -> dict[str, str]:
    """A value for every environment variable a block names (``${NAME}``, ``os.environ["NAME"]``)."""
    names = re.findall(r"\$\{(?!file:)([A-Za-z_]\w*)\}", text) + re.findall(r"os\.environ\[\"(\w+)\"\]", text)
    return {name: f"docs-test-{name.lower()}" for name in names}


def _write_files(page: Path, folder: Path) -> None:
    for block in _blocks(page):
        if block.file:
            path = folder / block.file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text, encoding="utf-8")


def _suffix(block: Block) -> str:
    return {"yaml": ".yaml", "toml": ".toml", "json": ".json"}[block.language]


@pytest.fixture
def page_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(MODULES))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_block_is_checked_or_says_why_not() -> None:
    assert ALL, "no docs found"
    unknown = [b.where for b in ALL if b.language not in CHECKED | UNCHECKED]
    assert unknown == [], f"blocks in a language this test does not know: {unknown}"
    skipped = [b for b in ALL if b.skip is not None]
    assert all(b.skip.strip() for b in skipped), "a skip marker must say why"
    assert len(skipped) <= MAX_SKIPPED, [f"{b.where}: {b.skip}" for b in skipped]


CONFIG_BLOCKS = [b for b in ALL if b.language in ("yaml", "toml", "json") and b.skip is None]


@pytest.mark.parametrize("block", CONFIG_BLOCKS, ids=_ids(CONFIG_BLOCKS))
def test_config_blocks_load(block: Block, page_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eventbus.config import load_config
    from eventbus.config.testing import run_test_file
    from eventbus.envelope import Event

    # Secrets the page's configs name (${OPS_API_KEY}...): set, as a user would have them.
    for name, value in _environ(block.page.read_text(encoding="utf-8")).items():
        monkeypatch.setenv(name, value)
    data = _data(block)
    _write_files(block.page, page_folder)
    for module in page_folder.glob("*.py"):
        # The page's own module (scoring.py), not another page's of the same name imported before.
        monkeypatch.delitem(sys.modules, module.stem, raising=False)
    if isinstance(data, dict) and "tests" in data:
        assert block.language == "yaml", f"{block.where}: config tests are written in YAML here"
        _run_config_tests(block, data, page_folder, run_test_file)
        return
    if block.language == "yaml" and not _is_config(data):
        pytest.fail(f"{block.where}: a YAML block must be a whole config file or config test file")
    if _is_config(data):
        path = page_folder / (block.file or f"block-{block.line}{_suffix(block)}")
        path.write_text(block.text, encoding="utf-8")
        load_config(path, environ=_environ(block.text))
    elif isinstance(data, dict) and "detail-type" in data and "account" in data:
        Event.from_dict(data)  # a whole event, as targets receive it
    elif isinstance(data, dict) and "detail-type" in data:
        # An event as people write one (eventbus put, config tests): a valid PutEvents entry.
        from eventbus.config.entries import to_entry
        from eventbus.envelope import validate_entry

        assert validate_entry(to_entry(data)) is None, f"{block.where}: not a valid event"


def _run_config_tests(block: Block, data: dict[str, Any], folder: Path, run_test_file: Any) -> None:
    if block.file:
        # Written beside its config (NAME.yaml, or the one its config: names) by _write_files.
        test_file = folder / block.file
    elif data.get("config") is None:
        above = [
            b
            for b in _blocks(block.page)
            if b.line < block.line and b.language == "yaml" and b.skip is None and _is_config(_data(b))
        ]
        assert above, f"{block.where}: config tests need a config block above them (or config: FILE)"
        config = above[-1]
        stem = (config.file or f"block-{config.line}.yaml").removesuffix(".yaml")
        (folder / f"{stem}.yaml").write_text(config.text, encoding="utf-8")
        test_file = folder / f"{stem}.test.yaml"
    else:
        test_file = folder / f"block-{block.line}.test.yaml"
    test_file.write_text(block.text, encoding="utf-8")
    results = run_test_file(test_file)
    failures = [f"{r.name}: {f}" for r in results for f in r.failures]
    assert failures == [], f"{block.where}: config tests fail:\n" + "\n".join(failures)


PYTHON_PAGES = sorted({b.page for b in ALL if b.language == "python" and b.skip is None})


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=[p.name for p in PYTHON_PAGES])
def test_python_blocks_run(page: Path, tmp_path: Path) -> None:
    blocks = [b for b in _blocks(page) if b.language == "python" and b.skip is None]
    _write_files(page, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(MODULES), str(tmp_path), env.get("PYTHONPATH", "")])
    for block in blocks:
        env.update(_environ(block.text))
    tests = [b for b in blocks if re.search(r"^(async )?def test_", b.text, re.M) and not b.file]
    plain = [b for b in blocks if b not in tests and not b.file]
    if plain:
        spec = tmp_path / "blocks.json"
        spec.write_text(json.dumps([{"where": b.where, "text": b.text} for b in plain]), encoding="utf-8")
        result = subprocess.run(
            [sys.executable, str(RUNNER), str(spec)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        print(result.stdout)  # shown with -s: what the blocks printed
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    if tests:
        module = tmp_path / f"test_docs_{page.stem}.py"
        module.write_text("\n\n".join(b.text for b in tests), encoding="utf-8")
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        assert " passed" in result.stdout and "failed" not in result.stdout


CONSOLE_BLOCKS = [b for b in ALL if b.language == "console" and b.skip is None]


@pytest.mark.parametrize("block", CONSOLE_BLOCKS, ids=_ids(CONSOLE_BLOCKS))
def test_console_blocks_print_what_they_show(block: Block, tmp_path: Path) -> None:
    _write_files(block.page, tmp_path)
    commands: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
    assert commands, f"{block.where}: a console block shows at least one $ command"
    server = _Served(tmp_path, block.serve) if block.serve else None
    try:
        for command, shown in commands:
            argv = shlex.split(command)
            if argv[0] == "aws" and server is not None:
                result = server.aws(argv[1:])
                assert result.returncode == 0, f"{block.where}: {command}\n{result.stderr}"
                continue
            if argv[0] != "eventbus":
                continue
            result = subprocess.run(
                [sys.executable, "-m", "eventbus.cli", *argv[1:]],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode in (0, 1), f"{block.where}: {command}\n{result.stderr}"
            if shown:
                assert result.stdout.splitlines() == shown, f"{block.where}: {command}"
    finally:
        if server is not None:
            server.stop()


class _Served:
    """``eventbus serve FILE --port 0`` in ``folder``, for a console block's ``aws`` commands."""

    SHOWN = "http://127.0.0.1:4010"

    def __init__(self, folder: Path, config: str) -> None:
        self.folder = folder
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env["PYTHONPATH"] = os.pathsep.join([str(MODULES), env.get("PYTHONPATH", "")])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eventbus.cli", "serve", config, "--port", "0"],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        self.url = ""
        said = []
        for line in self.process.stderr:  # the first lines say where it listens (or why not)
            said.append(line)
            found = re.search(r"serving on (http://\S+)", line)
            if found:
                self.url = found.group(1)
                break
        assert self.url, f"eventbus serve {config} did not start:\n{''.join(said)}"
        import threading

        # Whatever it logs later is read, so a full pipe never stops it.
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def aws(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.folder),
            "AWS_ACCESS_KEY_ID": "docs",
            "AWS_SECRET_ACCESS_KEY": "docs",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        args = [a.replace(self.SHOWN, self.url) for a in args]
        aws = str(Path(sys.executable).with_name("aws"))
        return subprocess.run([aws, *args], cwd=self.folder, env=env, capture_output=True, text=True, timeout=120)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
