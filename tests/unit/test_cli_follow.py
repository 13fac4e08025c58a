"""`kattle run --wait`: what it prints as a run goes, and how it exits (issue 16, finding 5)."""

from __future__ import annotations

from typing import Any

import pytest

from kattle.cli.run import _Shown, outcome


def _pi(process: str, phase: str, reason: str, message: str = "") -> dict[str, Any]:
    return {
        "metadata": {"name": f"web.{process.partition('.')[2]}-x"},
        "spec": {"process": process},
        "status": {"phase": phase, "exitReason": reason, "message": message},
    }


START_FAILED = _pi("instance.start", "Failed", "OnError", "image not allowed")
STOP_DONE = _pi("instance.stop", "Succeeded", "Done")


@pytest.mark.parametrize(
    ("ended", "code", "last"),
    [
        ([STOP_DONE], 0, None),
        ([_pi("instance.start", "Succeeded", "Chained"), STOP_DONE], 0, None),
        ([START_FAILED], 1, None),
        # The asked-for process failed; its onError process ended well: still a failure,
        # and the last line says which process failed.
        (
            [START_FAILED, STOP_DONE],
            1,
            "Failed: instance.start ended Failed (OnError): image not allowed",
        ),
        ([STOP_DONE, _pi("instance.stop", "Canceled", "Canceled")], 1, None),
    ],
)
def test_the_exit_code_and_last_line(
    ended: list[dict[str, Any]], code: int, last: str | None
) -> None:
    assert outcome(ended) == (code, last)


def test_retrying_follows_the_call_that_failed(capsys: pytest.CaptureFixture[str]) -> None:
    pi = {
        "status": {
            "phase": "Retrying",
            "message": "down",
            "transitions": [
                {
                    "field": "state",
                    "from": "stopped",
                    "to": "starting",
                    "time": "2026-01-01T00:00:01Z",
                }
            ],
            "handlerCalls": [
                {
                    "phase": "pre",
                    "handler": "check",
                    "attempt": 1,
                    "outcome": "Error",
                    "message": "down",
                    "start": "2026-01-01T00:00:02Z",
                }
            ],
        }
    }
    assert not _Shown().show(pi)
    assert capsys.readouterr().out.splitlines() == [
        "  state: stopped -> starting",
        "  pre check (attempt 1): Error: down",
        "Retrying: down",
    ]
