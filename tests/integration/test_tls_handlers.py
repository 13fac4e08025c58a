"""https handlers: trusted through caBundle, refused with a clear error otherwise."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import controlplane_module
from tests.support.handlers import HandlerServer
from tests.support.kube import Kubectl
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


def _https_handler(world: World, name: str, process: str, url: str, **config: Any) -> None:
    world._apply_cluster(
        "processhandlers",
        {
            "apiVersion": "kattle.dev/v1alpha1",
            "kind": "ProcessHandler",
            "metadata": {"name": f"{world.type}-{name}"},
            "spec": {
                "processes": [process],
                "retryLimit": 0,
                "clientConfig": {"url": url, **config},
            },
        },
    )
    world.handlers.append(f"{world.type}-{name}")


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
    _https_handler(world, "good", good, url, caBundle=_bundle(ca))
    _https_handler(world, "bad", bad, url, caBundle=_bundle(other.path("ca.crt")))
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


def test_a_ca_from_a_configmap_is_read_again_when_it_is_rotated(
    world: World, kubectl: Kubectl, tls_server: tuple[HandlerServer, Path], tmp_path: Path
) -> None:
    server, ca = tls_server
    other = controlplane_module.Pki(tmp_path / "other")
    other.create()
    name = f"{world.type}-ca"

    def publish(pem: Path) -> None:
        kubectl.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": world.namespace},
                "data": {"ca.crt": pem.read_text()},
            }
        )

    publish(other.path("ca.crt"))  # not the CA that signed the server's certificate
    world.define_type()
    go = world.process("go", ["requested"], "going", "gone")
    url = server.url(f"/{world.type}/rotated")
    ref = {"kind": "ConfigMap", "namespace": world.namespace, "name": name}
    _https_handler(world, "rotated", go, url, caFrom=ref)
    world.wait_plan(go, 1)
    for obj in ("a", "b"):
        world.create(obj)
        world.wait_state(obj, "requested")

    log = world.wait_run(world.run(go, "a"))
    assert log["phase"] == "Failed"
    assert (
        f"its TLS certificate was not trusted (caFrom ConfigMap {world.namespace}/{name} "
        "key ca.crt)" in log["message"]
    )

    publish(ca)  # the rotation: no restart, no change to the ProcessHandler
    log = world.wait_run(world.run(go, "b"))
    assert log["phase"] == "Succeeded", log
    assert len(server.calls(f"/{world.type}/rotated")) == 1


def test_a_ca_from_a_secret_is_trusted_and_a_missing_one_named(
    world: World, kubectl: Kubectl, tls_server: tuple[HandlerServer, Path]
) -> None:
    server, ca = tls_server
    name = f"{world.type}-ca"
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": world.namespace},
            "data": {"tls-ca": base64.b64encode(ca.read_bytes()).decode()},
        }
    )
    world.define_type()
    good = world.process("good", ["requested"], "gooding", "good")
    bad = world.process("bad", ["requested"], "bading", "bad")
    url = server.url(f"/{world.type}/secret")
    secret = {"kind": "Secret", "namespace": world.namespace, "name": name, "key": "tls-ca"}
    _https_handler(world, "good", good, url, caFrom=secret)
    _https_handler(world, "bad", bad, url, caFrom={**secret, "name": "no-such-secret"})
    world.wait_plan(good, 1)
    world.wait_plan(bad, 1)
    for obj in ("a", "b"):
        world.create(obj)
        world.wait_state(obj, "requested")
    assert world.wait_run(world.run(good, "a"))["phase"] == "Succeeded"
    log = world.wait_run(world.run(bad, "b"))
    assert log["phase"] == "Failed"
    assert (
        f"cannot read the CA to trust: Secret {world.namespace}/no-such-secret does not exist"
        in log["message"]
    )
    assert len(server.calls(f"/{world.type}/secret")) == 1


def test_a_handler_that_asks_for_a_client_certificate_gets_the_one_in_its_secret(
    world: World, kubectl: Kubectl, tmp_path: Path
) -> None:
    """Mutual TLS: the webhook only talks to clients with a certificate from its CA. The
    handler registered with clientCertificateSecretRef (a kubernetes.io/tls Secret) is
    served; one without it fails at the handshake, with a message that says so."""
    pki = controlplane_module.Pki(tmp_path / "pki")
    pki.create()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.path("apiserver.crt"), pki.path("apiserver.key"))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(pki.path("ca.crt"))
    server = HandlerServer(ssl_context=context)
    secret = f"{world.type}-client"
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": secret, "namespace": world.namespace},
            "data": {
                "tls.crt": _bundle(pki.path("admin.crt")),
                "tls.key": _bundle(pki.path("admin.key")),
            },
        }
    )
    try:
        world.define_type()
        with_cert = world.process("with", ["requested"], "withing", "done")
        without = world.process("without", ["requested"], "withouting", "done")
        url = server.url(f"/{world.type}/mtls")
        ref = {"namespace": world.namespace, "name": secret}
        bundle = _bundle(pki.path("ca.crt"))
        _https_handler(
            world, "with", with_cert, url, caBundle=bundle, clientCertificateSecretRef=ref
        )
        _https_handler(world, "without", without, url, caBundle=bundle)
        world.wait_plan(with_cert, 1)
        world.wait_plan(without, 1)
        for obj in ("a", "b"):
            world.create(obj)
            world.wait_state(obj, "requested")
        assert world.wait_run(world.run(with_cert, "a"))["phase"] == "Succeeded"
        refused = world.wait_run(world.run(without, "b"))
    finally:
        server.close()
    assert refused["phase"] == "Failed", refused
    assert "could not be reached" in refused["message"] or "failed" in refused["message"]
    assert len(server.calls(f"/{world.type}/mtls")) == 1
