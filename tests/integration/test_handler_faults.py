"""Handlers that misbehave: every fault ends in a defined state with a message that says
which handler, which URL and what went wrong, and nobody else waits for it."""

from __future__ import annotations

import socket
import time

import pytest

from tests.support.handlers import HandlerServer, Reply
from tests.support.world import World

MB = 1024 * 1024


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_handler_that_hangs_times_out_with_a_clear_message(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    path = f"/{world.type}/hangs"
    handler_server.script(path, Reply({}, delay=3.0))
    world.handler("hangs", [go], handler_server.url(path), retryLimit=0, timeoutSeconds=1)
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    log = world.wait_run(world.run(go, "a"))
    assert (log["phase"], log["exitReason"]) == ("Failed", "TimedOut"), log
    assert "did not answer within 1s" in log["message"]
    assert log["handlerCalls"][0]["outcome"] == "Timeout"


def test_a_slow_handler_that_answers_within_its_timeout_succeeds(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    path = f"/{world.type}/slow"
    handler_server.script(path, Reply({"data": {"slow": True}}, delay=1.6))
    world.handler("slow", [go], handler_server.url(path), retryLimit=0, timeoutSeconds=2)
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    log = world.wait_run(world.run(go, "a"))
    assert (log["phase"], log["data"]) == ("Succeeded", {"slow": True})
    assert len(handler_server.calls(path)) == 1


@pytest.mark.parametrize(
    ("case", "reply", "expected"),
    [
        ("refused", None, "could not be reached"),
        ("reset", Reply(reset=True), "failed: "),
        ("not JSON", Reply(b"<html>oops</html>"), "sent an invalid reply: reply: Invalid JSON"),
        (
            "50 MB streamed",
            Reply(stream_bytes=50 * MB),
            f"sent a reply over the limit of {MB} bytes",
        ),
        (
            "50 MB declared",
            Reply(stream_bytes=2 * MB, declared_length=50 * MB),
            f"sent a reply of {50 * MB} bytes, over the limit of {MB} bytes",
        ),
        (
            "wrong shape",
            Reply({"retryAfterSeconds": "soon"}),
            "sent an invalid reply: retryAfterSeconds: Input should be a valid integer",
        ),
        (
            "the operator's fields",
            Reply({"status": {"state": "running", "activeRun": None}}),
            "sent an invalid reply: status: Value error, activeRun, state: the operator's own",
        ),
        (
            "server error",
            Reply({"detail": "db down"}, status=502),
            'HTTP 502: {"detail": "db down"}',
        ),
    ],
)
def test_a_bad_handler_fails_the_run_with_a_message_that_says_what_went_wrong(
    world: World, handler_server: HandlerServer, case: str, reply: Reply | None, expected: str
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    path = f"/{world.type}/bad"
    if reply is None:
        url = f"http://127.0.0.1:{_closed_port()}/bad"
    else:
        handler_server.script(path, reply)
        url = handler_server.url(path)
    handler = world.handler("bad", [go], url, retryLimit=0)
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    log = world.wait_run(world.run(go, "a"))
    assert log["phase"] == "Failed", case
    assert expected in log["message"], log["message"]
    assert f"handler {handler} ({url})" in log["message"]
    status = world.status("a")
    assert (status["state"], status["transitioning"]) == ("going", "error")
    assert expected in status["transitioningMessage"]


def test_hanging_handlers_do_not_hold_up_other_objects(
    world: World, handler_server: HandlerServer
) -> None:
    """Runs stuck in calls that hang hold their own objects only: a healthy process on
    another object finishes at its usual pace meanwhile."""
    world.define_type()
    stuck = world.process("stuck", ["requested"], "sticking", "stuck")
    quick = world.process("quick", ["requested"], "hurrying", "done")
    hang, fine = f"/{world.type}/hang", f"/{world.type}/fine"
    handler_server.script(hang, Reply({}, delay=20))
    world.handler("hang", [stuck], handler_server.url(hang), timeoutSeconds=15)
    world.handler("fine", [quick], handler_server.url(fine))
    world.wait_plan(stuck, 1)
    world.wait_plan(quick, 1)
    names = [f"s{i}" for i in range(8)]
    for name in [*names, "q"]:
        world.create(name)
    for name in [*names, "q"]:
        world.wait_state(name, "requested")
    for name in names:
        world.run(stuck, name)
    while len(handler_server.calls(hang)) < len(names):
        time.sleep(0.1)
    began = time.monotonic()
    log = world.wait_run(world.run(quick, "q"), timeout=10)
    assert log["phase"] == "Succeeded"
    assert time.monotonic() - began < 5
    assert all(world.status(name)["state"] == "sticking" for name in names)


def test_a_handler_may_not_write_another_state_machine_of_its_type(
    world: World, handler_server: HandlerServer
) -> None:
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    world.process("allocate", ["unallocated"], "allocating", "allocated", stateField="allocState")
    path = f"/{world.type}/sneaky"
    handler_server.script(path, Reply({"status": {"allocState": "allocated", "ip": "10.0.0.7"}}))
    handler = world.handler("sneaky", [go], handler_server.url(path), retryLimit=0)
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    log = world.wait_run(world.run(go, "a"))
    assert log["phase"] == "Failed"
    assert f"handler {handler} may not write status.allocState" in log["message"]
    assert "allocState" not in world.status("a")
    assert "ip" not in world.status("a")


def test_a_permanent_error_is_not_retried(world: World, handler_server: HandlerServer) -> None:
    """`permanent: true` next to `error`: the run fails at the first attempt although the
    handler may be retried ten times, and says why."""
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    path = f"/{world.type}/refuses"
    handler_server.script(path, Reply({"error": "size must be even", "permanent": True}))
    world.handler("refuses", [go], handler_server.url(path), retryLimit=10)
    world.wait_plan(go, 1)
    world.create("a")
    world.wait_state("a", "requested")
    final = world.wait_run(world.run(go, "a"))
    assert (final["phase"], final["exitReason"]) == ("Failed", "PermanentError"), final
    assert final["attempts"] == 1, final
    assert final["message"].endswith("size must be even (permanent: not retried)"), final
    assert len(handler_server.calls(path)) == 1
