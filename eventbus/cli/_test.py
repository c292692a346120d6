"""``eventbus test``: run config unit tests (``NAME.test.yaml`` beside ``NAME.yaml``)."""

from __future__ import annotations

import argparse
from typing import Any

from eventbus.cli._console import is_terminal, logs_to_stderr, print_problems


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "test",
        help="run config unit tests",
        description=(
            "For each FILE (a config, or its NAME.test.yaml), puts the test events on the config's buses "
            "with every target swapped for a recording one, and checks which targets received which "
            "payloads. Exit status 1 when a test fails or a file is invalid."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from eventbus.config import ConfigErrors
    from eventbus.config.testing import run_test_file

    logs_to_stderr()
    passed = failed = 0
    broken = False
    for path in args.files:
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
