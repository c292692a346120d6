"""examples/thumbnails: images dropped in a folder get thumbnails, run by ``eventbus run``."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from tests.examples.helpers import eventbus, eventually, example, running

FOLDER = example("thumbnails")
CONFIG = FOLDER / "thumbnails.yaml"


def test_its_config_tests_pass(tmp_path: Path) -> None:
    result = eventbus("test", str(CONFIG), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed, 0 failed" in result.stdout


def test_images_in_the_folder_get_thumbnails_and_a_broken_one_a_dead_letter(tmp_path: Path) -> None:
    incoming, out = tmp_path / "incoming", tmp_path / "thumbnails"
    (incoming / "2026").mkdir(parents=True)
    # There before the run starts: announced because the source says `existing: true`.
    Image.new("RGB", (640, 480), "red").save(incoming / "2026" / "cat.jpg")
    (incoming / "notes.txt").write_text("not an image, and not a suffix the filter takes")
    env = {"THUMBNAILS_IN": str(incoming), "THUMBNAILS_OUT": str(out)}

    with running("run", str(CONFIG), "--state", str(tmp_path / "state.db"), cwd=tmp_path, env=env) as run:
        first = out / "2026" / "cat.thumb.png"
        eventually(first.exists, f"{first} to be made\n{run.stderr}")
        # Dropped while it runs.
        Image.new("RGB", (300, 900), "blue").save(incoming / "tall.png")
        (incoming / "broken.png").write_bytes(b"not a PNG at all")
        second = out / "tall.thumb.png"
        failed = out / "failed.jsonl"
        eventually(lambda: second.exists() and failed.exists(), f"the rest\n{run.stderr}")
        assert run.stop() == 0, run.stderr

    with Image.open(first) as image:
        assert image.size == (128, 96)  # the longest side 128, the aspect ratio kept
    with Image.open(second) as image:
        assert image.size == (43, 128)
    (letter,) = [json.loads(line) for line in failed.read_text().splitlines()]
    assert letter["detail"]["object"]["key"] == "broken.png"
    assert sorted(p.name for p in out.rglob("*.png")) == ["cat.thumb.png", "tall.thumb.png"]
