"""Runs the Python blocks of one docs page in order, in one namespace (see test_docs.py).

``python docs_runner.py BLOCKS.json``: a JSON list of ``{"where": "page.md:12", "text": ...}``. A
block may ``await`` at top level; it then runs in an event loop of its own. The first block that
raises stops the run: its location and traceback are printed and the exit status is 1.
"""

from __future__ import annotations

import ast
import inspect
import json
import sys
import traceback
from pathlib import Path
from typing import Any


def main(spec: str) -> int:
    blocks = json.loads(Path(spec).read_text(encoding="utf-8"))
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for block in blocks:
        try:
            code = compile(block["text"], block["where"], "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(code, namespace)
            if inspect.iscoroutine(result):
                import anyio

                async def run(awaitable: Any = result) -> None:
                    await awaitable

                anyio.run(run)
        except BaseException:
            print(f"{block['where']}: this block failed", flush=True)
            traceback.print_exc()
            return 1
        print(f"{block['where']}: ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
