"""Small helpers the built-in targets share: payload parsing, batch shape, callable references."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eventbus.errors import ConfigError
from eventbus.targets.base import DeliveryContext

__all__ = [
    "BATCH_KINDS",
    "CALLABLE_REF",
    "check_callable_ref",
    "import_failure",
    "invocation_bodies",
    "maybe_json",
    "parse_payload",
    "resolve_callable",
    "scrub",
    "tail",
]

#: Deliveries that hand the whole batch over as one JSON array, as Lambda gets it from Pipes.
BATCH_KINDS = frozenset({"pipe", "enrichment"})

CALLABLE_REF = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def parse_payload(payload: str) -> Any:
    """The payload as Python data; text that is not JSON is passed on as the string itself."""
    try:
        return json.loads(payload)
    except ValueError:
        return payload


def maybe_json(text: str) -> Any:
    """A response: parsed when it is JSON, the text otherwise (an empty response is ``""``)."""
    if not text.strip():
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def invocation_bodies(payloads: Sequence[str], context: DeliveryContext) -> tuple[bool, list[str]]:
    """How a batch becomes invocations: ``(batched, bodies)``.

    Pipes (and their enrichment step) invoke once with the batch as a JSON array; rules invoke
    once a payload; a map invokes once with its one row and answers with that one response. The array is built from the payloads' text so no number or key order changes.
    """
    if context.kind in BATCH_KINDS:
        return True, ["[" + ",".join(payloads) + "]"]
    if context.kind == "map" and len(payloads) == 1:
        # A map runs the target once a row and keeps its one answer as the row's result.
        return True, [payloads[0]]
    return False, list(payloads)


def check_callable_ref(ref: str) -> str:
    if not CALLABLE_REF.match(ref):
        raise ConfigError(f"{ref!r} is not a 'package.module:function' reference")
    return ref


def resolve_callable(ref: str | Callable[..., Any]) -> Callable[..., Any]:
    """Import ``package.module:attr.path``; a callable is returned as it is."""
    if not isinstance(ref, str):
        if not callable(ref):
            raise ConfigError(f"{ref!r} is not callable")
        return ref
    check_callable_ref(ref)
    module_name, _, attr_path = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"Cannot import module {module_name!r} for {ref!r}: {exc}") from None
    except (Exception, SystemExit) as exc:
        # The module was found but failed as it ran (a SyntaxError, a raise at import time):
        # a config problem like any other, never a traceback.
        raise ConfigError(f"Cannot import module {module_name!r} for {ref!r}: {import_failure(exc)}") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"Module {module_name!r} has no attribute {attr_path!r} (from {ref!r})") from None
    if not callable(obj):
        raise ConfigError(f"{ref!r} is not callable")
    return obj  # type: ignore[no-any-return]


def import_failure(exc: BaseException) -> str:
    """One line for a module that failed as it was imported: the error, and where for a SyntaxError."""
    if isinstance(exc, SyntaxError):
        where = f" ({Path(exc.filename).name}, line {exc.lineno})" if exc.filename else ""
        return f"{type(exc).__name__}: {exc.msg}{where}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Replace every secret value in ``text`` with asterisks (for messages built from responses)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "**********")
    return text


def tail(data: bytes | str, limit: int = 1000) -> str:
    """The last ``limit`` characters of some output, decoded leniently and stripped."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]
