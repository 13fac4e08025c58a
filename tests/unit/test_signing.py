"""Request signatures: what the operator sends verifies, with Kattle's own code and with the
Standard Webhooks library; anything else is refused."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook

from kattle.webhooks.signing import (
    SIGNATURE_HEADER,
    STANDARD_HEADERS,
    TIMESTAMP_HEADER,
    SignatureError,
    sign,
    signature,
    standard_secret,
    verify,
)

KEY = b"s3cret"
BODY = b'{"process":"instance.start"}'
NOW = 1_764_050_000.0
ID = "run-uid/0/instance-allocate-ip"


def legacy(headers: dict[str, str]) -> dict[str, str]:
    """Only Kattle's own headers, as a handler written for the last release reads them."""
    return {k: v for k, v in headers.items() if k not in STANDARD_HEADERS}


def test_a_signed_request_verifies() -> None:
    verify(KEY, sign(KEY, BODY, ID, now=NOW), BODY, now=NOW + 10)
    verify(KEY, legacy(sign(KEY, BODY, ID, now=NOW)), BODY, now=NOW + 10)


@pytest.mark.parametrize(
    "secret",
    [b"s3cret", b"whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef")],
    ids=["raw key", "whsec_ secret"],
)
def test_the_standard_webhooks_library_verifies_what_the_operator_sends(secret: bytes) -> None:
    headers = sign(secret, BODY, ID)
    assert headers["webhook-id"] == ID
    # The library as a handler author uses it, given what docs/protocol.md says to give it.
    assert Webhook(standard_secret(secret)).verify(BODY, headers) == {"process": "instance.start"}
    verify(secret, headers, BODY)


def test_a_whsec_secret_is_given_to_libraries_as_it_is() -> None:
    secret = b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    assert standard_secret(secret) == secret.decode()
    assert standard_secret(b"s3cret") == "whsec_" + base64.b64encode(b"s3cret").decode()
    with pytest.raises(SignatureError, match="not base64"):
        sign(b"whsec_!!!", BODY, ID)


@pytest.mark.parametrize("scheme", ["standard", "legacy"])
def test_the_timestamp_window_holds_for_both_schemes(scheme: str) -> None:
    headers = sign(KEY, BODY, ID, now=NOW - 400)
    with pytest.raises(SignatureError, match="400s ago"):
        verify(KEY, headers if scheme == "standard" else legacy(headers), BODY, now=NOW)


def test_header_names_are_case_insensitive() -> None:
    headers = {k.lower(): v for k, v in sign(KEY, BODY, ID, now=NOW).items()}
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
        verify(key, sign(KEY, BODY, ID, now=NOW), body, now=at)
    with pytest.raises(SignatureError, match=message):
        verify(key, legacy(sign(KEY, BODY, ID, now=NOW)), body, now=at)


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


@given(
    st.binary(min_size=1, max_size=64).filter(lambda k: k.strip() and not k.startswith(b"whsec_")),
    st.text(max_size=256),
    st.binary(max_size=256),
)
def test_fuzzed_signatures_never_verify_another_body(key: bytes, text: str, other: bytes) -> None:
    body = text.encode()
    headers = sign(key, body, ID, now=NOW)
    if other != body:
        for offered in (headers, legacy(headers)):
            with pytest.raises(SignatureError):
                verify(key, offered, other, now=NOW)


@given(
    st.dictionaries(
        st.sampled_from([TIMESTAMP_HEADER, SIGNATURE_HEADER, *STANDARD_HEADERS, "X-Other"]),
        st.text(max_size=80),
    )
)
def test_fuzzed_headers_raise_only_signature_errors(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        verify(KEY, headers, BODY, now=NOW)
