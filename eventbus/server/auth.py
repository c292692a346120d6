"""Who may call the API: SigV4 signatures, bearer API keys, or anyone on loopback.

- SigV4 (what boto3, the AWS SDKs, the AWS CLI and Terraform send): the signature is computed
  again here with botocore's own signer from the access key's secret the config declares
  (``server.credentials``), over the headers the client says it signed, and compared in constant
  time. The request's ``X-Amz-Date`` must be within ``max_clock_skew_seconds`` of now, as AWS asks.
- ``Authorization: Bearer KEY`` with a key of ``server.api_keys`` (curl, CloudEvents producers).
- With neither configured, every request is let in, which ``check_exposure`` allows only on a
  loopback address.

Refusals are ``ApiError``s with AWS's codes (``MissingAuthenticationTokenException``,
``UnrecognizedClientException``, ``InvalidSignatureException``), status 403; no refusal carries
a secret or says which part of a signature differed.
"""

from __future__ import annotations

import hmac
import re
from datetime import UTC, datetime

from eventbus.config.server import ServerSettings, is_loopback
from eventbus.errors import ConfigError
from eventbus.server.errors import ApiError

__all__ = ["Authenticator", "check_exposure"]

_SIGV4 = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)/aws4_request,\s*"
    r"SignedHeaders=(?P<headers>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)


def check_exposure(settings: ServerSettings, host: str) -> None:
    """Refuse to serve without credentials anywhere but on loopback."""
    if not settings.authenticated and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} without authentication: anyone who can reach it could put events "
            "and change rules. Declare server.credentials (SigV4 access keys) or server.api_keys (bearer "
            "keys) in the config, or listen on 127.0.0.1."
        )


class Authenticator:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._secrets = {c.access_key_id: c.secret_access_key.get_secret_value() for c in settings.credentials}
        self._keys = [k.get_secret_value().encode() for k in settings.api_keys]

    @property
    def anonymous(self) -> bool:
        return not self.settings.authenticated

    def check(
        self,
        method: str,
        raw_path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> None:
        """Let the request in, or raise ``ApiError`` (403) saying why not."""
        if self.anonymous:
            return
        lookup: dict[str, list[str]] = {}
        for name, value in headers:
            lookup.setdefault(name.lower(), []).append(value)
        authorization = (lookup.get("authorization") or [""])[0].strip()
        if authorization.lower().startswith("bearer "):
            presented = authorization[7:].strip().encode()
            if any(hmac.compare_digest(presented, key) for key in self._keys):
                return
            raise ApiError("UnrecognizedClientException", "The API key included in the request is invalid.", 403)
        if not authorization:
            raise ApiError("MissingAuthenticationTokenException", "Missing Authentication Token", 403)
        match = _SIGV4.match(authorization)
        if match is None:
            raise ApiError(
                "IncompleteSignatureException",
                "Authorization header requires Credential, SignedHeaders and Signature (AWS4-HMAC-SHA256), "
                "or Bearer with an API key.",
                403,
            )
        secret = self._secrets.get(match["key"])
        if secret is None:
            raise ApiError("UnrecognizedClientException", "The security token included in the request is invalid.", 403)
        amz_date = (lookup.get("x-amz-date") or [""])[0]
        try:
            when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise ApiError("IncompleteSignatureException", "X-Amz-Date is missing or not in the form 20250101T000000Z.", 403) from None
        skew = abs((datetime.now(UTC) - when).total_seconds())
        if skew > self.settings.max_clock_skew_seconds:
            raise ApiError(
                "InvalidSignatureException",
                f"Signature expired: {amz_date} is more than {self.settings.max_clock_skew_seconds:g} seconds "
                "away from the server's time.",
                403,
            )
        expected = _signature(
            method, raw_path, query, lookup, body, match["headers"].split(";"), amz_date,
            match["key"], secret, match["region"], match["service"],
        )
        if not hmac.compare_digest(expected, match["signature"]):
            raise ApiError(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.",
                403,
            )


def _signature(
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, list[str]],
    body: bytes,
    signed: list[str],
    amz_date: str,
    key: str,
    secret: str,
    region: str,
    service: str,
) -> str:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    host = ",".join(headers.get("host", [""]))
    url = f"http://{host}{raw_path}" + (f"?{query}" if query else "")
    request = AWSRequest(
        method=method,
        url=url,
        headers={name: ",".join(headers.get(name, [""])) for name in signed},
        data=body,
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(key, secret), service, region)
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))
