"""kattle-sdk as a handler author gets it: the wheel `make sdk` builds, installed into a
fresh venv from PyPI as the sample handler image installs it (hack/build_sdk.py's share of
the image lock, hashes checked, then the wheel), and the sample handler service served
from that venv answering a signed ProcessEvent over real HTTP.

No control plane; it needs PyPI (or the pip index configured) for the dependencies.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from kattle.sdk.testing import event
from kattle.webhooks.signing import sign
from tests.support.paths import REPO, SAMPLES, load_hack_module

build_sdk = load_hack_module("build_sdk")
KEY = b"sample-handlers-key"


@dataclass
class SdkVenv:
    wheel: Path
    python: Path
    install_seconds: float

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Python of the venv, isolated (-I): no PYTHONPATH, no user site, not the repo's
        folders, so only what the wheel installed can be imported."""
        return subprocess.run(
            [str(self.python), "-I", *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.python.parent,
            check=False,
        )


def _pip(python: Path, *args: str) -> None:
    result = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"pip {' '.join(args)}:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> SdkVenv:
    folder = tmp_path_factory.mktemp("kattle-sdk")
    wheel = build_sdk.build_wheel(folder / "dist")
    requirements = folder / "requirements.txt"
    requirements.write_text(
        build_sdk.locked_requirements((REPO / "requirements" / "image.txt").read_text())
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True, timeout=120)
    python = folder / "venv" / "bin" / "python"
    # The steps of samples/handlers/Dockerfile.
    _pip(python, "install", "--quiet", "--require-hashes", "--no-deps", "-r", str(requirements))
    _pip(python, "install", "--quiet", "--no-deps", str(wheel))
    _pip(python, "check")
    return SdkVenv(wheel, python, time.monotonic() - started)


def test_the_wheel_holds_the_listed_modules_and_declares_the_dependencies(sdk: SdkVenv) -> None:
    with zipfile.ZipFile(sdk.wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode()
    assert sorted(n for n in names if ".dist-info/" not in n) == sorted(build_sdk.modules())
    required = [
        line.split(":", 1)[1].strip()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:")
    ]
    assert sorted(str(Requirement(r)) for r in required) == sorted(
        str(Requirement(r)) for r in build_sdk.dependencies()
    )
    assert f"Version: {build_sdk.version()}" in metadata.splitlines()
    print(
        f"{sdk.wheel.name}: {sdk.wheel.stat().st_size} bytes; venv and install: "
        f"{sdk.install_seconds:.1f}s"
    )


@pytest.mark.parametrize("module", ["kopf", "kubernetes", "pydot", "prometheus_client"])
def test_the_operators_dependencies_are_not_there(sdk: SdkVenv, module: str) -> None:
    result = sdk.run("-c", f"import {module}")
    assert result.returncode != 0
    assert f"No module named '{module}'" in result.stderr


def test_the_sdk_imports_from_the_venv_and_prints_manifests(sdk: SdkVenv) -> None:
    code = (
        "import kattle, kattle.sdk.testing\n"
        "from kattle.sdk import HandlerApp\n"
        "print(kattle.__file__)"
    )
    result = sdk.run("-c", code)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_relative_to(sdk.python.parents[1])
    manifests = sdk.run(
        str(SAMPLES / "handlers" / "app.py"), "--print-manifests", "ns/handlers:8080"
    )
    assert manifests.returncode == 0, manifests.stderr
    assert "kind: ProcessHandler" in manifests.stdout


@pytest.fixture(scope="module")
def service(sdk: SdkVenv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    key_file = tmp_path_factory.mktemp("signing") / "key"
    key_file.write_bytes(KEY + b"\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            str(sdk.python),
            "-I",
            str(SAMPLES / "handlers" / "app.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env={**os.environ, "KATTLE_SIGNING_KEY_FILE": str(key_file)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            pytest.fail(f"the sample handler service exited:\n{stderr}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail("the sample handler service did not answer /healthz within 20 s")


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_sample_handlers_answer_a_signed_event_from_the_slim_venv(service: str) -> None:
    sent = event("instance.create", name="web-1", uid="4b7e9c1a-0000-4000-8000-00000000beef")
    body = json.dumps(sent.to_wire()).encode()  # as the operator sends it
    status, reply = _post(f"{service}/allocate", body, sign(KEY, body, sent.idempotency_key))
    assert status == 200, reply
    assert isinstance(reply["status"], dict)
    assert str(reply["status"]["ip"]).startswith("10.42.")
    assert reply["message"] == f"allocated {reply['status']['ip']}"
    # The key is checked in the slim venv too: unsigned and mis-signed requests are refused.
    assert _post(f"{service}/allocate", body, {})[0] == 401
    assert _post(f"{service}/allocate", body, sign(b"another key", body, "x"))[0] == 401
