"""Request signatures: what the operator sends verifies; anything else is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kattle.webhooks.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    sign,
    signature,
    verify,
)

KEY = b"s3cret"
BODY = b'{"process":"instance.start"}'
NOW = 1_764_050_000.0


def test_a_signed_request_verifies() -> None:
    verify(KEY, sign(KEY, BODY, now=NOW), BODY, now=NOW + 10)


def test_header_names_are_case_insensitive() -> None:
    headers = {k.lower(): v for k, v in sign(KEY, BODY, now=NOW).items()}
    verify(KEY, headers, BODY, now=NOW)


@pytest.mark.parametrize(
    ("case", "key", "body", "at", "message"),
    [
        ("tampered body", KEY, BODY + b" ", NOW, "does not match"),
        ("wrong key", b"other", BODY, NOW, "does not match"),
        ("stale", KEY, BODY, NOW + 301, "signed 301s ago"),
        ("from the future", KEY, BODY, NOW - 400, "signed 400s ahead"),
    ],
)
def test_bad_requests_are_refused(
    case: str, key: bytes, body: bytes, at: float, message: str
) -> None:
    with pytest.raises(SignatureError, match=message):
        verify(key, sign(KEY, BODY, now=NOW), body, now=at)


def test_unsigned_and_malformed_requests_are_refused() -> None:
    with pytest.raises(SignatureError, match="has no"):
        verify(KEY, {}, BODY, now=NOW)
    with pytest.raises(SignatureError, match="not a number"):
        verify(KEY, {TIMESTAMP_HEADER: "soon", SIGNATURE_HEADER: "v1=x"}, BODY, now=NOW)


def test_any_of_several_signatures_may_match_during_rotation() -> None:
    headers = {
        TIMESTAMP_HEADER: str(int(NOW)),
        SIGNATURE_HEADER: f"{signature(b'old', int(NOW), BODY)}, {signature(KEY, int(NOW), BODY)}",
    }
    verify(KEY, headers, BODY, now=NOW)


@given(st.binary(max_size=64), st.binary(max_size=256), st.binary(max_size=256))
def test_fuzzed_signatures_never_verify_another_body(key: bytes, body: bytes, other: bytes) -> None:
    headers = sign(key, body, now=NOW)
    if other != body:
        with pytest.raises(SignatureError):
            verify(key, headers, other, now=NOW)


@given(
    st.dictionaries(
        st.sampled_from([TIMESTAMP_HEADER, SIGNATURE_HEADER, "X-Other"]), st.text(max_size=80)
    )
)
def test_fuzzed_headers_raise_only_signature_errors(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        verify(KEY, headers, BODY, now=NOW)
