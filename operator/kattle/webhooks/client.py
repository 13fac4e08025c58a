"""Calls one handler webhook and turns whatever happens into a reply or a clear error.

Every failure names the handler, the URL and what went wrong (refused, timed out, HTTP
status, unreadable or oversized reply), because that message ends up on the object's
status and in the run's log, where the person debugging will read it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import ssl
import tempfile
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from pydantic import ValidationError

from kattle.api.processhandler import ProcessHandlerSpec, SecretKeyReference
from kattle.api.webhook import MAX_REPLY_BYTES, ProcessEvent, ProcessReply
from kattle.kube.client import KubeClient
from kattle.observability import tracing
from kattle.webhooks.cloudevents import binary_headers
from kattle.webhooks.references import ReferenceReader, ReferenceUnavailableError
from kattle.webhooks.signing import sign

# Each distinct CA bundle gets one context; more than this many means rotation churn.
MAX_TLS_CONTEXTS = 64


class HandlerCallError(Exception):
    """A call failed: the message says which handler, which URL and why; `reason` says it
    in one word, for metrics (timeout, unreachable, tls, http_status, invalid_reply,
    too_large, configuration)."""

    def __init__(self, message: str, *, reason: str = "configuration") -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def timeout(self) -> bool:
        return self.reason == "timeout"


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


class UntrustedCertificateError(HandlerCallError):
    """The webhook's TLS certificate did not chain to the CAs trusted for it."""


@dataclass(frozen=True)
class Trust:
    """What an https call trusts: a context for given CAs (None: system roots), and whence."""

    context: ssl.SSLContext | None
    source: str


SYSTEM_ROOTS = Trust(None, "system roots")


class WebhookClient:
    """One connection pool for every handler call."""

    def __init__(
        self,
        *,
        service_overrides: Mapping[str, str] | None = None,
        kube: KubeClient | None = None,
    ) -> None:
        self.service_overrides = dict(service_overrides or {})
        self.references = ReferenceReader(kube)
        self._tls_contexts: dict[bytes, ssl.SSLContext] = {}  # by a digest of what made them
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256),
            headers={"User-Agent": "kattle-operator", "Content-Type": "application/json"},
        )

    async def close(self) -> None:
        await self._session.close()

    async def call(self, name: str, spec: ProcessHandlerSpec, event: ProcessEvent) -> ProcessReply:
        attributes = {
            "kattle.handler": name,
            "kattle.process": event.process,
            "kattle.phase": event.phase,
            "kattle.attempt": event.attempt,
            "kattle.idempotency_key": event.idempotency_key,
        }
        with tracing.span(f"handler {name}", attributes):
            return await self._call_traced(name, spec, event)

    async def _call_traced(
        self, name: str, spec: ProcessHandlerSpec, event: ProcessEvent
    ) -> ProcessReply:
        url = webhook_url(spec, self.service_overrides)
        where = f"handler {name} ({url})"
        body = json.dumps(event.to_wire()).encode()
        secrets: list[str] = []
        headers = {
            **binary_headers(event),
            **await self._headers(where, spec, body, event.idempotency_key, secrets),
        }
        tracing.inject(headers)
        try:
            reply = await self._call(where, url, spec, body, headers)
        except HandlerCallError as error:
            redacted = redact(str(error), secrets)
            if redacted == str(error):
                raise
            raise HandlerCallError(redacted, reason=error.reason) from None
        if not secrets:
            return reply
        # What ends up in the run's log, the object's status and Events.
        return reply.model_copy(
            update={
                "error": reply.error and redact(reply.error, secrets),
                "message": reply.message and redact(reply.message, secrets),
                "events": [
                    e.model_copy(update={"message": redact(e.message, secrets)})
                    for e in reply.events
                ],
            }
        )

    async def _call(
        self, where: str, url: str, spec: ProcessHandlerSpec, body: bytes, headers: dict[str, str]
    ) -> ProcessReply:
        https = url.startswith("https://")
        trust = await self._trust(where, spec) if https else SYSTEM_ROOTS
        try:
            return await self._post(where, url, body, headers, spec.timeout_seconds, trust)
        except UntrustedCertificateError:
            if spec.client_config.ca_from is None:
                raise
            # The CA may have been rotated since it was cached: read it again, and retry
            # only if it changed, so a wrong CA still fails on the first attempt.
            renewed = await self._trust(where, spec, fresh=True)
            if renewed.context is trust.context:
                raise
            return await self._post(where, url, body, headers, spec.timeout_seconds, renewed)

    async def _headers(
        self,
        where: str,
        spec: ProcessHandlerSpec,
        body: bytes,
        message_id: str,
        secrets: list[str],
    ) -> dict[str, str]:
        """The auth headers; the secret values used go into `secrets`, to be kept out of
        anything recorded (a handler may echo a header back in an error)."""
        headers: dict[str, str] = {}
        if spec.signing_secret_ref is not None:
            key = await self._secret(where, "sign the request", spec.signing_secret_ref)
            headers.update(sign(key, body, message_id))
            secrets.append(key.decode(errors="replace").strip())
        if spec.bearer_token_secret_ref is not None:
            token = await self._secret(where, "authenticate", spec.bearer_token_secret_ref)
            secrets.append(token.decode(errors="replace").strip())
            headers["Authorization"] = f"Bearer {secrets[-1]}"
        return headers

    async def _secret(self, where: str, purpose: str, ref: SecretKeyReference) -> bytes:
        try:
            return await self.references.value("Secret", ref.namespace, ref.name, ref.key)
        except ReferenceUnavailableError as error:
            raise HandlerCallError(f"{where}: cannot {purpose}: {error}") from None

    async def _trust(self, where: str, spec: ProcessHandlerSpec, *, fresh: bool = False) -> Trust:
        """The CAs from caBundle or caFrom (the system roots when neither is set), and the
        client certificate to present, if any."""
        pem, source = await self._ca(where, spec, fresh=fresh)
        identity = await self._identity(where, spec)
        if pem is None and identity is None:
            return SYSTEM_ROOTS
        return Trust(self._context(where, pem, source, identity), source)

    async def _ca(
        self, where: str, spec: ProcessHandlerSpec, *, fresh: bool
    ) -> tuple[bytes | None, str]:
        config = spec.client_config
        if config.ca_bundle:
            try:
                return base64.b64decode(config.ca_bundle, validate=True), "caBundle"
            except ValueError:
                raise HandlerCallError(f"{where}: the caBundle is not base64") from None
        ref = config.ca_from
        if ref is None:
            return None, SYSTEM_ROOTS.source
        source = f"caFrom {ref.kind} {ref.namespace}/{ref.name} key {ref.key}"
        try:
            pem = await self.references.value(
                ref.kind, ref.namespace, ref.name, ref.key, fresh=fresh
            )
        except ReferenceUnavailableError as error:
            raise HandlerCallError(f"{where}: cannot read the CA to trust: {error}") from None
        return pem, source

    async def _identity(self, where: str, spec: ProcessHandlerSpec) -> tuple[bytes, bytes] | None:
        """The client certificate and key (mutual TLS), from a kubernetes.io/tls Secret."""
        ref = spec.client_config.client_certificate_secret_ref
        if ref is None:
            return None
        try:
            cert = await self.references.value("Secret", ref.namespace, ref.name, "tls.crt")
            key = await self.references.value("Secret", ref.namespace, ref.name, "tls.key")
        except ReferenceUnavailableError as error:
            raise HandlerCallError(
                f"{where}: cannot read the client certificate: {error}"
            ) from None
        return cert, key

    def _context(
        self, where: str, pem: bytes | None, source: str, identity: tuple[bytes, bytes] | None
    ) -> ssl.SSLContext:
        # Keyed by a digest: the dict should not be one more place that holds private keys.
        parts = [pem or b"", *(identity or ())]
        cache_key = hashlib.sha256(b"\0".join(parts)).digest()
        context = self._tls_contexts.get(cache_key)
        if context is None:
            try:
                context = ssl.create_default_context(cadata=pem.decode() if pem else None)
            except (UnicodeDecodeError, ssl.SSLError) as error:
                raise HandlerCallError(
                    f"{where}: {source} does not hold PEM certificates: {error}"
                ) from None
            if identity is not None:
                _load_identity(where, context, *identity)
            if len(self._tls_contexts) > MAX_TLS_CONTEXTS:
                self._tls_contexts.clear()  # rotated CAs must not pile up forever
            self._tls_contexts[cache_key] = context
        return context

    async def _post(
        self,
        where: str,
        url: str,
        body: bytes,
        headers: dict[str, str],
        seconds: int,
        trust: Trust,
    ) -> ProcessReply:
        try:
            async with asyncio.timeout(seconds):
                async with self._session.post(
                    url,
                    data=body,
                    headers=headers,
                    ssl=trust.context if trust.context is not None else True,
                ) as response:
                    raw = await _read_bounded(response, where)
                    status = response.status
        except TimeoutError:
            raise HandlerCallError(
                f"{where} did not answer within {seconds}s", reason="timeout"
            ) from None
        except aiohttp.ClientConnectorCertificateError as error:
            raise UntrustedCertificateError(
                f"{where}: its TLS certificate was not trusted ({trust.source}): "
                f"{error.certificate_error}",
                reason="tls",
            ) from None
        except aiohttp.ClientConnectorError as error:
            raise HandlerCallError(
                f"{where} could not be reached: {error.os_error}", reason="unreachable"
            ) from None
        except aiohttp.ClientError as error:
            raise HandlerCallError(f"{where} failed: {error}", reason="unreachable") from None
        return parse_reply(where, status, raw)


def _load_identity(where: str, context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """`ssl` loads a certificate chain from files only: a private folder, gone at once."""
    with tempfile.TemporaryDirectory(prefix="kattle-client-cert-") as folder:
        cert_path, key_path = Path(folder) / "tls.crt", Path(folder) / "tls.key"
        cert_path.write_bytes(cert)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as error:
            raise HandlerCallError(
                f"{where}: the client certificate is not a valid tls.crt and tls.key pair: "
                f"{error.reason or error}"
            ) from None


# Shorter values (a one-letter test key) would redact ordinary words.
MIN_REDACTED_LENGTH = 4


def redact(text: str, secrets: list[str]) -> str:
    """`text` without the secrets, as they are or in the encodings a handler's error page
    may echo them in (base64, URL-escaped, JSON-escaped, hex), also one cut short at its end
    (error bodies are quoted in excerpts)."""
    for secret in secrets:
        if len(secret) < MIN_REDACTED_LENGTH:
            continue
        # Longest first: a form that contains another is replaced whole.
        for form in sorted(_encoded(secret), key=len, reverse=True):
            text = text.replace(form, "[redacted]")
        for length in range(len(secret) - 1, MIN_REDACTED_LENGTH - 1, -1):
            if text.endswith(secret[:length]):
                text = text[:-length] + "[redacted]"
                break
    return text


def _encoded(secret: str) -> set[str]:
    raw = secret.encode()
    forms = {
        secret,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        json.dumps(secret)[1:-1],
        raw.hex(),
        raw.hex().upper(),
    }
    forms |= {form.rstrip("=") for form in forms}
    return {form for form in forms if len(form) >= MIN_REDACTED_LENGTH}


def parse_reply(where: str, status: int, raw: bytes) -> ProcessReply:
    """A handler's HTTP answer as a reply, or a HandlerCallError that says what is wrong
    with it: never another exception, whatever the bytes (fuzzed in test_replies.py)."""
    if status >= 300:
        excerpt = raw[:300].decode(errors="replace").strip()
        raise HandlerCallError(
            f"{where} answered HTTP {status}: {excerpt or '(no body)'}", reason="http_status"
        )
    if not raw.strip():
        return ProcessReply()
    try:
        return ProcessReply.model_validate_json(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'reply'}: {e['msg']}"
            for e in error.errors()[:5]
        )
        raise HandlerCallError(
            f"{where} sent an invalid reply: {problems}", reason="invalid_reply"
        ) from None


async def _read_bounded(response: aiohttp.ClientResponse, where: str) -> bytes:
    declared = response.content_length
    if declared is not None and declared > MAX_REPLY_BYTES:
        raise HandlerCallError(
            f"{where} sent a reply of {declared} bytes, over the limit of {MAX_REPLY_BYTES} bytes",
            reason="too_large",
        )
    chunks = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise HandlerCallError(
                f"{where} sent a reply over the limit of {MAX_REPLY_BYTES} bytes",
                reason="too_large",
            )
        chunks.append(chunk)
    return b"".join(chunks)
