"""The compiled build of the matcher's modules (``native.py``): used only when it was made from the
sources beside it for this interpreter; in every other case the sources run as they are.

Each case runs a fresh interpreter on a copy of the package, so that what it imports is decided
by that copy alone. ``make test`` builds the compiled modules first and also runs this folder's
tests with ``EVENTBUS_PURE_PYTHON=1``, so both ways of running are held to the same tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import eventbus
from eventbus.patterns import native

PACKAGE = Path(eventbus.__file__).resolve().parent
BUILT = (native.OUT / "manifest.json").is_file()
needs_build = pytest.mark.skipif(not BUILT, reason="no compiled build in this checkout (make native makes one)")

PROBE = """
import json
import eventbus.patterns.matcher as matcher
from eventbus import Matcher
from eventbus.patterns import native
m = Matcher()
m.add("r", {"source": ["shop"], "detail": {"n": [{"numeric": [">", 1]}]}})
print(json.dumps({
    "compiled": native.compiled(),
    "why": native.why(),
    "file": matcher.__file__,
    "match": sorted(m.match({"source": "shop", "detail": {"n": 2}})),
}))
"""


def _copy(tmp_path: Path, *, with_build: bool = True) -> Path:
    ignore = shutil.ignore_patterns("__pycache__") if with_build else shutil.ignore_patterns("__pycache__", "_native")
    shutil.copytree(PACKAGE, tmp_path / "eventbus", ignore=ignore)
    return tmp_path / "eventbus"


def _probe(root: Path, **env: str) -> dict[str, object]:
    environ = {k: v for k, v in os.environ.items() if k not in ("EVENTBUS_PURE_PYTHON", "PYTHONPATH")}
    environ.update(env)
    environ["PYTHONPATH"] = str(root)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=root, env=environ, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    # Whichever way it runs, the matcher answers the same.
    assert result["match"] == ["r"]
    return result


def _fake_build(package: Path) -> None:
    """A build folder whose manifest agrees with the sources, with empty files for the modules
    (enough for every refusal below, which all come before anything is loaded)."""
    out = package / "_native"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    suffix = native._suffix()
    group = f"0123456789abcdef0123__mypyc{suffix}"
    for name in (group, *(f"{module}{suffix}" for module in native.COMPILED)):
        (out / name).write_bytes(b"")
    manifest = {
        "suffix": suffix,
        "group": group,
        "sources": {m: native._digest(package / "patterns" / f"{m}.py") for m in native.COMPILED},
    }
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_this_process_uses_the_build_when_it_is_current() -> None:
    if os.environ.get("EVENTBUS_PURE_PYTHON", "") not in ("", "0"):
        assert not native.compiled() and native.why() == "EVENTBUS_PURE_PYTHON is set"
    elif BUILT:
        assert native.compiled(), native.why()
    else:
        assert not native.compiled() and native.why().startswith("no build")


@needs_build
def test_a_copy_with_its_build_runs_compiled(tmp_path: Path) -> None:
    result = _probe(_copy(tmp_path).parent)
    assert result["compiled"] is True
    assert str(result["file"]).endswith(native._suffix())


@needs_build
def test_a_source_changed_since_the_build_runs_as_source(tmp_path: Path) -> None:
    package = _copy(tmp_path)
    source = package / "patterns" / "matcher.py"
    source.write_text(source.read_text() + "\n# edited after the build\n")
    result = _probe(package.parent)
    assert result == {**result, "compiled": False, "why": "matcher.py changed since the build"}
    assert str(result["file"]).endswith("matcher.py")


@needs_build
def test_the_environment_can_ask_for_pure_python(tmp_path: Path) -> None:
    result = _probe(_copy(tmp_path).parent, EVENTBUS_PURE_PYTHON="1")
    assert result["compiled"] is False and result["why"] == "EVENTBUS_PURE_PYTHON is set"


def test_no_build_runs_as_source(tmp_path: Path) -> None:
    result = _probe(_copy(tmp_path, with_build=False).parent)
    assert result["compiled"] is False and str(result["why"]).startswith("no build")


def test_a_build_for_another_interpreter_is_ignored(tmp_path: Path) -> None:
    package = _copy(tmp_path, with_build=False)
    _fake_build(package)
    manifest = json.loads((package / "_native" / "manifest.json").read_text())
    manifest["suffix"] = ".cpython-399-x86_64-linux-gnu.so"
    (package / "_native" / "manifest.json").write_text(json.dumps(manifest))
    result = _probe(package.parent)
    assert result["compiled"] is False and result["why"] == "built for another interpreter"


def test_an_incomplete_build_is_ignored(tmp_path: Path) -> None:
    package = _copy(tmp_path, with_build=False)
    _fake_build(package)
    (package / "_native" / f"crowd{native._suffix()}").unlink()
    result = _probe(package.parent)
    assert result["compiled"] is False and result["why"] == "the build is incomplete"


def test_a_broken_build_is_ignored(tmp_path: Path) -> None:
    """Files that are not libraries at all: the interpreter refuses them, the sources run."""
    package = _copy(tmp_path, with_build=False)
    _fake_build(package)
    result = _probe(package.parent)
    assert result["compiled"] is False and str(result["why"]).startswith("the build cannot be used")


def test_an_unreadable_manifest_is_ignored(tmp_path: Path) -> None:
    package = _copy(tmp_path, with_build=False)
    _fake_build(package)
    (package / "_native" / "manifest.json").write_text("{not json")
    result = _probe(package.parent)
    assert result["compiled"] is False and str(result["why"]).startswith("the build cannot be used")
