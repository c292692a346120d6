"""Writes the CSV the map reads: `python generate.py [ROWS] [PATH]` (1,000,000 rows, rows.csv).

The rows are the same for the same count (a seeded generator). One row in 10,000 has a negative
amount, which the function refuses: the map counts it as failed, with its line, and goes on.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

COUNTRIES = ["NL", "BE", "DE", "FR", "ES", "IT"]
#: Every this many rows, one the function refuses.
BAD_EVERY = 10_000


def generate(path: Path, rows: int, seed: int = 17) -> int:
    """Writes ``rows`` rows after a header; answers how many of them the function will refuse."""
    rnd = random.Random(seed)
    bad = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("id,customer,amount,country\n")
        for i in range(1, rows + 1):
            cents = rnd.randrange(1, 100_000)
            if i % BAD_EVERY == 0:
                cents, bad = -cents, bad + 1
            out.write(f"{i},customer-{rnd.randrange(100_000)},{cents / 100:.2f},{rnd.choice(COUNTRIES)}\n")
    return bad


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("rows.csv")
    refused = generate(target, count)
    print(f"{target}: {count:,} rows ({refused} the function will refuse)")
