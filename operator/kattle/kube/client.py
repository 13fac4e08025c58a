"""A small async client for the Kubernetes API, on aiohttp: every API call Kattle makes.

Kopf watches; this client reads and writes. It is deliberately thin (JSON in, JSON out, one
connection pool, errors with the API server's own message) so that the writes a process run
makes are plain to see and count. It logs in with the same credentials Kopf uses.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

PatchType = Literal["merge", "apply", "json"]
_CONTENT_TYPES: dict[PatchType, str] = {
    "merge": "application/merge-patch+json",
    "apply": "application/apply-patch+yaml",
    "json": "application/json-patch+json",
}
FIELD_MANAGER = "kattle"
THROTTLE_RETRIES = 10


class ApiError(Exception):
    """The API server refused a request; `status` is the HTTP status."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409 and self.reason == "Conflict"

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"


@dataclass(frozen=True)
class Credentials:
    """Where the API server is and how to prove who we are."""

    server: str
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    token: str | None = None
    insecure: bool = False

    @classmethod
    def from_connection_info(cls, info: Any) -> Credentials:
        """From Kopf's ConnectionInfo (kubeconfig or in-cluster service account)."""

        def read(data: str | bytes | None, path: Any) -> bytes | None:
            if data:
                raw = data.encode() if isinstance(data, str) else data
                # Kubeconfig data fields are base64; a PEM given directly starts with dashes.
                return raw if raw.lstrip().startswith(b"-----") else base64.b64decode(raw)
            if path:
                with open(path, "rb") as file:
                    return file.read()
            return None

        return cls(
            server=str(info.server).rstrip("/"),
            ca_pem=read(info.ca_data, info.ca_path),
            cert_pem=read(info.certificate_data, info.certificate_path),
            key_pem=read(info.private_key_data, info.private_key_path),
            token=info.token,
            insecure=bool(info.insecure),
        )

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.ca_pem.decode() if self.ca_pem else None)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_pem and self.key_pem:
            # ssl wants files for client certificates: write them where only we can read.
            with tempfile.TemporaryDirectory(prefix="kattle-client-") as folder:
                cert = os.path.join(folder, "client.crt")
                key = os.path.join(folder, "client.key")
                for path, data in ((cert, self.cert_pem), (key, self.key_pem)):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "wb") as file:
                        file.write(data)
                context.load_cert_chain(cert, key)
        return context


@dataclass(frozen=True)
class Kind:
    """Where objects of one kind live in the API."""

    group: str
    version: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str = ""
    ) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base


class KubeClient:
    """JSON over one pooled HTTPS connection to the API server."""

    def __init__(self, credentials: Credentials, *, pool_size: int = 64) -> None:
        self.credentials = credentials
        headers = {"Accept": "application/json", "User-Agent": "kattle-operator"}
        if credentials.token:
            headers["Authorization"] = f"Bearer {credentials.token}"
        self._session = aiohttp.ClientSession(
            base_url=credentials.server,
            headers=headers,
            connector=aiohttp.TCPConnector(
                ssl=credentials.ssl_context(), limit=pool_size, keepalive_timeout=60
            ),
            # No total or pool-wait limit: under a burst, requests queue for a connection
            # rather than fail. Connecting and each read are bounded.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60),
        )

    async def close(self) -> None:
        await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        missing_ok: bool = False,
    ) -> Any:
        """The answer's JSON; with `missing_ok`, None when the path names nothing."""
        return await self._expecting(
            self._send(method, path, body, params, content_type), missing_ok=missing_ok
        )

    async def _send(
        self,
        method: str,
        path: str,
        body: Any,
        params: Mapping[str, str] | None,
        content_type: str,
    ) -> Any:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        for attempt in range(THROTTLE_RETRIES + 1):
            async with self._session.request(
                method, path, data=data, params=params, headers=headers
            ) as response:
                text = await response.text()
                if response.status < 400:
                    return json.loads(text) if text else None
                error = _api_error(response.status, response.reason or "", text)
                # The API server asks to come back later (a new CRD's storage starting,
                # priority and fairness shedding load): do so, as client-go does.
                if response.status != 429 or attempt == THROTTLE_RETRIES:
                    raise error
                delay = min(float(response.headers.get("Retry-After", "1") or 1), 5.0)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def raw(self, path: str) -> str:
        """A GET whose answer is text, e.g. the API server's own `/metrics`."""
        async with self._session.get(path) as response:
            text = await response.text()
            if response.status >= 400:
                raise _api_error(response.status, response.reason or "", text)
            return text

    async def watch(self, path: str, resource_version: str) -> AsyncIterator[dict[str, Any]]:
        """Watch events from `resource_version` on, until the server ends the stream."""
        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_read=330)
        async with self._session.get(path, params=params, timeout=timeout) as response:
            if response.status >= 400:
                raise _api_error(response.status, response.reason or "", await response.text())
            async for line in response.content:
                if line.strip():
                    yield json.loads(line)

    async def get(
        self, kind: Kind, name: str, namespace: str | None = None, *, missing_ok: bool = False
    ) -> Any:
        """The object; with `missing_ok`, None when there is none."""
        return await self._expecting(
            self.request("GET", kind.path(namespace, name)), missing_ok=missing_ok
        )

    async def get_or_none(self, kind: Kind, name: str, namespace: str | None = None) -> Any:
        return await self.get(kind, name, namespace, missing_ok=True)

    async def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Any]:
        selectors = {"labelSelector": label_selector, "fieldSelector": field_selector}
        params = {k: v for k, v in selectors.items() if v} or None
        result = await self.request("GET", kind.path(namespace), params=params)
        return list(result.get("items", []))

    async def create(
        self,
        kind: Kind,
        body: Mapping[str, Any],
        namespace: str | None = None,
        *,
        exists_ok: bool = False,
    ) -> Any:
        """The object created; with `exists_ok`, None when one of that name exists."""
        return await self._expecting(
            self.request("POST", kind.path(namespace), body=body), exists_ok=exists_ok
        )

    async def patch(
        self,
        kind: Kind,
        name: str,
        body: Any,
        *,
        namespace: str | None = None,
        subresource: str = "",
        patch_type: PatchType = "merge",
        force: bool = False,
        missing_ok: bool = False,
        conflict_ok: bool = False,
    ) -> Any:
        """PATCH; a merge patch with metadata.resourceVersion set is a compare-and-set.
        With `missing_ok` or `conflict_ok`, None when the object is gone, or was changed
        since the resourceVersion in the patch."""
        params = {"fieldManager": FIELD_MANAGER}
        if force:
            params["force"] = "true"
        request = self.request(
            "PATCH",
            kind.path(namespace, name, subresource),
            body=body,
            params=params,
            content_type=_CONTENT_TYPES[patch_type],
        )
        return await self._expecting(request, missing_ok=missing_ok, conflict_ok=conflict_ok)

    async def delete(
        self, kind: Kind, name: str, namespace: str | None = None, *, missing_ok: bool = True
    ) -> Any:
        return await self._expecting(
            self.request("DELETE", kind.path(namespace, name)), missing_ok=missing_ok
        )

    @staticmethod
    async def _expecting(
        request: Awaitable[Any],
        *,
        missing_ok: bool = False,
        conflict_ok: bool = False,
        exists_ok: bool = False,
    ) -> Any:
        """The answer, or None for the refusals the caller expects."""
        try:
            return await request
        except ApiError as error:
            if (
                (missing_ok and error.not_found)
                or (conflict_ok and error.conflict)
                or (exists_ok and error.already_exists)
            ):
                return None
            raise


def _api_error(status: int, reason: str, text: str) -> ApiError:
    try:
        body = json.loads(text)
        return ApiError(status, body.get("reason", reason), body.get("message", text))
    except (ValueError, AttributeError):
        return ApiError(status, reason, text)


# Kinds the operator uses that are not generated.
CRDS = Kind("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
EVENTS = Kind("events.k8s.io", "v1", "events", namespaced=True)
SECRETS = Kind("", "v1", "secrets", namespaced=True)
CONFIGMAPS = Kind("", "v1", "configmaps", namespaced=True)
