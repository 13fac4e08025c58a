"""`kattle call`: one ProcessEvent to a real local handler (the SDK's, on loopback), the
reply validated and printed, the exit code saying how it went."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kattle.cli.main import main
from kattle.sdk import HandlerApp, HandlerError, ProcessEvent, ProcessReply
from tests.support.sdk_server import serving

KEY = b"call-key"


def _app() -> HandlerApp:
    app = HandlerApp(signing_key=KEY)

    @app.on("instance.create")
    async def create(event: ProcessEvent) -> ProcessReply:
        image = event.resource["spec"].get("image", "")
        if image.startswith("forbidden/"):
            raise HandlerError(f"{image} is not allowed", permanent=True)
        return ProcessReply(data={"seen": event.data}, status={"image": image})

    return app


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "key").write_bytes(KEY)
    obj = {
        "apiVersion": "resources.kattle.dev/v1",
        "kind": "Instance",
        "metadata": {"name": "web-1", "uid": "u-1"},
        "spec": {"image": "nginx:1.27"},
    }
    (tmp_path / "web-1.yaml").write_text(yaml.safe_dump(obj))
    obj["spec"] = {"image": "forbidden/x"}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(obj))
    return tmp_path


def test_a_signed_call_prints_the_validated_reply(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serving(_app()) as url:
        code = main(
            [
                "call",
                f"{url}/",
                "--process",
                "instance.create",
                "--object",
                str(files / "web-1.yaml"),
                "--data",
                '{"owner": "alice"}',
                "--signing-key-file",
                str(files / "key"),
            ]
        )
    assert code == 0
    reply = yaml.safe_load(capsys.readouterr().out)
    assert reply == {
        "data": {"seen": {"owner": "alice"}},
        "status": {"image": "nginx:1.27"},
    }


def test_an_error_reply_and_a_refused_signature_exit_1(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serving(_app()) as url:
        bad = main(
            [
                "call",
                f"{url}/",
                "--process",
                "instance.create",
                "--object",
                str(files / "bad.yaml"),
                "--signing-key-file",
                str(files / "key"),
            ]
        )
        unsigned = main(
            [
                "call",
                f"{url}/",
                "--process",
                "instance.create",
                "--object",
                str(files / "web-1.yaml"),
            ]
        )
    assert (bad, unsigned) == (1, 1)
    err = capsys.readouterr().err
    assert "error: forbidden/x is not allowed" in err
    assert "HTTP 401" in err


def test_no_valid_reply_exits_2(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    event = json.loads(json.dumps({"process": "instance.create"}))
    (files / "event.json").write_text(json.dumps(event))
    assert main(["call", "http://127.0.0.1:9/", "--event", str(files / "event.json")]) == 1
    assert "not a valid ProcessEvent" in capsys.readouterr().err
    assert main(["call", "http://127.0.0.1:9/", "--process", "instance.create"]) == 2
    assert "no answer from http://127.0.0.1:9/" in capsys.readouterr().err
