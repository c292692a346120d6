"""``eventbus test``: run config unit tests (``NAME.test.yaml`` beside ``NAME.yaml``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from eventbus.cli._console import is_terminal, logs_to_stderr, print_problems


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "test",
        help="run config unit tests",
        description=(
            "For each FILE (a config, its NAME.test.yaml, or a folder: every test file under it), puts "
            "each case's events on the config's buses, or its records through a pipe in place of the "
            "pipe's source, with targets swapped for recording ones, and checks which targets received "
            "which payloads. Exit status 1 when a test fails or a file is invalid."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE|DIR")
    parser.add_argument(
        "--logs",
        action="store_true",
        help="show the library's logs on stderr (retries, dead letters...): off by default, as a "
        "case's fail: makes many of them on purpose",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from eventbus.config import ConfigErrors
    from eventbus.config.testing import run_test_file

    if args.logs:
        logs_to_stderr()
    else:
        # The cases' own output is the PASS/FAIL lines; records must not reach Python's
        # last-resort handler either (it would print every WARNING a failing target causes).
        import logging

        logging.getLogger("eventbus").addHandler(logging.NullHandler())
        logging.getLogger("eventbus").propagate = False
    passed = failed = 0
    broken = False
    files, empty = _expand(args.files)
    for folder in empty:
        print(f"{folder}: no config tests under this folder (NAME.test.yaml beside NAME.yaml)", file=sys.stderr)
        broken = True
    for path in files:
        try:
            results = run_test_file(path)
        except ConfigErrors as exc:
            print_problems(exc)
            broken = True
            continue
        for result in results:
            mark = ("[green]PASS[/]" if result.passed else "[red]FAIL[/]") if is_terminal() else None
            status = "PASS" if result.passed else "FAIL"
            line = f"{status} {result.file}: {result.name}"
            if mark is not None:
                from rich.console import Console

                Console().print(f"{mark} {result.file}: {result.name}", highlight=False)
            else:
                print(line)
            for failure in result.failures:
                print(f"    {failure}")
            passed += result.passed
            failed += not result.passed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or broken else 0


#: The suffixes a config (and so its test file) may have.
_SUFFIXES = (".yaml", ".yml", ".toml", ".json")


def _expand(paths: list[str]) -> tuple[list[str], list[str]]:
    """``(files, folders without tests)``: files as given, a folder as the test files under it."""
    from eventbus.config.testing import is_test_file

    files: list[str] = []
    empty: list[str] = []
    for path in paths:
        folder = Path(path)
        if not folder.is_dir():
            files.append(path)
            continue
        found = sorted(
            str(p) for p in folder.rglob("*.test.*") if p.suffix in _SUFFIXES and p.is_file() and is_test_file(p)
        )
        files.extend(found)
        if not found:
            empty.append(path)
    return files, empty
