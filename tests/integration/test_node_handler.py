"""A handler in another language (Node.js, no SDK) drives a process to done, signed."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.kube import Kubectl
from tests.support.node_sample import drive_go, node_sample
from tests.support.world import World


def test_the_node_sample_handler_drives_a_process_to_done(
    world: World, kubectl: Kubectl, tmp_path: Path
) -> None:
    with node_sample(kubectl, world.namespace, tmp_path) as (url, ref):
        log = drive_go(world, url, ref)
    assert log["phase"] == "Succeeded", log
    assert [c["message"] for c in log["handlerCalls"]] == [
        f"node approves {world.type}.go on a",
        "greeted",
    ]
    assert log["data"] == {"greeting": "hello from node, a"}
    status = world.status("a")
    assert (status["state"], status["greeting"]) == ("gone", "hello from node, a")


VERIFIER = Path(__file__).resolve().parent.parent / "support" / "node_verifier"


@pytest.mark.parametrize(
    "secret",
    [b"a raw shared key", b"whsec_" + base64.b64encode(b"32 random bytes, or so, for this")],
    ids=["raw key", "whsec_ secret"],
)
def test_the_npm_standard_webhooks_library_accepts_kattles_requests(
    world: World, kubectl: Kubectl, tmp_path: Path, secret: bytes
) -> None:
    """A handler in Node.js verifying with the npm `standardwebhooks` package, given the
    secret as docs/protocol.md says: the Secret's value if it is `whsec_...`, else `whsec_`
    and the base64 of the value. A handler given another secret refuses the request."""
    node = shutil.which("node")
    if node is None or not (VERIFIER / "node_modules" / "standardwebhooks").is_dir():
        pytest.fail("needs Node.js and `make npm-deps` (the npm standardwebhooks package)")
    name = f"sw-{uuid.uuid4().hex[:6]}"
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": world.namespace},
            "data": {"key": base64.b64encode(secret).decode()},
        }
    )
    given = (
        secret.decode()
        if secret.startswith(b"whsec_")
        else "whsec_" + base64.b64encode(secret).decode()
    )
    world.define_type()
    ref = {"namespace": world.namespace, "name": name}
    wrong_secret = "whsec_" + base64.b64encode(b"x" * 32).decode()
    servers, outcomes = [], {}
    try:
        for case, library_secret in (("right", given), ("wrong", wrong_secret)):
            (tmp_path / case).write_text(library_secret)
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            server = subprocess.Popen(
                [node, str(VERIFIER / "verifier.js"), str(port), str(tmp_path / case)],
                stdout=subprocess.PIPE,
                text=True,
            )
            servers.append(server)
            assert server.stdout is not None
            assert server.stdout.readline().strip() == "ready"
            # A process and a handler each: no run can reach the other case's server.
            process = world.process(case, ["requested"], f"{case}-ing", "gone")
            url = f"http://127.0.0.1:{port}/"
            world.handler(case, [process], url, signingSecretRef=ref, retryLimit=0)
            world.wait_plan(process, 1)
            world.create(case)
            world.wait_state(case, "requested")
            outcomes[case] = world.wait_run(world.run(process, case))
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
    right, wrong = outcomes["right"], outcomes["wrong"]
    assert right["phase"] == "Succeeded", right
    assert right["data"]["verifiedBy"] == "standardwebhooks (npm)"
    assert right["data"]["id"] == right["data"]["step"]  # webhook-id is the idempotency key
    assert wrong["phase"] == "Failed", wrong
    assert "refused by standardwebhooks (npm): No matching signature found" in wrong["message"]
