"""Signed calls with a service's app key and app secret (ModelArts "App authentication", the
SDK-HMAC-SHA256 scheme of its API gateway), as an alternative to sending a key in a header.

The client sends two headers:

    X-Sdk-Date: 20261129T091500Z                         (UTC; within 15 minutes of the gateway's clock)
    Authorization: SDK-HMAC-SHA256 Access=<app key>, SignedHeaders=host;x-sdk-date, Signature=<hex>

    canonical request = METHOD \\n
                        path exactly as sent, with a trailing "/" added when it has none \\n
                        query: name=value pairs sorted, each side percent-encoded (RFC 3986) and joined by & \\n
                        one "name:value\\n" per signed header (lower-case names, trimmed values, in SignedHeaders order) \\n
                        SignedHeaders (lower-case, ";"-separated, sorted) \\n
                        hex SHA-256 of the body
    string to sign    = "SDK-HMAC-SHA256\\n" + X-Sdk-Date + "\\n" + hex SHA-256 of the canonical request
    Signature         = hex HMAC-SHA256(app secret, string to sign)

`sign_headers` computes the two headers for a client (see the call guide). Signed headers must
include x-sdk-date, so a captured request stops working after 15 minutes. The secret is never
stored: it is an HMAC of the app key under the console's secret key (`app_secret_for`), shown once
when the app key is created; changing ATELIER_SECRET_KEY invalidates every app secret.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta, timezone as dt_timezone
from urllib.parse import parse_qsl, quote, urlsplit

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SKEW = timedelta(minutes=15)
AUTH_RE = re.compile(r"^SDK-HMAC-SHA256\s+Access=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-fA-F]+)\s*$")


class SignatureError(ValueError):
    """A signed request that does not verify; the message says why."""


def app_secret_for(app_key: str) -> str:
    """The app secret of `app_key`: derived, so the console never stores it."""
    from django.conf import settings

    return hmac.new(settings.SECRET_KEY.encode(), f"atelier.deployment.app-secret:{app_key}".encode(),
                    hashlib.sha256).hexdigest()[:40]


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def canonical_request(method: str, path: str, query: str, headers: dict[str, str], signed: list[str],
                      body: bytes) -> str:
    uri = path if path.endswith("/") else path + "/"
    pairs = sorted((_encode(k), _encode(v)) for k, v in parse_qsl(query, keep_blank_values=True))
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed)
    return "\n".join([method.upper(), uri, canonical_query, canonical_headers, ";".join(signed),
                      hashlib.sha256(body).hexdigest()])


def signature(secret: str, date: str, canonical: str) -> str:
    to_sign = f"{ALGORITHM}\n{date}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def parse_authorization(value: str) -> tuple[str, list[str], str]:
    """(app key, signed header names, signature) of an SDK-HMAC-SHA256 Authorization header."""
    match = AUTH_RE.match(value.strip())
    if match is None:
        raise SignatureError("the Authorization header must read SDK-HMAC-SHA256 Access=<app key>, "
                             "SignedHeaders=<names>, Signature=<hex>")
    signed = match.group(2).lower().split(";")
    if signed != sorted(signed) or len(set(signed)) != len(signed):
        raise SignatureError("SignedHeaders must list distinct header names in alphabetical order")
    if "x-sdk-date" not in signed:
        raise SignatureError("SignedHeaders must include x-sdk-date")
    return match.group(1), signed, match.group(3).lower()


def verify(secret: str, *, method: str, path: str, query: str, headers: dict[str, str], body: bytes,
           now: datetime | None = None) -> None:
    """Raise SignatureError unless the request's signature is right and its date recent.
    `headers` has lower-case names."""
    _key, signed, given = parse_authorization(headers.get("authorization", ""))
    missing = [name for name in signed if name not in headers]
    if missing:
        raise SignatureError(f"the signed header {missing[0]} is not in the request")
    date = headers.get("x-sdk-date", "")
    try:
        when = datetime.strptime(date, DATE_FORMAT).replace(tzinfo=dt_timezone.utc)
    except ValueError:
        raise SignatureError("X-Sdk-Date must be a UTC time like 20261129T091500Z") from None
    now = now or datetime.now(dt_timezone.utc)
    if abs(now - when) > MAX_SKEW:
        raise SignatureError(f"X-Sdk-Date {date} is more than 15 minutes away from the gateway's time")
    expected = signature(secret, date, canonical_request(method, path, query, headers, signed, body))
    if not hmac.compare_digest(expected, given):
        raise SignatureError("the signature does not match the request")


def sign_headers(app_key: str, app_secret: str, *, method: str, url: str, body: bytes = b"",
                 headers: dict[str, str] | None = None, now: datetime | None = None) -> dict[str, str]:
    """Client side: the X-Sdk-Date and Authorization headers for a request (signs host and x-sdk-date)."""
    parts = urlsplit(url)
    date = (now or datetime.now(dt_timezone.utc)).strftime(DATE_FORMAT)
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    lowered.update({"host": parts.netloc, "x-sdk-date": date})
    signed = ["host", "x-sdk-date"]
    value = signature(app_secret, date, canonical_request(method, parts.path or "/", parts.query, lowered, signed,
                                                          body))
    return {"X-Sdk-Date": date,
            "Authorization": f"{ALGORITHM} Access={app_key}, SignedHeaders={';'.join(signed)}, Signature={value}"}
