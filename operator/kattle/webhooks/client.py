"""Calls one handler webhook and turns whatever happens into a reply or a clear error.

Every failure names the handler, the URL and what went wrong (refused, timed out, HTTP
status, unreadable or oversized reply), because that message ends up on the object's
status and in the run's log, where the person debugging will read it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import Mapping

import aiohttp
from pydantic import ValidationError

from kattle.api.processhandler import ProcessHandlerSpec
from kattle.api.webhook import MAX_REPLY_BYTES, ProcessEvent, ProcessReply
from kattle.kube.client import KubeClient
from kattle.webhooks.secrets import SecretCache, SecretUnavailableError
from kattle.webhooks.signing import sign


class HandlerCallError(Exception):
    """A call failed: the message says which handler, which URL and why."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


def webhook_url(spec: ProcessHandlerSpec, overrides: Mapping[str, str]) -> str:
    """The URL to call. A Service maps to its cluster DNS name, or to an override.

    Overrides (`namespace/name` to a base URL) let an operator running outside the cluster
    (development, tests) reach in-cluster handler Services, e.g. through a port-forward.
    """
    config = spec.client_config
    if config.url:
        return config.url
    service = config.service
    assert service is not None  # the API server guarantees exactly one of url and service
    override = overrides.get(f"{service.namespace}/{service.name}")
    if override:
        return override.rstrip("/") + service.path
    return f"{service.scheme}://{service.name}.{service.namespace}.svc:{service.port}{service.path}"


class WebhookClient:
    """One connection pool for every handler call."""

    def __init__(
        self,
        *,
        service_overrides: Mapping[str, str] | None = None,
        kube: KubeClient | None = None,
    ) -> None:
        self.service_overrides = dict(service_overrides or {})
        self.secrets = SecretCache(kube)
        self._tls_contexts: dict[str, ssl.SSLContext] = {}
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256),
            headers={"User-Agent": "kattle-operator", "Content-Type": "application/json"},
        )

    async def close(self) -> None:
        await self._session.close()

    def _tls(self, spec: ProcessHandlerSpec) -> ssl.SSLContext | None:
        """A context trusting the registration's caBundle; None for the system roots."""
        bundle = spec.client_config.ca_bundle
        if not bundle:
            return None
        context = self._tls_contexts.get(bundle)
        if context is None:
            try:
                pem = base64.b64decode(bundle).decode()
                context = ssl.create_default_context(cadata=pem)
            except (ValueError, ssl.SSLError) as error:
                raise HandlerCallError(
                    f"the caBundle is not base64 PEM certificates: {error}"
                ) from None
            self._tls_contexts[bundle] = context
        return context

    async def call(self, name: str, spec: ProcessHandlerSpec, event: ProcessEvent) -> ProcessReply:
        url = webhook_url(spec, self.service_overrides)
        where = f"handler {name} ({url})"
        body = json.dumps(event.to_wire()).encode()
        headers: dict[str, str] = {}
        if spec.signing_secret_ref is not None:
            try:
                key = await self.secrets.key(spec.signing_secret_ref)
            except SecretUnavailableError as error:
                raise HandlerCallError(f"{where}: cannot sign the request: {error}") from None
            headers.update(sign(key, body))
        tls = self._tls(spec) if url.startswith("https://") else None
        try:
            async with asyncio.timeout(spec.timeout_seconds):
                async with self._session.post(
                    url, data=body, headers=headers, ssl=tls if tls is not None else True
                ) as response:
                    raw = await _read_bounded(response, where)
                    status = response.status
        except TimeoutError:
            raise HandlerCallError(
                f"{where} did not answer within {spec.timeout_seconds}s", timeout=True
            ) from None
        except aiohttp.ClientConnectorCertificateError as error:
            raise HandlerCallError(
                f"{where}: its TLS certificate was not trusted "
                f"({'caBundle' if tls is not None else 'system roots'}): "
                f"{error.certificate_error}"
            ) from None
        except aiohttp.ClientConnectorError as error:
            raise HandlerCallError(f"{where} could not be reached: {error.os_error}") from None
        except aiohttp.ClientError as error:
            raise HandlerCallError(f"{where} failed: {error}") from None
        if status >= 300:
            excerpt = raw[:300].decode(errors="replace").strip()
            raise HandlerCallError(f"{where} answered HTTP {status}: {excerpt or '(no body)'}")
        if not raw.strip():
            return ProcessReply()
        try:
            return ProcessReply.model_validate_json(raw)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'reply'}: {e['msg']}"
                for e in error.errors()[:5]
            )
            raise HandlerCallError(f"{where} sent an invalid reply: {problems}") from None


async def _read_bounded(response: aiohttp.ClientResponse, where: str) -> bytes:
    declared = response.content_length
    if declared is not None and declared > MAX_REPLY_BYTES:
        raise HandlerCallError(
            f"{where} sent a reply of {declared} bytes, over the limit of {MAX_REPLY_BYTES} bytes"
        )
    chunks = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise HandlerCallError(
                f"{where} sent a reply over the limit of {MAX_REPLY_BYTES} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)
