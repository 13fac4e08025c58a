"""ProcessHandler: registers an HTTP webhook as logic of one or more processes.

Cattle runs pre-listeners, handlers and post-listeners in that order, each phase by
ascending priority. Here every handler is a webhook, so handlers can be written in any
language; the client config has the shape Kubernetes' admission webhooks use, so it reads
familiar to anyone who has written one.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from kattle.api.common import (
    NAME_MAX,
    PROCESS_SELECTOR_PATTERN,
    Condition,
    CrdInfo,
    KattleModel,
    KattleResource,
    PrinterColumn,
    cel,
    conditions_field,
    string_set,
    validated_by,
)
from kattle.api.processdefinition import HandlerPhase

DEFAULT_PRIORITY = 1000

_DnsLabel = Annotated[
    str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", min_length=1, max_length=63)
]
_DnsSubdomain = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        min_length=1,
        max_length=253,
    ),
]
ProcessSelector = Annotated[
    str,
    Field(
        pattern=PROCESS_SELECTOR_PATTERN,
        max_length=2 * NAME_MAX + 1,
        description=(
            "A process name, or a glob of names: `*.<verb>` for that verb of every type, "
            "`<type>.*` for every process of a type, `*` for every process."
        ),
    ),
]


class ServiceReference(KattleModel):
    """A Service in the cluster that serves the webhook."""

    namespace: _DnsLabel = Field(description="The Service's namespace.")
    name: _DnsLabel = Field(description="The Service's name.")
    port: int = Field(default=443, ge=1, le=65535, description="The Service port, 443 by default.")
    path: str = Field(
        default="/",
        pattern=r"^/",
        max_length=1024,
        description="The URL path requests are sent to, `/` by default.",
    )
    scheme: Literal["https", "http"] = Field(
        default="https",
        description=(
            "https (the default) or http. Plain http is allowed to in-cluster Services "
            "only; requests can still be signed (see signingSecretRef)."
        ),
    )


class CaReference(KattleModel):
    """A key of a ConfigMap or Secret with PEM certificates, e.g. cert-manager's `ca.crt`."""

    kind: Literal["ConfigMap", "Secret"] = Field(description="ConfigMap or Secret.")
    namespace: _DnsLabel = Field(description="The object's namespace.")
    name: _DnsSubdomain = Field(description="The object's name.")
    key: str = Field(
        default="ca.crt",
        pattern=r"^[-._a-zA-Z0-9]+$",
        max_length=253,
        description="The key holding the PEM certificates, `ca.crt` by default.",
    )


class SecretReference(KattleModel):
    """A Secret, by namespace and name."""

    namespace: _DnsLabel = Field(description="The Secret's namespace.")
    name: _DnsSubdomain = Field(description="The Secret's name.")


class WebhookClientConfig(KattleModel):
    """Where the webhook is and how to trust it: exactly one of `url` or `service`."""

    model_config = validated_by(
        cel(
            "has(self.url) != has(self.service)",
            "exactly one of url or service must be set",
        ),
        cel(
            "!has(self.url) || self.url.startsWith('https://') || "
            "(has(self.allowInsecureHTTP) && self.allowInsecureHTTP)",
            "url must start with https:// (set allowInsecureHTTP: true to allow plain http "
            "outside the cluster, for development only)",
            field_path=".url",
        ),
        cel(
            "!has(self.caBundle) || has(self.url) || self.service.scheme == 'https'",
            "caBundle is only used with https",
            field_path=".caBundle",
        ),
        cel(
            "!has(self.caFrom) || has(self.url) || self.service.scheme == 'https'",
            "caFrom is only used with https",
            field_path=".caFrom",
        ),
        cel(
            "!(has(self.caBundle) && has(self.caFrom))",
            "set at most one of caBundle and caFrom",
            field_path=".caFrom",
        ),
        cel(
            "!has(self.clientCertificateSecretRef) || has(self.url) || "
            "self.service.scheme == 'https'",
            "clientCertificateSecretRef is only used with https",
            field_path=".clientCertificateSecretRef",
        ),
    )

    url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://[^/?#\s@]+(/[^?#\s]*)?$",
        description=(
            "The webhook's URL, `https://host[:port]/path`, for handlers outside the "
            "cluster. No query, fragment or credentials (`user:password@`): URLs appear in "
            "messages, logs and Events; use bearerTokenSecretRef."
        ),
    )
    service: ServiceReference | None = Field(
        default=None, description="The Service that serves the webhook, for in-cluster handlers."
    )
    ca_bundle: str | None = Field(
        default=None,
        max_length=65536,
        json_schema_extra={"format": "byte"},
        description=(
            "PEM certificates, base64-encoded, that the webhook's serving certificate must "
            "chain to. Without it the system's trusted roots are used."
        ),
    )
    ca_from: CaReference | None = Field(
        default=None,
        description=(
            "A ConfigMap or Secret key holding the PEM certificates to trust, read again "
            "when it changes: rotate the CA by updating the object, no restart needed."
        ),
    )
    client_certificate_secret_ref: SecretReference | None = Field(
        default=None,
        description=(
            "A `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`) whose certificate the "
            "operator presents to the webhook (mutual TLS), read again when it changes."
        ),
    )
    allow_insecure_http: bool = Field(
        default=False,
        alias="allowInsecureHTTP",
        description=(
            "Allow a plain `http://` url outside the cluster. For development and tests "
            "only: requests and replies travel unencrypted."
        ),
    )


class SecretKeyReference(KattleModel):
    """A key of a Secret in a given namespace."""

    namespace: _DnsLabel = Field(description="The Secret's namespace.")
    name: _DnsSubdomain = Field(description="The Secret's name.")
    key: str = Field(
        default="key",
        pattern=r"^[-._a-zA-Z0-9]+$",
        max_length=253,
        description="The key in the Secret's data, `key` by default.",
    )


class LabelSelectorRequirement(KattleModel):
    """One rule on a label, as Kubernetes label selectors have it."""

    model_config = validated_by(
        cel(
            "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) "
            ": (!has(self.values) || size(self.values) == 0)",
            "In and NotIn need values; Exists and DoesNotExist take none",
        )
    )

    key: str = Field(min_length=1, max_length=317, description="The label's key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In, NotIn, Exists or DoesNotExist."
    )
    values: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="For In and NotIn: the values (at least one); empty otherwise.",
    )


class LabelSelector(KattleModel):
    """Labels an object must carry, in the shape of Kubernetes label selectors (as admission
    webhooks' `namespaceSelector` and `objectSelector`): all rules must hold; an empty
    selector matches everything."""

    match_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels that must have exactly these values."
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=16, description="Rules that must all hold."
    )


class ProcessHandlerSpec(KattleModel):
    """Which processes the webhook serves, when it runs, and how it is called."""

    processes: list[ProcessSelector] = Field(
        min_length=1,
        max_length=128,
        description=(
            "The processes this handler is attached to: exact names (`instance.start`) or "
            "globs (`*.create`: the create process of every type; `instance.*`: every "
            "process of instance; `*`: every process)."
        ),
        json_schema_extra=string_set(),
    )
    phase: HandlerPhase = Field(
        default="handler",
        description=(
            "When it runs: `pre` listeners first, then `handler`s (the default), then "
            "`post` listeners."
        ),
    )
    priority: int = Field(
        default=DEFAULT_PRIORITY,
        ge=0,
        le=1_000_000,
        description=(
            f"Order within the phase: lower runs first, ties by name. {DEFAULT_PRIORITY} by "
            "default, as in Cattle."
        ),
    )
    namespace_selector: LabelSelector | None = Field(
        default=None,
        description=(
            "Call the handler only for objects in namespaces whose labels match (as an "
            "admission webhook's namespaceSelector); cluster-scoped objects always match. "
            "For clusters shared by teams: a team's handler serves its namespaces only."
        ),
    )
    object_selector: LabelSelector | None = Field(
        default=None,
        description="Call the handler only for objects whose own labels match.",
    )
    client_config: WebhookClientConfig = Field(
        description="Where and how to call the webhook: exactly one of url or service."
    )
    timeout_seconds: int = Field(
        default=10,
        ge=1,
        le=300,
        description="How long one call may take before it counts as failed (1-300, 10 by default).",
    )
    retry_limit: int = Field(
        default=10,
        ge=0,
        le=1000,
        description=(
            "How many times a failed call is retried, with Cattle's backoff (2s plus "
            "2^(n-1)*100ms, at most 120s), before the process run fails."
        ),
    )
    failure_policy: Literal["Fail", "Ignore"] = Field(
        default="Fail",
        description=(
            "What a failure does once retries are exhausted: `Fail` (the default) fails "
            "the process run; `Ignore` records the failure and the run goes on."
        ),
    )
    signing_secret_ref: SecretKeyReference | None = Field(
        default=None,
        description=(
            "A Secret key whose value signs every request (HMAC-SHA256 over a timestamp "
            "and the body), so the webhook can tell requests come from Kattle."
        ),
    )
    bearer_token_secret_ref: SecretKeyReference | None = Field(
        default=None,
        description=(
            "A Secret key whose value is sent as `Authorization: Bearer <value>` with every "
            "request, for webhooks behind a gateway that checks tokens."
        ),
    )


class ProcessHandlerStatus(KattleModel):
    """What the operator observed of the handler."""

    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation last acted on."
    )
    processes: list[str] = Field(
        default_factory=list,
        max_length=10_000,
        description="The ProcessDefinitions this handler is attached to now, by name.",
    )
    conditions: list[Condition] = conditions_field()


class ProcessHandler(KattleResource):
    """An HTTP webhook attached to processes as a pre-listener, handler or post-listener."""

    crd_info: ClassVar[CrdInfo] = CrdInfo(
        kind="ProcessHandler",
        plural="processhandlers",
        singular="processhandler",
        scope="Cluster",
        short_names=("ph",),
        printer_columns=(
            PrinterColumn("Processes", ".spec.processes"),
            PrinterColumn("Phase", ".spec.phase"),
            PrinterColumn("Priority", ".spec.priority", type="integer"),
            PrinterColumn(
                "Ready",
                '.status.conditions[?(@.type=="Ready")].status',
                description="Attached to a process, with every Secret and ConfigMap it names.",
            ),
            PrinterColumn("Failure-Policy", ".spec.failurePolicy", priority=1),
            PrinterColumn("Timeout", ".spec.timeoutSeconds", type="integer", priority=1),
            PrinterColumn("Url", ".spec.clientConfig.url", priority=1),
            PrinterColumn("Service", ".spec.clientConfig.service.name", priority=1),
            PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
        ),
    )

    kind: Literal["ProcessHandler"] = "ProcessHandler"
    spec: ProcessHandlerSpec = Field(description="The webhook and the processes it serves.")
    status: ProcessHandlerStatus | None = Field(
        default=None, description="Observed by the operator."
    )
