"""The Node.js sample handler (samples/handlers/node/handler.js) run on loopback for a test,
with its signing key in a Secret of the test's namespace."""

from __future__ import annotations

import base64
import contextlib
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.kube import Kubectl
from tests.support.paths import SAMPLES

KEY = b"node-shared-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("Node.js is needed for this test: install it (e.g. apt-get install nodejs)")
    return found


@contextlib.contextmanager
def node_sample(
    kubectl: Kubectl, namespace: str, folder: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """The sample's URL, once it listens, and the signingSecretRef for its key."""
    (folder / "key").write_bytes(KEY)
    port = free_port()
    server = subprocess.Popen(
        [
            node(),
            str(SAMPLES / "handlers" / "node" / "handler.js"),
            "--port",
            str(port),
            "--key-file",
            str(folder / "key"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert "kattle node handler" in server.stdout.readline()  # it listens
        secret = f"node-{uuid.uuid4().hex[:6]}"
        kubectl.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": secret, "namespace": namespace},
                "data": {"key": base64.b64encode(KEY).decode()},
            }
        )
        yield f"http://127.0.0.1:{port}/", {"namespace": namespace, "name": secret}
    finally:
        server.terminate()
        server.wait(10)


def drive_go(world: Any, url: str, ref: dict[str, str]) -> dict[str, Any]:
    """A `go` process with the sample as its pre-listener and its handler, run on a new
    object `a`: the run's final status."""
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    world.handler("node-pre", [go], url, phase="pre", signingSecretRef=ref, retryLimit=0)
    world.handler("node", [go], url, signingSecretRef=ref, retryLimit=0)
    world.wait_plan(go, 2)
    world.create("a")
    world.wait_state("a", "requested")
    final: dict[str, Any] = world.wait_run(world.run(go, "a"))
    return final
