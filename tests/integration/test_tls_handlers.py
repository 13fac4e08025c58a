"""https handlers: trusted through caBundle, refused with a clear error otherwise."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import controlplane_module
from tests.support.handlers import HandlerServer
from tests.support.world import World


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HandlerServer, Path]]:
    """A handler server with a certificate for 127.0.0.1 from a CA of its own."""
    pki = controlplane_module.Pki(tmp_path_factory.mktemp("handler-pki"))
    pki.create()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.path("apiserver.crt"), pki.path("apiserver.key"))
    server = HandlerServer(ssl_context=context)
    try:
        yield server, pki.path("ca.crt")
    finally:
        server.close()


def _bundle(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_https_with_the_right_ca_works_and_the_wrong_ca_is_refused(
    world: World, tls_server: tuple[HandlerServer, Path], tmp_path: Path
) -> None:
    server, ca = tls_server
    other = controlplane_module.Pki(tmp_path / "other")
    other.create()
    world.define_type()
    good = world.process("good", ["requested"], "gooding", "good")
    bad = world.process("bad", ["requested"], "bading", "bad")
    url = server.url(f"/{world.type}/tls")
    world._apply_cluster(
        "processhandlers",
        {
            "apiVersion": "kattle.dev/v1alpha1",
            "kind": "ProcessHandler",
            "metadata": {"name": f"{world.type}-good"},
            "spec": {
                "processes": [good],
                "retryLimit": 0,
                "clientConfig": {"url": url, "caBundle": _bundle(ca)},
            },
        },
    )
    world._apply_cluster(
        "processhandlers",
        {
            "apiVersion": "kattle.dev/v1alpha1",
            "kind": "ProcessHandler",
            "metadata": {"name": f"{world.type}-bad"},
            "spec": {
                "processes": [bad],
                "retryLimit": 0,
                "clientConfig": {"url": url, "caBundle": _bundle(other.path("ca.crt"))},
            },
        },
    )
    world.handlers += [f"{world.type}-good", f"{world.type}-bad"]
    world.wait_plan(good, 1)
    world.wait_plan(bad, 1)
    world.create("a")
    world.create("b")
    world.wait_state("a", "requested")
    world.wait_state("b", "requested")
    assert world.wait_run(world.run(good, "a"))["phase"] == "Succeeded"
    log = world.wait_run(world.run(bad, "b"))
    assert log["phase"] == "Failed"
    assert "its TLS certificate was not trusted (caBundle)" in log["message"]
    assert "certificate verify failed" in log["message"]
    assert len(server.calls(f"/{world.type}/tls")) == 1
