"""docs/tutorials/NAME.md shows examples/NAME as it is: each file it shows is the example's file,
and its drawing is what ``eventbus graph`` prints (the docs test runs that command on the page)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.examples.helpers import EXAMPLES, ROOT

TUTORIALS = sorted(p for p in (ROOT / "docs" / "tutorials").glob("*.md") if p.stem != "index")
_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_FILE = re.compile(r"<!--\s*docs-test:\s*file\s+(\S+)\s*-->\s*$")


def blocks(page: Path) -> list[tuple[str, str, str | None]]:
    """(language, text, the file its docs-test marker names) for each block of the page."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _FILE.search(before)
        found.append((match.group(1), match.group(2), marker.group(1) if marker else None))
    return found


def test_every_example_has_a_tutorial() -> None:
    folders = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    assert folders == [p.stem for p in TUTORIALS]


@pytest.mark.parametrize("page", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_the_files_a_tutorial_shows_are_the_examples(page: Path) -> None:
    shown = [(name, text) for _, text, name in blocks(page) if name]
    assert shown, f"{page.name} shows none of its example's files"
    for name, text in shown:
        if not (EXAMPLES / page.stem / name).exists():
            continue  # a sample made for the page (a five-row CSV), not a file of the example
        actual = (EXAMPLES / page.stem / name).read_text(encoding="utf-8")
        assert text == actual, f"{page.name}: the {name} it shows is not examples/{page.stem}/{name}"


@pytest.mark.parametrize("page", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_its_drawing_is_what_eventbus_graph_prints(page: Path) -> None:
    found = blocks(page)
    drawings = [text for language, text, _ in found if language == "mermaid"]
    printed = [
        "".join(output.splitlines(keepends=True)[1:])
        for language, text, _ in found
        if language == "console"
        for output in re.split(r"^(?=\$ )", text, flags=re.M)
        if output.startswith("$ eventbus graph ")
    ]
    assert drawings and printed, f"{page.name}: a mermaid drawing and the `eventbus graph` that prints it"
    assert drawings[0] == printed[0]
