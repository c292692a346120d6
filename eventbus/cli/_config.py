"""``eventbus validate`` (config files, every problem at once) and ``eventbus schema``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from eventbus.cli._console import print_problems


def register(subparsers: Any) -> None:
    validate = subparsers.add_parser(
        "validate",
        help="check config files",
        description=(
            "Loads and validates each config file (YAML, TOML or JSON) and the files together. Every "
            "problem is printed on stderr as FILE:LINE KEY.PATH: REASON. Function references are imported "
            "and checked to name a callable (--no-import only finds their modules). Exit status 1 on any "
            "problem."
        ),
    )
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("--quiet", "-q", action="store_true", help="print nothing when the files are valid")
    validate.add_argument(
        "--no-import",
        dest="import_functions",
        action="store_false",
        help="check that function modules can be found, without importing (running) them",
    )
    validate.set_defaults(handler=run_validate)

    schema = subparsers.add_parser(
        "schema",
        help="print the config file JSON Schema",
        description="Prints the JSON Schema of config files, for editor completion and checking.",
    )
    schema.add_argument("--indent", type=int, default=2, help="indentation (default 2)")
    schema.add_argument("--markdown", action="store_true", help="print the reference in Markdown instead")
    schema.set_defaults(handler=run_schema)


def run_validate(args: argparse.Namespace) -> int:
    from eventbus.config import ConfigErrors, load_configs
    from eventbus.config.testing import is_test_file, load_test_file

    # Config tests (NAME.test.yaml) are checked as tests, against the config they test. A test
    # file reports its config's problems too, so each problem is printed once however many files
    # lead to it.
    tests = [f for f in args.files if is_test_file(f)]
    problems: list[Any] = []
    valid_tests = []
    for path in tests:
        try:
            spec, _ = load_test_file(path)
        except ConfigErrors as exc:
            problems += exc.problems
            continue
        valid_tests.append((path, spec))
    configs = []
    try:
        configs = load_configs([f for f in args.files if f not in tests], import_functions=args.import_functions)
    except ConfigErrors as exc:
        problems += exc.problems
    if problems:
        print_problems(ConfigErrors(dict.fromkeys(problems)))
        return 1
    if not args.quiet:
        for path, spec in valid_tests:
            print(f"{path}: ok ({len(spec.tests)} config test(s))")
        for config in configs:
            model = config.model
            rules = sum(len(bus.rules) for bus in model.buses.values())
            # Maps and routes are counted where a file has some: most have neither.
            maps = f", {len(model.maps)} map(s)" if model.maps else ""
            routes = f", {len(model.invoke.routes)} invoke route(s)" if model.invoke.routes else ""
            print(
                f"{config.file}: ok ({len(model.buses)} bus(es), {rules} rule(s), "
                f"{len(model.pipes)} pipe(s){maps}{routes})"
            )
    return 0


def run_schema(args: argparse.Namespace) -> int:
    from eventbus.config import json_schema

    if args.markdown:
        from eventbus.config.reference import markdown_reference

        print(markdown_reference(), end="")
        return 0
    print(json.dumps(json_schema(), indent=args.indent if args.indent > 0 else None))
    return 0
