"""``${ENV_VAR}`` and ``${file:PATH}`` in config values, so secrets never sit in the file itself.

``${NAME}`` is the environment variable (an error when unset), ``${NAME:-fallback}`` has a
fallback, ``${file:PATH}`` is a file's contents without its final newline (relative paths start
at the config file's folder), and ``$${`` writes a literal ``${``. Problems name the variable or
file, never a value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eventbus.config.errors import KeyPath, Problem
from eventbus.config.load import Document

__all__ = ["interpolate"]

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def interpolate(document: Document, environ: Mapping[str, str] | None = None) -> list[Problem]:
    """Replace every reference in ``document.data`` in place; return the problems found."""
    env = os.environ if environ is None else environ
    problems: list[Problem] = []
    document.data = _walk(document.data, (), document, env, problems)
    return problems


def _walk(value: Any, path: KeyPath, doc: Document, env: Mapping[str, str], problems: list[Problem]) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, (*path, k), doc, env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, (*path, i), doc, env, problems) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        return _substitute(value, path, doc, env, problems)
    return value


def _substitute(
    text: str, path: KeyPath, doc: Document, env: Mapping[str, str], problems: list[Problem]
) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        body = match.group(1)
        if body.startswith("file:"):
            return _read_secret_file(body[5:], path, doc, problems)
        name, sep, fallback = body.partition(":-")
        if not _NAME.match(name):
            problems.append(
                doc.problem(path, f"${{{body}}} is not a variable reference: use ${{NAME}} or ${{file:PATH}}")
            )
            return ""
        if name in env:
            return env[name]
        if sep:
            return fallback
        problems.append(doc.problem(path, f"environment variable {name} is not set"))
        return ""

    return _REFERENCE.sub(replace, text)


def _read_secret_file(raw: str, path: KeyPath, doc: Document, problems: list[Problem]) -> str:
    where = Path(raw.strip()).expanduser()
    if not where.is_absolute():
        where = doc.base_dir / where
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(doc.problem(path, f"secret file not found: {where}"))
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(doc.problem(path, f"cannot read secret file {where}: {type(exc).__name__}"))
        return ""
    return text[:-1] if text.endswith("\n") else text
