"""The reply parser against anything a handler might send back."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kattle.api.webhook import OPERATOR_STATUS_FIELDS, ProcessReply
from kattle.webhooks.client import HandlerCallError, parse_reply, redact

WHERE = "handler h (http://127.0.0.1:1/h)"

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_reply_keys = st.sampled_from(
    ["data", "status", "chain", "retryAfterSeconds", "error", "message", "events", "other"]
)
_reply_shaped = st.dictionaries(_reply_keys, _json, max_size=6)


def _outcome(status: int, raw: bytes) -> ProcessReply | HandlerCallError:
    try:
        return parse_reply(WHERE, status, raw)
    except HandlerCallError as error:
        return error


@settings(max_examples=300)
@given(st.integers(min_value=100, max_value=599), st.binary(max_size=2048))
def test_any_bytes_are_a_reply_or_a_handler_error(status: int, raw: bytes) -> None:
    outcome = _outcome(status, raw)
    if isinstance(outcome, HandlerCallError):
        assert str(outcome).startswith(WHERE)
        assert outcome.reason in {"http_status", "invalid_reply"}


@settings(max_examples=300)
@given(_reply_shaped)
def test_json_of_any_shape_is_a_reply_or_says_what_is_wrong(document: dict[str, Any]) -> None:
    outcome = _outcome(200, json.dumps(document).encode())
    if isinstance(outcome, HandlerCallError):
        assert outcome.reason == "invalid_reply"
        assert f"{WHERE} sent an invalid reply: " in str(outcome)
    else:
        # What was accepted is what the runner acts on: the operator's fields stay its own.
        assert not OPERATOR_STATUS_FIELDS.intersection(outcome.status or {})


@given(st.sampled_from(sorted(OPERATOR_STATUS_FIELDS)), _json)
def test_a_reply_may_not_write_the_operators_status_fields(field: str, value: Any) -> None:
    raw = json.dumps({"status": {"ip": "10.0.0.7", field: value}}).encode()
    with pytest.raises(HandlerCallError, match=f"status: Value error, {field}: the operator's own"):
        parse_reply(WHERE, 200, raw)


@pytest.mark.parametrize(
    ("status", "raw", "expected"),
    [
        (200, b"", None),
        (204, b"  \n", None),
        (200, b"not json", "sent an invalid reply: reply: Invalid JSON"),
        (200, b"[]", "sent an invalid reply: reply: Input should be an object"),
        (200, b"[" * 100_000, "sent an invalid reply"),  # nesting: no RecursionError
        (200, b'{"retryAfterSeconds": 99999}', "less than or equal to 3600"),
        (500, b"x" * 10_000, "answered HTTP 500: " + "x" * 300),
        (302, b"", "answered HTTP 302: (no body)"),
    ],
)
def test_reply_errors_say_what_is_wrong(status: int, raw: bytes, expected: str | None) -> None:
    outcome = _outcome(status, raw)
    if expected is None:
        assert outcome == ProcessReply()
    else:
        assert isinstance(outcome, HandlerCallError)
        assert expected in str(outcome), str(outcome)
        assert len(str(outcome)) < 1000  # it goes into the run's log and the object's status


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bearer s3cr3t-token, again s3cr3t-token", "Bearer [redacted], again [redacted]"),
        ("quoted up to 300 characters: s3cr3t-to", "quoted up to 300 characters: [redacted]"),
        ("nothing secret here: s3c", "nothing secret here: s3c"),  # too short to tell
        ("key: abc", "key: abc"),  # a secret under 4 characters is never redacted
    ],
)
def test_secrets_are_redacted_even_when_cut_short(text: str, expected: str) -> None:
    assert redact(text, ["s3cr3t-token", "abc"]) == expected


SECRET = "p@ss/w0rd+key=\u00e9"


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: base64.b64encode(s.encode()).decode(),
        lambda s: base64.b64encode(s.encode()).decode().rstrip("="),
        lambda s: base64.urlsafe_b64encode(s.encode()).decode(),
        lambda s: urllib.parse.quote(s, safe=""),
        lambda s: urllib.parse.quote_plus(s),
        lambda s: json.dumps(s)[1:-1],
        lambda s: s.encode().hex(),
    ],
    ids=["base64", "base64-unpadded", "base64url", "url", "url-plus", "json", "hex"],
)
def test_secrets_are_redacted_in_the_encodings_an_error_page_echoes(
    encode: Callable[[str], str],
) -> None:
    text = f"400 bad credentials: {encode(SECRET)} (try again)"
    assert redact(text, [SECRET]) == "400 bad credentials: [redacted] (try again)"
