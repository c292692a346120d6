"""Secrets masked by value, in every encoding they take on their way out of the process.

A secret is registered when the config that holds it is validated: every secret field is of the
``Secret`` type below (a ``SecretStr`` that registers its value), and a password written in a URL
(``nats://user:pw@host``) is registered by the model that holds the URL. ``mask(text)`` then
replaces each registered secret, and each form it takes once encoded: URL-encoded (``quote``,
``quote_plus``, either hex case), JSON- and repr-escaped, base64 (what HTTP Basic sends).

Masking happens twice. At the source, messages that leave the process (a target's error, a
dead letter's ``ERROR_MESSAGE``, a log field) are built with ``mask``. Then every log record is
masked as it is made, whatever handler or formatter later prints it: the first registration
installs a ``logging`` log-record factory that masks the record's message (eventbus's own
structured events, whose fields structlog's ``ProcessorFormatter`` renders, and any library's
text, httpx's request lines among them), its traceback and stack. Applications that log secrets
through structlog themselves can add ``mask_processor`` to their chain, and ``MaskSecretsFilter``
masks records on a handler or logger of their choosing.

A secret stays registered while the object that holds it lives (the ``SecretStr``, the model), so
a process that loads many configs (tests, reloads) does not mask the secrets of configs long gone.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import threading
import weakref
from collections import deque
from collections.abc import Iterable, MutableMapping
from typing import Annotated, Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

from pydantic import AfterValidator, SecretStr

__all__ = [
    "MASK",
    "MaskSecretsFilter",
    "Secret",
    "error_text",
    "forms",
    "install",
    "mask",
    "mask_processor",
    "mask_value",
    "redact_url",
    "register",
    "register_url",
]

MASK = "**********"

_lock = threading.Lock()
_counts: dict[str, int] = {}
# Finalizers may run in the middle of anything (even inside ``register``): they only queue the
# value here, and the next registration or mask takes it off the count.
_released: deque[str] = deque()
_pattern: re.Pattern[str] | None = None
_dirty = False
_installed = False


def _percent_lower(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def forms(secret: str) -> set[str]:
    """``secret`` and every encoding of it that ``mask`` replaces (all non-empty)."""
    if not secret:
        return set()
    raw = secret.encode("utf-8", "surrogatepass")
    found = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    found |= {_percent_lower(f) for f in found}
    # Escaped once or twice: a JSON string inside a repr (a log field that is a dict), a repr
    # inside JSON (a rendered log line written as JSON)...
    for _ in range(2):
        found |= {json.dumps(f)[1:-1] for f in found}
        found |= {json.dumps(f, ensure_ascii=False)[1:-1] for f in found}
        found |= {repr(f)[1:-1] for f in found}
    return {f for f in found if f}


def register(value: str, owner: object = None) -> None:
    """Mask ``value`` from now on: while ``owner`` lives, or for good when there is none."""
    global _dirty
    if not isinstance(value, str) or not value:
        return
    if owner is not None:
        # An owner that cannot be weakly referenced keeps its secret registered for good.
        with contextlib.suppress(TypeError):
            weakref.finalize(owner, _released.append, value)
    with _lock:
        _counts[value] = _counts.get(value, 0) + 1
        _dirty = True
    install()


def register_url(url: str, owner: object = None) -> None:
    """Register the password written in ``url`` (``scheme://user:password@host``), if any."""
    password = _url_password(url)
    if password:
        register(password, owner)
        register(unquote(password), owner)


def redact_url(url: str) -> str:
    """``url`` with the password in its user info replaced by the mask (for messages)."""
    password = _url_password(url)
    if not password:
        return url
    scheme, _, rest = url.partition("://")
    userinfo, _, host = rest.rpartition("@")
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:{MASK}@{host}"


def _url_password(url: str) -> str | None:
    if "@" not in url or "://" not in url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    netloc = parts.netloc
    userinfo = netloc.rpartition("@")[0]
    if ":" not in userinfo:
        # A single credential before "@" (nats://token@host) is a token: a secret too.
        return userinfo or None
    return userinfo.partition(":")[2] or None


def _register_secret(value: SecretStr) -> SecretStr:
    register(value.get_secret_value(), value)
    return value


#: A ``SecretStr`` whose value is masked by value everywhere (use it for every secret field).
Secret = Annotated[SecretStr, AfterValidator(_register_secret)]


def _current() -> re.Pattern[str] | None:
    global _pattern, _dirty
    if _released or _dirty:
        with _lock:
            while _released:
                value = _released.popleft()
                left = _counts.get(value, 0) - 1
                if left > 0:
                    _counts[value] = left
                else:
                    _counts.pop(value, None)
                _dirty = True
            if _dirty:
                every: set[str] = set()
                for value in _counts:
                    every |= forms(value)
                # Longest first, so a secret that contains another is masked whole.
                ordered = sorted(every, key=lambda f: (-len(f), f))
                _pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
                _dirty = False
    return _pattern


def mask(text: str) -> str:
    """``text`` with every registered secret, in every encoding, replaced by ``**********``."""
    pattern = _current()
    if pattern is None or not isinstance(text, str):
        return text
    return pattern.sub(MASK, text)


def error_text(exc: BaseException, limit: int = 2048) -> str:
    """Why something failed, as logs and dead letters tell it: the exception's message with
    secrets masked, then cut to ``limit`` characters (masked first, so the cut cannot leave half
    a secret unrecognised). An exception that is not one of eventbus's (no ``error_code``: a bug
    in a target, a library's error) is prefixed with its type, which is half the story."""
    text = str(exc)
    if getattr(exc, "error_code", None) is None:
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return mask(text)[:limit]


def mask_value(value: Any) -> Any:
    """``value`` with secrets masked: strings, and the items of dicts, lists and tuples, in a copy;
    any other object whose repr shows a secret becomes its masked repr."""
    pattern = _current()
    if pattern is None:
        return value
    return _mask_deep(value, pattern, 0)


def _mask_deep(value: Any, pattern: re.Pattern[str], depth: int) -> Any:
    if isinstance(value, str):
        return pattern.sub(MASK, value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth < 20:
        if isinstance(value, dict):
            items = {
                _mask_deep(k, pattern, depth + 1): _mask_deep(v, pattern, depth + 1) for k, v in value.items()
            }
            if type(value) is not dict:
                # A dict of a class of its own (eventbus's LogEvent renders itself): keep the class.
                with contextlib.suppress(Exception):
                    return type(value)(items)
            return items
        if isinstance(value, list | tuple):
            masked = [_mask_deep(v, pattern, depth + 1) for v in value]
            return masked if isinstance(value, list) else tuple(masked)
    try:
        shown = repr(value)
    except Exception:
        return value
    shown_masked = pattern.sub(MASK, shown)
    return value if shown_masked == shown else shown_masked


def mask_processor(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """A structlog processor that masks every value of the event, for an application's own
    structlog loggers (put it just before the renderer); eventbus's records are masked already."""
    pattern = _current()
    if pattern is None:
        return event_dict
    for key, value in list(event_dict.items()):
        event_dict[key] = _mask_deep(value, pattern, 0)
    return event_dict


class MaskSecretsFilter(logging.Filter):
    """A stdlib logging filter (for a handler or a logger) that masks each record's text."""

    def filter(self, record: logging.LogRecord) -> bool:
        _mask_record(record)
        return True


def _mask_record(record: logging.LogRecord) -> None:
    pattern = _current()
    if pattern is None:
        return
    if isinstance(record.msg, dict):
        # eventbus's structured events (and structlog's, through ProcessorFormatter) are dicts.
        record.msg = _mask_deep(record.msg, pattern, 0)
    else:
        try:
            text = record.getMessage()
        except Exception:
            return
        masked = pattern.sub(MASK, text)
        if masked != text:
            record.msg, record.args = masked, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = pattern.sub(MASK, logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = pattern.sub(MASK, record.stack_info)


def install() -> None:
    """Mask every ``logging`` record from now on, with a log-record factory wrapped around the
    current one. Idempotent; called by the first registration."""
    global _installed
    if _installed:
        return
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def masking_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _mask_record(record)
            return record

        logging.setLogRecordFactory(masking_factory)
        _installed = True


def registered() -> Iterable[str]:
    """The values registered now (for tests)."""
    _current()
    return tuple(_counts)
