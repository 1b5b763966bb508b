"""Connectors: where an integration's invoices come from and where they go.

`make_source` / `make_destination` build one from an integration's plain settings: `config` (stored and shown
as is) and `secrets` (stored encrypted, never returned). The kinds and their settings:

* `http` (`connectors.http`): config `{"type": "http", "url", "headers": {non-secret}, "api_key_header":
  "X-API-Key", "page_size": 100, "max_response_bytes"}`, secrets `{"bearer_token"} | {"api_key"} |
  {"headers": {"Authorization": "…"}}`;
* `folder` (`connectors.folder`): config `{"type": "folder", "path"}`, no secrets;
* `s3` (`connectors.s3`): config `{"type": "s3", "bucket", "prefix", "endpoint_url", "region"}`, secrets
  `{"access_key_id", "secret_access_key", "session_token"}` (empty = the default credential chain);

and, for every kind, the resilience settings of `ConnectorOptions`: `timeout_seconds` (10), `max_concurrency`
(4), `rate_limit_per_second` (none), `rate_limit_burst`, `max_attempts` (5), `retry_base_delay_seconds` (0.5),
`retry_max_delay_seconds` (30), `max_retry_after_seconds` (120), `circuit_failure_threshold` (5),
`circuit_reset_seconds` (30), `max_document_bytes` (5 MiB). Unknown keys are refused.

Kinds that belong to a higher layer (this product itself as source or destination) are plugged in by the
caller through `extra`, a plain dict of factories.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from invoiceflow.integrations.connectors.base import (
    ConnectorOptions,
    Destination,
    ExternalApiError,
    PushResult,
    Source,
    SourceDocument,
    SourcePage,
)
from invoiceflow.integrations.resilience import CallGuard, LimiterRegistry, ResilienceSettings, settings_from

__all__ = [
    "BUILTIN_TYPES",
    "ConnectorConfigError",
    "ConnectorOptions",
    "Destination",
    "DestinationFactory",
    "ExternalApiError",
    "PushResult",
    "Source",
    "SourceDocument",
    "SourceFactory",
    "SourcePage",
    "make_destination",
    "make_source",
]

M = TypeVar("M", bound=BaseModel)
SourceFactory = Callable[[dict[str, Any], dict[str, Any]], Source]
DestinationFactory = Callable[[dict[str, Any], dict[str, Any]], Destination]
BUILTIN_TYPES = ("http", "folder", "s3")


class ConnectorConfigError(ValueError):
    """Settings that do not describe a usable connector. `errors` lists `{field, message}`; secret values are
    never quoted."""

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


def _validated(model: type[M], data: Mapping[str, Any], what: str) -> M:
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(part) for part in error["loc"]) or what, "message": error["msg"]}
            for error in exc.errors(include_input=False, include_url=False)
        ]
        summary = "; ".join(f"{error['field']}: {error['message']}" for error in errors)
        raise ConnectorConfigError(f"invalid {what}: {summary}", errors) from None


def _kind(config: Mapping[str, Any], extra: Mapping[str, Any] | None, role: str) -> str:
    kind = config.get("type")
    known = sorted({*BUILTIN_TYPES, *(extra or {})})
    if not isinstance(kind, str) or (kind not in BUILTIN_TYPES and kind not in (extra or {})):
        raise ConnectorConfigError(
            f"unknown {role} type {kind!r}; known: {', '.join(known)}",
            [{"field": "type", "message": f"must be one of {', '.join(known)}"}],
        )
    return kind


def make_source(
    config: Mapping[str, Any],
    secrets: Mapping[str, Any] | None = None,
    *,
    extra: Mapping[str, SourceFactory] | None = None,
    folder_roots: Sequence[Path] | None = None,
) -> Source:
    """A source for these settings; `ConnectorConfigError` (a ValueError) when they are not usable.
    `folder_roots`, when given, are the only folders a folder source may read (relative paths start in the first)."""
    kind = _kind(config, extra, "source")
    secrets = secrets or {}
    if extra and kind in extra:
        return extra[kind](dict(config), dict(secrets))
    if kind == "http":
        from invoiceflow.integrations.connectors.http import HttpConfig, HttpSecrets, HttpSource

        return HttpSource(
            _validated(HttpConfig, config, "source settings"), _validated(HttpSecrets, secrets, "source secrets")
        )
    if kind == "folder":
        from invoiceflow.integrations.connectors.folder import FolderConfig, FolderSource, resolve_folder

        folder = _validated(FolderConfig, config, "source settings")
        return FolderSource(_resolve(resolve_folder, folder.path, folder_roots), folder)
    from invoiceflow.integrations.connectors.s3 import S3Config, S3Secrets, S3Source

    return S3Source(_validated(S3Config, config, "source settings"), _validated(S3Secrets, secrets, "source secrets"))


def make_destination(
    config: Mapping[str, Any],
    secrets: Mapping[str, Any] | None = None,
    *,
    limiter_registry: LimiterRegistry | None = None,
    extra: Mapping[str, DestinationFactory] | None = None,
    folder_roots: Sequence[Path] | None = None,
) -> Destination:
    """A destination for these settings; `ConnectorConfigError` (a ValueError) when they are not usable.

    With a `limiter_registry` (keep one per process), destinations with the same target and settings share one
    concurrency cap, rate limit and circuit breaker, so two jobs pushing to one partner respect its limits
    together; without one, each destination object has its own.
    """
    kind = _kind(config, extra, "destination")
    secrets = secrets or {}
    if extra and kind in extra:
        return extra[kind](dict(config), dict(secrets))
    if kind == "http":
        from invoiceflow.integrations.connectors.http import HttpConfig, HttpDestination, HttpSecrets

        http = _validated(HttpConfig, config, "destination settings")
        return HttpDestination(
            http,
            _validated(HttpSecrets, secrets, "destination secrets"),
            guard=_guard_source("http", ("http", http.url), settings_from(http), limiter_registry),
        )
    if kind == "folder":
        from invoiceflow.integrations.connectors.folder import (
            FolderConfig,
            FolderDestination,
            folder_settings,
            resolve_folder,
        )

        folder = _validated(FolderConfig, config, "destination settings")
        root = _resolve(resolve_folder, folder.path, folder_roots)
        return FolderDestination(
            root,
            folder,
            guard=_guard_source("folder", ("folder", str(root)), folder_settings(folder), limiter_registry),
        )
    from invoiceflow.integrations.connectors.s3 import S3Config, S3Destination, S3Secrets

    s3 = _validated(S3Config, config, "destination settings")
    return S3Destination(
        s3,
        _validated(S3Secrets, secrets, "destination secrets"),
        guard=_guard_source("s3", ("s3", s3.endpoint_url, s3.bucket, s3.prefix), settings_from(s3), limiter_registry),
    )


def _resolve(resolve: Callable[[str, Sequence[Path] | None], Path], path: str, roots: Sequence[Path] | None) -> Path:
    try:
        return resolve(path, roots)
    except ValueError as exc:
        raise ConnectorConfigError(f"invalid folder path: {exc}", [{"field": "path", "message": str(exc)}]) from None


def _guard_source(
    service: str, target: Hashable, settings: ResilienceSettings, registry: LimiterRegistry | None
) -> Callable[[], CallGuard]:
    """Guards are made inside the event loop, at the first push: asyncio primitives belong to one loop."""
    if registry is None:
        return lambda: CallGuard(service, settings)
    return lambda: registry.get((target, settings), lambda: CallGuard(service, settings))
