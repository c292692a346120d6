"""Reading command-line arguments that are JSON text or ``@path`` to a file (``@-`` for stdin)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path


class ArgumentError(Exception):
    """A command-line value that cannot be used; the message is shown as is."""


def read_text_argument(value: str, what: str) -> str:
    """``value`` itself, or the contents of the file it names with a leading ``@``."""
    if not value.startswith("@"):
        return value
    target = value[1:]
    if target == "-":
        return sys.stdin.read()
    try:
        return Path(target).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArgumentError(f"{what} file not found: {target}") from None
    except UnicodeDecodeError:
        raise ArgumentError(f"{what} file is not valid UTF-8: {target}") from None
    except OSError as exc:
        raise ArgumentError(f"cannot read {what} file {target}: {exc.strerror}") from None


def fail(message: str, code: int = 2) -> int:
    print(message, file=sys.stderr)
    return code


def exit_now(code: int) -> None:
    """End the process at once, output flushed: no thread still running a delivery that was cut
    short (a sync function) gets to finish it while the interpreter waits for it at exit."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
