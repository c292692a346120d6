"""Who may use the console, and the guards around it: sessions, CSRF tokens, the CSP.

The console lets in whom the API lets in. A browser cannot sign requests or add an
``Authorization`` header to a page load, so it signs in once with a credential the API accepts
(one of ``server.api_keys``, or an access key id with its secret from ``server.credentials``) and
gets a session cookie: HMAC-signed with a key made at start (a restart signs everyone out),
``HttpOnly``, ``SameSite=Strict``, scoped to the console's path, valid for ``SESSION_SECONDS``.
Scripts and tests may instead send what the API takes (``Authorization: Bearer KEY`` or a SigV4
signature) with each request. A server without credentials (loopback only) lets everyone in, as
its API does.

Every action (a POST) carries a CSRF token tied to the session (``csrf_token`` form field or
``X-CSRF-Token`` header), and a browser's ``Origin``/``Sec-Fetch-Site`` must say it came from the
console itself; a request that authenticates with an ``Authorization`` header is exempt (no
other site can make a browser send one). WebSockets must come from the console's own origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from starlette.datastructures import Headers

from eventbus.config.server import ServerSettings
from eventbus.server.auth import Authenticator
from eventbus.server.errors import ApiError

__all__ = ["CSP", "SESSION_COOKIE", "Guard", "Session"]

SESSION_COOKIE = "eventbus_console"
SESSION_SECONDS = 12 * 3600

#: Scripts, styles and images from the console's own static files only: nothing inline, nothing
#: from elsewhere; no framing; forms post back to the console only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True, slots=True)
class Session:
    """A browser's session: ``id`` ties the CSRF token to it; ``signed_in`` once a credential was
    shown (always, on a server without credentials)."""

    id: str
    signed_in: bool
    expires: int


class Guard:
    def __init__(self, settings: ServerSettings, authenticator: Authenticator) -> None:
        self.settings = settings
        self.auth = authenticator
        self._key = secrets.token_bytes(32)
        self._api_keys = [k.get_secret_value().encode() for k in settings.api_keys]
        self._secrets = {c.access_key_id: c.secret_access_key.get_secret_value() for c in settings.credentials}

    @property
    def open(self) -> bool:
        """No credentials configured: everyone is let in (the server listens on loopback)."""
        return self.auth.anonymous

    # -- sessions ----------------------------------------------------------------------------

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def new_session(self, signed_in: bool = False) -> Session:
        return Session(secrets.token_urlsafe(18), signed_in or self.open, int(time.time()) + SESSION_SECONDS)

    def cookie_value(self, session: Session) -> str:
        body = f"{session.id}.{int(session.signed_in)}.{session.expires}"
        return f"{body}.{self._sign(body)}"

    def read_cookie(self, value: str | None) -> Session | None:
        """The session a cookie holds, if its signature is ours and it has not expired."""
        if not value:
            return None
        body, _, signature = value.rpartition(".")
        if not body or not hmac.compare_digest(self._sign(body), signature):
            return None
        parts = body.split(".")
        if len(parts) != 3 or not parts[2].isdigit() or parts[1] not in ("0", "1"):
            return None
        expires = int(parts[2])
        if expires < time.time():
            return None
        return Session(parts[0], parts[1] == "1" or self.open, expires)

    def csrf_token(self, session: Session) -> str:
        return self._sign(f"csrf:{session.id}")

    def check_csrf(self, session: Session | None, token: str | None) -> bool:
        return session is not None and token is not None and hmac.compare_digest(self.csrf_token(session), token)

    # -- credentials -------------------------------------------------------------------------

    def credential_ok(self, *, api_key: str = "", access_key_id: str = "", secret_access_key: str = "") -> bool:
        """Whether the sign-in form was given a credential the API accepts."""
        if api_key:
            presented = api_key.strip().encode()
            # Every key compared, so the time taken does not say which one was close.
            return any([hmac.compare_digest(presented, key) for key in self._api_keys])
        if access_key_id and secret_access_key:
            secret = self._secrets.get(access_key_id.strip())
            return secret is not None and hmac.compare_digest(secret.encode(), secret_access_key.encode())
        return False

    def header_auth(self, method: str, raw_path: str, query: str, headers: Headers, body: bytes = b"") -> bool | None:
        """``None`` without an ``Authorization`` header; else whether the API would let it in."""
        if "authorization" not in headers:
            return None
        try:
            self.auth.check(method, raw_path, query, list(headers.items()), body)
        except ApiError:
            return False
        return True

    # -- where a request came from -----------------------------------------------------------

    @staticmethod
    def same_origin(headers: Headers, scheme: str) -> bool:
        """A browser's request from the console's own pages (or from no browser at all)."""
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = headers.get("origin")
        if origin is None:
            return True
        host = headers.get("host", "")
        http = {"ws": "http", "wss": "https"}.get(scheme, scheme)
        return origin in (f"{http}://{host}", f"{scheme}://{host}")
