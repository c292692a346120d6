"""The matcher's per-event modules compiled with mypyc, used only when built from these sources.

Eight modules do all of a match's work per event: ``reading`` (of JSON text), ``flatten``,
``leaves`` (what operators compute on a leaf), ``index``, ``fields``, ``crowd``, ``consistency``
and ``matcher``. They are plain Python, typed strictly enough for mypyc to compile them to C
without a change of meaning, which makes a match two to three times faster (docs/performance.md).
``main`` (``make native``; ``make test`` and ``make bench`` run it) compiles them into
``eventbus/_native/`` with a manifest of the SHA-256 of each source and the interpreter's
extension suffix.

``load`` runs before those modules are first imported (``eventbus/patterns/__init__.py``) and
puts the compiled build first on the package's search path only when every source it was built
from is unchanged and the interpreter is the one it was built for. A source edited since, a
build for another Python, a missing or partial build, or ``EVENTBUS_PURE_PYTHON=1`` in the
environment: the sources run as they are. A stale build can therefore never stand in for the
code beside it, and nothing depends on the build being there.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["COMPILED", "build", "compiled", "load"]

#: The modules compiled, in ``eventbus.patterns``.
COMPILED = ("reading", "flatten", "leaves", "index", "fields", "crowd", "consistency", "matcher")

_PACKAGE = Path(__file__).resolve().parent
#: Where the build lives: inside the package, so that it travels with it.
OUT = _PACKAGE.parent / "_native"
_MANIFEST = "manifest.json"

_state: dict[str, Any] = {"loaded": False, "reason": "not loaded yet"}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _suffix() -> str:
    return str(sysconfig.get_config_var("EXT_SUFFIX") or "")


def compiled() -> bool:
    """Whether this process runs the compiled build of the matcher's modules."""
    return bool(_state["loaded"])


def why() -> str:
    """Why the compiled build is used or not, in a few words (the benchmarks print it)."""
    return str(_state["reason"])


def load(package_path: list[str]) -> bool:
    """Put a current build first on ``package_path`` (``eventbus.patterns.__path__``)."""
    if os.environ.get("EVENTBUS_PURE_PYTHON", "") not in ("", "0"):
        _state["reason"] = "EVENTBUS_PURE_PYTHON is set"
        return False
    already = [name for name in COMPILED if f"eventbus.patterns.{name}" in sys.modules]
    if already:
        _state["reason"] = f"imported before the build could be loaded: {', '.join(already)}"
        return False
    try:
        manifest = json.loads((OUT / _MANIFEST).read_text())
        if manifest.get("suffix") != _suffix():
            _state["reason"] = "built for another interpreter"
            return False
        sources = manifest["sources"]
        if sorted(sources) != sorted(COMPILED):
            _state["reason"] = "built from another list of modules"
            return False
        for name, digest in sources.items():
            if _digest(_PACKAGE / f"{name}.py") != digest:
                _state["reason"] = f"{name}.py changed since the build"
                return False
        files = [OUT / manifest["group"], *(OUT / f"{name}{_suffix()}" for name in COMPILED)]
        if not all(path.is_file() for path in files):
            _state["reason"] = "the build is incomplete"
            return False
        # The modules' shared library is imported by its own top-level name; load it from
        # the build's folder under that name, so that sys.path need not list the folder.
        name = manifest["group"].split(".", 1)[0]
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, OUT / manifest["group"])
            if spec is None or spec.loader is None:
                _state["reason"] = "the build's shared library cannot be loaded"
                return False
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[name] = module
    except FileNotFoundError:
        _state["reason"] = "no build (make native makes one)"
        return False
    except (OSError, ValueError, KeyError, TypeError, ImportError) as exc:
        _state["reason"] = f"the build cannot be used ({type(exc).__name__}: {exc})"
        return False
    package_path.insert(0, str(OUT))
    _state["loaded"] = True
    _state["reason"] = "compiled build in use"
    return True


def build(out: Path = OUT) -> None:
    """Compile ``COMPILED`` with mypyc into ``out``; raises ``RuntimeError`` if it cannot."""
    try:
        import mypyc  # noqa: F401  (only to say so plainly when it is missing)
    except ImportError:
        raise RuntimeError("mypyc is not installed (it comes with mypy: pip install mypy)") from None
    root = _PACKAGE.parent
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # A copy of the package, so that the build's files never land beside the sources.
        shutil.copytree(root, work / "eventbus", ignore=shutil.ignore_patterns("__pycache__", "_native"))
        # Only the compiled modules need their types: the rest of the package is read, not
        # judged (``make test`` runs mypy --strict on all of it with the project's settings).
        (work / "mypy.ini").write_text("[mypy]\nfollow_imports = silent\nignore_missing_imports = True\n")
        files = [f"eventbus/patterns/{name}.py" for name in COMPILED]
        done = subprocess.run(
            [sys.executable, "-m", "mypyc", *files], cwd=work, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"mypyc failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
        groups = sorted(work.glob(f"*__mypyc{_suffix()}"))
        if len(groups) != 1:
            raise RuntimeError(f"mypyc left {len(groups)} shared libraries, expected one")
        staging = Path(tempfile.mkdtemp(prefix="_native.", dir=out.parent))
        try:
            shutil.copy2(groups[0], staging / groups[0].name)
            for name in COMPILED:
                shutil.copy2(work / "eventbus" / "patterns" / f"{name}{_suffix()}", staging / f"{name}{_suffix()}")
            manifest = {
                "suffix": _suffix(),
                "group": groups[0].name,
                # The digests of the sources as copied, which are what was compiled.
                "sources": {name: _digest(work / "eventbus" / "patterns" / f"{name}.py") for name in COMPILED},
            }
            (staging / _MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            if out.exists():
                shutil.rmtree(out)
            staging.rename(out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def main() -> int:
    try:
        build()
    except RuntimeError as exc:
        print(f"eventbus: the matcher stays pure Python: {exc}", file=sys.stderr)
        return 1
    print(f"eventbus: compiled {', '.join(COMPILED)} into {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
