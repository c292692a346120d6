from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"


def load_cases(name: str) -> list[dict[str, Any]]:
    path = CONFORMANCE / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def require_corpus(name: str) -> None:
    if not (CONFORMANCE / name).exists():
        pytest.skip(
            f"conformance corpus {CONFORMANCE / name} is absent (it sits in ../shared beside the checkout)"
        )


def case_params(name: str, cases: list[dict[str, Any]]) -> list[Any]:
    """``cases`` as test parameters named by case; without the corpus, one parameter that skips
    with the reason (pytest's own word for an empty list says nothing of where the corpus is)."""
    if not (CONFORMANCE / name).exists():
        reason = f"conformance corpus {CONFORMANCE / name} is absent (it sits in ../shared beside the checkout)"
        return [pytest.param(None, id="corpus-absent", marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(case, id=case["name"]) for case in cases]
