"""Signed handler calls, end to end: the operator signs with a Secret, the SDK verifies."""

from __future__ import annotations

import base64
import json
import uuid

from kattle.sdk import HandlerApp, ProcessEvent, ProcessReply
from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.operator import OperatorProcess
from tests.support.sdk_server import serving
from tests.support.world import World, event_reasons, event_table, wait_for


def _secret(kubectl: Kubectl, namespace: str, value: bytes) -> str:
    name = f"secret-{uuid.uuid4().hex[:6]}"
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"key": base64.b64encode(value).decode()},
        }
    )
    return name


def test_a_signed_request_is_verified_and_a_wrong_key_refused(
    world: World, kubectl: Kubectl
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    app = HandlerApp(signing_key=b"the right key")
    seen: list[str] = []

    @app.on("*.go")
    async def handle(event: ProcessEvent) -> ProcessReply:
        seen.append(event.idempotency_key)
        return ProcessReply(message="verified")

    with serving(app) as url:
        right = _secret(kubectl, world.namespace, b"the right key")
        handler = world.handler(
            "signed",
            [go],
            f"{url}/go",
            retryLimit=0,
            signingSecretRef={"namespace": world.namespace, "name": right},
        )
        world.wait_plan(go, 1)
        world.create("a")
        world.wait_state("a", "requested")
        log = world.wait_run(world.run(go, "a"))
        assert log["phase"] == "Succeeded", log
        assert log["handlerCalls"][0]["message"] == "verified"
        assert len(seen) == 1

        wrong = _secret(kubectl, world.namespace, b"a wrong key")
        world.handler(
            "signed",
            [go],
            f"{url}/go",
            retryLimit=0,
            signingSecretRef={"namespace": world.namespace, "name": wrong},
        )
        world.wait_handler(handler)
        world.create("b")
        world.wait_state("b", "requested")
        log = world.wait_run(world.run(go, "b"))
        assert log["phase"] == "Failed"
        assert "HTTP 401" in log["message"]
        assert "the signature does not match" in log["message"]
        assert len(seen) == 1

        world.handler(
            "signed",
            [go],
            f"{url}/go",
            retryLimit=0,
            signingSecretRef={"namespace": world.namespace, "name": "missing"},
        )
        status = world.wait_handler(handler)
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "ReferenceUnavailable"), ready
        assert f"signing key: Secret {world.namespace}/missing does not exist" in ready["message"]
        world.create("c")
        world.wait_state("c", "requested")
        log = world.wait_run(world.run(go, "c"))
        assert f"handler {handler}" in log["message"]
        assert (
            f"cannot sign the request: Secret {world.namespace}/missing does not exist"
            in (log["message"])
        )


def test_a_bearer_token_from_a_secret_is_sent_and_a_wrong_one_refused(
    world: World, kubectl: Kubectl
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    app = HandlerApp(bearer_token="the token")

    @app.on("*.go")
    async def handle(_: ProcessEvent) -> ProcessReply:
        return ProcessReply(message="authenticated")

    with serving(app) as url:
        for obj, token, phase in [("a", b"the token\n", "Succeeded"), ("b", b"a guess", "Failed")]:
            secret = _secret(kubectl, world.namespace, token)
            handler = world.handler(
                "token",
                [go],
                f"{url}/go",
                retryLimit=0,
                bearerTokenSecretRef={"namespace": world.namespace, "name": secret},
            )
            world.wait_handler(handler)
            world.create(obj)
            world.wait_state(obj, "requested")
            log = world.wait_run(world.run(go, obj))
            assert log["phase"] == phase, log
        assert "HTTP 401" in log["message"]
        assert "missing or wrong bearer token" in log["message"]


def test_secrets_stay_out_of_runs_events_and_logs_even_when_a_handler_echoes_them(
    world: World, kubectl: Kubectl, handler_server: HandlerServer, operator: OperatorProcess
) -> None:
    """A handler may put what it received into an error (a 401 page that prints the
    Authorization header, a debug message): the operator records it without the secrets."""
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    token, key = f"token-{uuid.uuid4().hex}", f"key-{uuid.uuid4().hex}"
    refs = {
        "bearerTokenSecretRef": {
            "namespace": world.namespace,
            "name": _secret(kubectl, world.namespace, token.encode()),
        },
        "signingSecretRef": {
            "namespace": world.namespace,
            "name": _secret(kubectl, world.namespace, key.encode()),
        },
    }
    echo, loud = f"/{world.type}/echo", f"/{world.type}/loud"
    handler_server.script(echo, Reply(f"bad header: Bearer {token}".encode(), status=401))
    handler_server.script(
        loud,
        Reply(
            {
                "error": f"signed with {key}",
                "events": [{"type": "Warning", "reason": "Debug", "message": f"saw {token}"}],
            }
        ),
    )
    world.handler("echo", [go], handler_server.url(echo), retryLimit=0, **refs)
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    first = world.wait_run(world.run(go, "a"))
    assert "answered HTTP 401: bad header: Bearer [redacted]" in first["message"]

    handler = world.handler("echo", [go], handler_server.url(loud), retryLimit=0, **refs)
    world.wait_handler(handler)
    world.create("b")
    world.wait_state("b", "requested")
    second = world.wait_run(world.run(go, "b"))
    assert "signed with [redacted]" in second["message"]
    # Events are posted in the background: the handler's and the run's own.
    wait_for(
        "b's Debug and ProcessFailed Events",
        lambda: {"Debug", "ProcessFailed"} <= event_reasons(kubectl, world, "b"),
    )

    recorded = "\n".join(
        [
            json.dumps([world.pi(r["metadata"]["name"]) for r in world.runs(n)] + [world.get(n)])
            for n in ("a", "b")
        ]
        + [event_table(kubectl, world, n) for n in ("a", "b")]
        + [operator.log.read_text()]
    )
    assert "saw [redacted]" in recorded
    assert token not in recorded
    assert key not in recorded
