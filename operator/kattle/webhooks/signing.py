"""Request signatures: the operator signs each handler call, handlers verify it.

The signature is HMAC-SHA256 over `<timestamp>.<body>` with a key from the Secret the
ProcessHandler names, sent as two headers:

    X-Kattle-Timestamp: 1764050000
    X-Kattle-Signature: v1=5d41402abc4b2a76b9719d911017c592...

A handler recomputes it over the raw body and refuses requests whose signature differs or
whose timestamp is outside a window (5 minutes by default), so a captured request cannot be
replayed later. During key rotation several `v1=` values may be sent, comma-separated; one
matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Kattle-Timestamp"
SIGNATURE_HEADER = "X-Kattle-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """The request is not signed, not signed with our key, or not signed recently."""


def signature(key: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SCHEME}={mac}"


def sign(key: bytes, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The headers to send with `body`."""
    timestamp = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(key, timestamp, body)}


def verify(
    key: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raises SignatureError unless `body` was signed with `key` within `tolerance` seconds."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_timestamp = lowered.get(TIMESTAMP_HEADER.lower())
    raw_signature = lowered.get(SIGNATURE_HEADER.lower())
    if not raw_timestamp or not raw_signature:
        raise SignatureError(f"the request has no {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}")
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} is not a number") from None
    skew = (time.time() if now is None else now) - timestamp
    if abs(skew) > tolerance:
        raise SignatureError(
            f"the request was signed {abs(skew):.0f}s {'ago' if skew > 0 else 'ahead'}; "
            f"only {tolerance}s are accepted (a replay, or clocks out of step)"
        )
    expected = signature(key, timestamp, body)
    offered = [part.strip() for part in raw_signature.split(",")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise SignatureError("the signature does not match: wrong key or changed body")
