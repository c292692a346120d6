"""Reading config files (YAML, TOML or JSON) into plain data, remembering each key's line.

The line of every mapping key and list item is kept in ``Document.lines`` so that a problem
found later, by the schema, can still point at ``orders.yaml:14``. YAML lines come from the
composer's node marks, JSON lines from a small position-tracking parser on top of the standard
decoder, and TOML lines from a light scan of table headers and ``key =`` lines (``tomllib`` gives
no positions); where a scan cannot tell, the nearest enclosing key's line stands in.
"""

from __future__ import annotations

import bisect
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from eventbus.config.errors import ConfigErrors, KeyPath, Problem

__all__ = ["Document", "load_document", "parse_document"]

SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}


@dataclass(slots=True)
class Document:
    """A config file's data and where each key of it was written."""

    file: str
    # Out of the repr: the data holds secrets as written (and as ${ENV} filled them in).
    data: Any = field(repr=False)
    lines: dict[KeyPath, int] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)
    #: Paths in ``data`` that were moved after reading, and where they were written: a target
    #: written ``{kind: http, endpoint: ...}`` is validated as ``{http: {endpoint: ...}}``.
    aliases: dict[KeyPath, KeyPath] = field(default_factory=dict)

    def written(self, path: KeyPath) -> KeyPath:
        """``path`` as the file writes it (moved keys put back where they were written)."""
        for end in range(len(path), 0, -1):
            origin = self.aliases.get(tuple(path[:end]))
            if origin is not None:
                return (*origin, *path[end:])
        return tuple(path)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor the loader saw."""
        path = self.written(path)
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def problem(self, path: KeyPath, reason: str) -> Problem:
        return Problem(self.file, self.line_of(path), self.written(path), reason)


def load_document(path: str | Path) -> Document:
    """Read and parse one file; unreadable or malformed files raise ``ConfigErrors``."""
    path = Path(path)
    name = str(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ConfigErrors([Problem(name, None, (), "unknown file type: use .yaml, .yml, .toml or .json")])
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigErrors([Problem(name, None, (), "file not found")]) from None
    except UnicodeDecodeError:
        raise ConfigErrors([Problem(name, None, (), "not valid UTF-8")]) from None
    except OSError as exc:
        raise ConfigErrors([Problem(name, None, (), f"cannot read: {exc.strerror}")]) from None
    document = parse_document(text, kind, name)
    document.base_dir = path.resolve().parent
    return document


def parse_document(text: str, kind: str, name: str = "<config>") -> Document:
    """Parse ``text`` as ``kind`` (``yaml``, ``json`` or ``toml``)."""
    document = Document(name, None)
    try:
        if kind == "yaml":
            document.data = _load_yaml(text, document)
        elif kind == "json":
            document.data = _JsonReader(text, document).read()
        elif kind == "toml":
            document.data = _load_toml(text, document)
            if _depth(document.data) > MAX_DEPTH:
                raise RecursionError
        else:
            raise ValueError(f"unknown config format {kind!r}")
    except RecursionError:
        raise ConfigErrors([Problem(name, None, (), "nested too deeply")]) from None
    if document.data is None:
        document.data = {}
    return document


#: More values than any sensible config holds (YAML aliases could otherwise expand without end).
MAX_NODES = 200_000

#: Deeper than any sensible config; beyond it parsers and validators would recurse for nothing.
MAX_DEPTH = 64


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return depth
        nxt: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                nxt.extend(item.values())
            elif isinstance(item, list):
                nxt.extend(item)
        level = nxt
    return depth


# -- YAML ------------------------------------------------------------------------------------


def _load_yaml(text: str, document: Document) -> Any:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(str(x) for x in (exc.context, exc.problem) if x) or "not valid YAML"
        raise ConfigErrors([Problem(document.file, line, (), f"not valid YAML: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigErrors([Problem(document.file, None, (), f"not valid YAML: {exc}")]) from None
    if node is None:
        return None
    problems: list[Problem] = []
    constructor = yaml.SafeLoader("")
    budget = [MAX_NODES]
    data = _yaml_node(node, (), document, constructor, problems, depth=0, budget=budget)
    if problems:
        raise ConfigErrors(problems)
    return data


def _yaml_node(
    node: yaml.Node,
    path: KeyPath,
    doc: Document,
    ctor: yaml.SafeLoader,
    problems: list[Problem],
    depth: int,
    budget: list[int],
) -> Any:
    if depth > MAX_DEPTH:
        problems.append(Problem(doc.file, node.start_mark.line + 1, path, "nested too deeply"))
        return None
    # Aliases share nodes, so a small file can expand exponentially ("billion laughs"): cap it.
    budget[0] -= 1
    if budget[0] < 0:
        if budget[0] == -1:
            problems.append(
                Problem(doc.file, node.start_mark.line + 1, path, "too many values (alias expansion?)")
            )
        return None
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(Problem(doc.file, line, path, "keys must be plain text"))
                continue
            # The key as written: YAML 1.1 would read ``on`` or ``yes`` as true, and ``1`` as a number.
            key = str(key_node.value)
            child = (*path, key)
            if key in out:
                problems.append(Problem(doc.file, line, child, "duplicate key"))
                continue
            doc.lines[child] = line
            out[key] = _yaml_node(value_node, child, doc, ctor, problems, depth + 1, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _yaml_node(item, (*path, index), doc, ctor, problems, depth + 1, budget)
            for index, item in enumerate(node.value)
        ]
    try:
        return ctor.construct_object(node)
    except yaml.YAMLError as exc:
        problems.append(Problem(doc.file, node.start_mark.line + 1, path, f"not valid YAML: {exc}"))
        return None


# -- JSON ------------------------------------------------------------------------------------


class _JsonReader:
    """The standard decoder for scalars and strings; objects and arrays walked here for lines."""

    _WS = re.compile(r"[ \t\n\r]*")

    def __init__(self, text: str, document: Document) -> None:
        self.text = text
        self.doc = document
        self.decoder = json.JSONDecoder()
        self.newlines = [m.start() for m in re.finditer("\n", text)]

    def line(self, index: int) -> int:
        return bisect.bisect_left(self.newlines, index) + 1

    def fail(self, index: int, reason: str) -> ConfigErrors:
        return ConfigErrors([Problem(self.doc.file, self.line(index), (), f"not valid JSON: {reason}")])

    def skip(self, index: int) -> int:
        match = self._WS.match(self.text, index)
        return match.end() if match else index

    def read(self) -> Any:
        index = self.skip(0)
        if index == len(self.text):
            return None
        value, end = self.value(index, (), 0)
        end = self.skip(end)
        if end != len(self.text):
            raise self.fail(end, "extra data after the document")
        return value

    def value(self, index: int, path: KeyPath, depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            raise self.fail(index, "nested too deeply")
        self.doc.lines.setdefault(path, self.line(index))
        text = self.text
        if index >= len(text):
            raise self.fail(index, "unexpected end of document")
        if text[index] == "{":
            return self.obj(index + 1, path, depth)
        if text[index] == "[":
            return self.array(index + 1, path, depth)
        try:
            return self.decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            raise self.fail(exc.pos, exc.msg) from None

    def obj(self, index: int, path: KeyPath, depth: int) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        index = self.skip(index)
        if self.text.startswith("}", index):
            return out, index + 1
        while True:
            if not self.text.startswith('"', index):
                raise self.fail(index, "expecting a property name in double quotes")
            try:
                key, index = json.decoder.scanstring(self.text, index + 1)  # type: ignore[attr-defined]
            except json.JSONDecodeError as exc:
                raise self.fail(exc.pos, exc.msg) from None
            child = (*path, key)
            if key in out:
                raise ConfigErrors([Problem(self.doc.file, self.line(index), child, "duplicate key")])
            self.doc.lines[child] = self.line(index)
            index = self.skip(index)
            if not self.text.startswith(":", index):
                raise self.fail(index, "expecting ':'")
            out[key], index = self.value(self.skip(index + 1), child, depth + 1)
            index = self.skip(index)
            if self.text.startswith("}", index):
                return out, index + 1
            if not self.text.startswith(",", index):
                raise self.fail(index, "expecting ',' or '}'")
            index = self.skip(index + 1)

    def array(self, index: int, path: KeyPath, depth: int) -> tuple[list[Any], int]:
        out: list[Any] = []
        index = self.skip(index)
        if self.text.startswith("]", index):
            return out, index + 1
        while True:
            item, index = self.value(index, (*path, len(out)), depth + 1)
            out.append(item)
            index = self.skip(index)
            if self.text.startswith("]", index):
                return out, index + 1
            if not self.text.startswith(",", index):
                raise self.fail(index, "expecting ',' or ']'")
            index = self.skip(index + 1)


# -- TOML ------------------------------------------------------------------------------------

_TOML_AT = re.compile(r"\(at line (\d+), column \d+\)")
_TOML_KEY_PART = re.compile(r"\s*(\"(?:[^\"\\]|\\.)*\"|'[^']*'|[A-Za-z0-9_\-]+)\s*")
_TOML_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def _load_toml(text: str, document: Document) -> Any:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_AT.search(message)
        line = int(match.group(1)) if match else None
        reason = _TOML_AT.sub("", message).strip()
        raise ConfigErrors([Problem(document.file, line, (), f"not valid TOML: {reason}")]) from None
    _scan_toml_lines(text, document)
    return data


def _toml_keys(text: str) -> list[str] | None:
    keys: list[str] = []
    index = 0
    while True:
        match = _TOML_KEY_PART.match(text, index)
        if not match:
            return None
        part = match.group(1)
        keys.append(json.loads(part) if part.startswith('"') else part.strip("'"))
        index = match.end()
        if index == len(text):
            return keys
        if text[index] != ".":
            return None
        index += 1


def _scan_toml_lines(text: str, document: Document) -> None:
    # A light scan, not a parser: it may miss keys inside multi-line values, never mislead.
    prefix: KeyPath = ()
    arrays: dict[KeyPath, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = _TOML_HEADER.match(raw)
        if header and line.startswith("["):
            keys = _toml_keys(header.group(2))
            if keys is None:
                continue
            table: KeyPath = tuple(keys)
            if header.group(1) == "[[":
                index = arrays.get(table, -1) + 1
                arrays[table] = index
                document.lines.setdefault(table, number)
                prefix = (*_resolve_arrays(table, arrays), index)
            else:
                prefix = _resolve_arrays(table, arrays)
            document.lines.setdefault(prefix, number)
            continue
        key_text, sep, _ = line.partition("=")
        if not sep:
            continue
        keys = _toml_keys(key_text.strip())
        if keys:
            document.lines.setdefault((*prefix, *keys), number)


def _resolve_arrays(table: KeyPath, arrays: dict[KeyPath, int]) -> KeyPath:
    # ``[a.b]`` after ``[[a]]`` means the last element of ``a``: put its index in the path.
    out: list[str | int] = []
    for end in range(1, len(table) + 1):
        out.append(table[end - 1])
        if end < len(table) and tuple(table[:end]) in arrays:
            out.append(arrays[tuple(table[:end])])
    return tuple(out)
