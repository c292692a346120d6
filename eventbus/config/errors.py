"""Config problems: each one names the file, the line and the key path, with a one-line reason.

Validation collects every problem it can find before raising, so one run of ``eventbus validate``
shows them all. Messages never quote the values they complain about: a value may be a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eventbus.errors import ConfigError

__all__ = ["ConfigErrors", "KeyPath", "Problem", "format_path"]

#: A location inside a config document: mapping keys and list indexes from the top.
KeyPath = tuple[str | int, ...]


def format_path(path: Sequence[str | int]) -> str:
    """``("buses", "orders", "rules", "big", "targets", 0, "http")`` -> ``buses.orders.rules.big.targets[0].http``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config file."""

    file: str
    line: int | None
    path: KeyPath
    reason: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        key = format_path(self.path)
        return f"{where} {key}: {self.reason}" if key else f"{where}: {self.reason}"


class ConfigErrors(ConfigError):
    """One or more ``Problem``s; ``str()`` lists them one a line, in file and line order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0, format_path(p.path)))
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid config")
