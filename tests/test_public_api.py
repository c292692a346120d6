"""The flat public namespace: every name in ``__all__`` resolves, and importing stays light."""

from __future__ import annotations

import subprocess
import sys

import eventbus


def test_every_public_name_resolves() -> None:
    for name in eventbus.__all__:
        assert getattr(eventbus, name) is not None, name
    assert set(eventbus.__all__) <= set(dir(eventbus))


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        eventbus.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_import_does_not_load_the_heavy_parts() -> None:
    code = "import sys, eventbus; print(sorted(m for m in ('eventbus.bus', 'httpx', 'nats', 'uvicorn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_errors_form_one_hierarchy() -> None:
    assert issubclass(eventbus.PatternError, ValueError)
    assert issubclass(eventbus.ThrottledError, eventbus.RetryableError)
    assert issubclass(eventbus.ResourceNotFoundError, eventbus.NonRetryableError)
    assert eventbus.BusValidationError.error_code == "ValidationException"
    assert eventbus.RuleNotFoundError.error_code == "ResourceNotFoundException"
