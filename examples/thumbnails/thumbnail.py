"""The function of thumbnails.yaml: one thumbnail per image, with Pillow.

A pipe hands its function target the whole batch as a list; each item here is the pipe's
``target_input_template`` rendered for one file: ``{"bucket", "key", "size", "out"}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from eventbus import NonRetryableError

#: The longest side of a thumbnail, in pixels.
SIZE = 128


def thumbnail_name(key: str) -> str:
    """``2026/cat.jpg`` → ``2026/cat.thumb.png``: the same folders, PNG whatever came in."""
    path = Path(key)
    return str(path.with_name(f"{path.stem}.thumb.png"))


def make_thumbnails(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    made = []
    for item in batch:
        source = Path(item["bucket"]) / item["key"]
        target = Path(item["out"]) / thumbnail_name(item["key"])
        try:
            with Image.open(source) as image:
                image.thumbnail((SIZE, SIZE))
                target.parent.mkdir(parents=True, exist_ok=True)
                image.save(target, format="PNG")
                size = image.size
        except (UnidentifiedImageError, OSError) as exc:
            # Retrying will not make a broken file an image: straight to the dead letter.
            raise NonRetryableError(f"{item['key']} is not an image Pillow can read: {exc}") from exc
        made.append({"key": item["key"], "thumbnail": str(target), "width": size[0], "height": size[1]})
    return made
