"""The sample handler service over real HTTP, as the operator calls it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.paths import SAMPLES


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            str(SAMPLES / "handlers" / "app.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _event(process: str, phase: str, image: str = "nginx", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kattle.dev/v1alpha1",
        "kind": "ProcessEvent",
        "process": process,
        "phase": phase,
        "handler": "h",
        "attempt": 1,
        "idempotencyKey": "k",
        "run": {"name": "r", "namespace": "default", "uid": "u", "trigger": "manual"},
        "transitioning": "starting",
        "done": "running",
        "resource": {"metadata": {"name": "web-1", "uid": "1234"}, "spec": {"image": image}},
        "data": {},
        **extra,
    }


def _post(url: str, body: Any) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_allocates_the_same_ip_on_every_retry(service: str) -> None:
    first = _post(f"{service}/allocate-ip", _event("instance.create", "handler"))
    again = _post(f"{service}/allocate-ip", _event("instance.create", "handler", attempt=2))
    assert first == again
    status, reply = first
    assert status == 200
    assert reply["status"]["ip"] == reply["data"]["ip"]
    assert reply["status"]["ip"].startswith("10.42.")


def test_the_pre_listener_refuses_forbidden_images(service: str) -> None:
    assert _post(service, _event("instance.start", "pre", "forbidden/x")) == (
        200,
        {"error": "image forbidden/x is not allowed to start", "events": [], "runs": []},
    )
    assert _post(service, _event("instance.start", "pre"))[1]["message"] == (
        "image nginx is allowed"
    )


def test_wildcard_post_listener_posts_an_event(service: str) -> None:
    _, reply = _post(service, _event("volume.create", "post"))
    assert reply["events"] == [
        {"type": "Normal", "reason": "Recorded", "message": "volume.create of web-1 recorded"}
    ]


def test_unknown_processes_and_bad_requests_get_clear_answers(service: str) -> None:
    assert _post(service, _event("volume.remove", "handler"))[1]["error"] == (
        "this service has no handler for volume.remove (handler)"
    )
    status, reply = _post(service, {"process": "x"})
    assert status == 400
    assert reply["error"].startswith("not a ProcessEvent")
