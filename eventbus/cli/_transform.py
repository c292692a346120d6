"""``eventbus test-transform``: what a target would receive for an event."""

from __future__ import annotations

import argparse
import json
from typing import Any

from eventbus.cli._io import ArgumentError, fail, read_text_argument
from eventbus.errors import TransformError
from eventbus.transform import TargetInput


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "test-transform",
        help="show what a target receives for an event",
        description=(
            "Renders a target's input for an event: an InputTransformer (InputPathsMap and "
            "InputTemplate), an InputPath or a constant Input. Prints the payload. Exit status 1 when "
            "AWS would deliver nothing (the result is not JSON, a path matches nothing), 2 for an "
            "invalid transformer or event (AWS's message on stderr)."
        ),
    )
    parser.add_argument("--event", "-e", required=True, help="the event: JSON text, or @FILE (@- for stdin)")
    form = parser.add_mutually_exclusive_group(required=True)
    form.add_argument(
        "--input-transformer",
        "-t",
        help='{"InputPathsMap": {...}, "InputTemplate": "..."}: JSON text or @FILE',
    )
    form.add_argument("--input-path", help="a JSONPath such as $.detail")
    form.add_argument("--input", help="constant JSON text")
    parser.add_argument("--rule-name", default="test-rule", help="<aws.events.rule-name> (default test-rule)")
    parser.add_argument(
        "--rule-arn",
        default="arn:aws:events:us-east-1:123456789012:rule/test-rule",
        help="<aws.events.rule-arn>",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        event_text = read_text_argument(args.event, "event")
        transformer_text = (
            read_text_argument(args.input_transformer, "input transformer")
            if args.input_transformer
            else None
        )
    except ArgumentError as exc:
        return fail(str(exc))
    try:
        event = json.loads(event_text)
    except ValueError as exc:
        return fail(f"The event is not valid JSON: {exc}")
    if not isinstance(event, dict):
        return fail("The event must be a JSON object.")
    transformer = None
    if transformer_text is not None:
        try:
            transformer = json.loads(transformer_text)
        except ValueError as exc:
            return fail(f"The input transformer is not valid JSON: {exc}")
        if not isinstance(transformer, dict):
            return fail("The input transformer must be a JSON object (InputPathsMap, InputTemplate).")
    try:
        target_input = TargetInput(
            "test-target", input=args.input, input_path=args.input_path, input_transformer=transformer
        )
    except ValueError as exc:
        return fail(str(exc))
    try:
        print(target_input.render(event, rule_name=args.rule_name, rule_arn=args.rule_arn))
    except TransformError as exc:
        return fail(str(exc), 1)
    return 0
