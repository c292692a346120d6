"""A stand-in for a slow language model: deterministic, with a configurable delay, streamed.

The same prompt always gets the same reply (the words are drawn by a generator seeded with the
prompt), so tests and caches can rely on it. It waits ``GENAI_FIRST_TOKEN`` seconds before its
first word (0.5 s: the model "thinking") and ``GENAI_TOKEN_DELAY`` between words (0.05 s), and
yields word by word: behind ``/invoke`` a client gets the reply whole, or as server-sent events
with ``Accept: text/event-stream``; behind ``/jobs`` it follows the words over a WebSocket.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from typing import Any

import anyio

from eventbus import NonRetryableError

#: What the model knows to say.
TEXT = (
    "the event bus routes every order to its rule and each rule to the targets that "
    "matter while pipes carry records from queues through filters and enrichments so "
    "that no glue code is left to write test or wake up for at night"
)
WORDS = tuple(TEXT.split())

#: The longest reply a request may ask for, in words.
MAX_TOKENS = 256


def reply(prompt: str, max_tokens: int = 16) -> list[str]:
    """The words the model answers ``prompt`` with, each with its trailing space."""
    draw = random.Random(prompt)  # a str seed is hashed with SHA-512: the same in every process
    return [draw.choice(WORDS) + " " for _ in range(max_tokens)]


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


async def complete(request: Any) -> AsyncIterator[str]:
    """``{"prompt": TEXT, "max_tokens": N}`` → the reply, one word a chunk."""
    if not isinstance(request, dict) or not isinstance(request.get("prompt"), str) or not request["prompt"]:
        raise NonRetryableError('the request must be {"prompt": "some text", "max_tokens": 16}')
    max_tokens = request.get("max_tokens", 16)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 1 <= max_tokens <= MAX_TOKENS:
        raise NonRetryableError(f"max_tokens must be a whole number from 1 to {MAX_TOKENS}")
    await anyio.sleep(_seconds("GENAI_FIRST_TOKEN", 0.5))
    for index, word in enumerate(reply(request["prompt"], max_tokens)):
        if index:
            await anyio.sleep(_seconds("GENAI_TOKEN_DELAY", 0.05))
        yield word
