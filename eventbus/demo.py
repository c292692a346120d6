"""``make demo``: the quickest look at eventbus on the embedded default."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eventbus import Pattern

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def main() -> int:
    spec = json.loads((EXAMPLES / "patterns.json").read_text(encoding="utf-8"))
    pattern = Pattern(spec["pattern"])
    print(f"pattern: {pattern.to_json()}")
    for number, event in enumerate(spec["events"], 1):
        reasons = pattern.explain(event)
        print(f"event {number}: {'match' if not reasons else 'no match'}")
        for reason in reasons:
            print(f"    {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
