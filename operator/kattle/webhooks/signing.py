"""Request signatures: the operator signs each handler call, handlers verify it.

Two schemes, both HMAC-SHA256 with a key from the Secret the ProcessHandler names:

- **Standard Webhooks** (standardwebhooks.com), which libraries in most languages verify:

      webhook-id: <the step's idempotency key>
      webhook-timestamp: 1764050000
      webhook-signature: v1,<base64 of the HMAC over "<id>.<timestamp>.<body>">

  A Secret value of the form `whsec_<base64>` is a Standard Webhooks secret: the HMAC key is
  its decoded bytes, and libraries take the same string. Any other value is the key's raw
  bytes; libraries then take `whsec_` followed by its base64.
- **Kattle's own** (deprecated, sent for one more release): HMAC over `<timestamp>.<body>`
  with the Secret's bytes as they are, in `X-Kattle-Timestamp` and `X-Kattle-Signature:
  v1=<hex>`; during key rotation several `v1=` values, comma-separated.

Either way a handler recomputes the signature over the raw body and refuses requests whose
signature differs or whose timestamp is outside a window (5 minutes by default), so a
captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

TIMESTAMP_HEADER = "X-Kattle-Timestamp"
SIGNATURE_HEADER = "X-Kattle-Signature"
STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
SECRET_PREFIX = b"whsec_"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """The request is not signed, not signed with our key, or not signed recently."""


def signature(key: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SCHEME}={mac}"


def standard_webhook(key: bytes) -> Webhook:
    """The Standard Webhooks signer for a Secret's value (see the module's docstring)."""
    key = key.strip()
    if not key:
        raise SignatureError("the signing key is empty")
    if key.startswith(SECRET_PREFIX):
        try:
            return Webhook(key.decode())
        except (ValueError, EmptyWebhookSecretError):  # binascii.Error is a ValueError
            raise SignatureError(
                "the signing key starts with whsec_ but the rest is not base64"
            ) from None
    return Webhook(key)


def standard_secret(key: bytes) -> str:
    """What to give a Standard Webhooks library for this Secret value."""
    key = key.strip()
    if key.startswith(SECRET_PREFIX):
        return key.decode()
    return SECRET_PREFIX.decode() + base64.b64encode(key).decode()


def sign(key: bytes, body: bytes, message_id: str, *, now: float | None = None) -> dict[str, str]:
    """The headers to send with `body`: both schemes'."""
    timestamp = int(time.time() if now is None else now)
    at = datetime.fromtimestamp(timestamp, UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_webhook(key).sign(message_id, at, body.decode()),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(key, timestamp, body),
    }


def verify(
    key: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raises SignatureError unless `body` was signed with `key` within `tolerance` seconds:
    by the Standard Webhooks headers when the request has them, else by Kattle's own."""
    lowered = {k.lower(): v for k, v in headers.items()}
    standard = "webhook-signature" in lowered
    names = STANDARD_HEADERS if standard else (TIMESTAMP_HEADER, SIGNATURE_HEADER)
    found = [lowered.get(name.lower()) for name in names]
    if not all(found):
        raise SignatureError(f"the request has no {' and '.join(names)}")
    raw_timestamp = lowered["webhook-timestamp" if standard else TIMESTAMP_HEADER.lower()]
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise SignatureError("the signature's timestamp is not a number") from None
    skew = (time.time() if now is None else now) - timestamp
    if abs(skew) > tolerance:
        raise SignatureError(
            f"the request was signed {abs(skew):.0f}s {'ago' if skew > 0 else 'ahead'}; "
            f"only {tolerance}s are accepted (a replay, or clocks out of step)"
        )
    if standard:
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise SignatureError("the body is not UTF-8") from None
        at = datetime.fromtimestamp(timestamp, UTC)
        expected = standard_webhook(key).sign(lowered["webhook-id"], at, text)
        offered = lowered["webhook-signature"].split(" ")
    else:
        expected = signature(key, timestamp, body)
        offered = [part.strip() for part in lowered[SIGNATURE_HEADER.lower()].split(",")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise SignatureError("the signature does not match: wrong key or changed body")
