"""Prometheus metrics, defined once here so every module counts into the same series.

Each process exposes its own series on `/metrics` (API processes) — scrape every process. Label values
are bounded sets (route templates, outcomes, service names), never ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Integration jobs (issue 6)
integration_jobs_total = Counter(
    "integration_jobs_total", "Integration jobs finished, by trigger and final status", ["trigger", "status"]
)
integration_job_duration_seconds = Histogram(
    "integration_job_duration_seconds",
    "Wall time of an integration job",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
invoice_processing_total = Counter(
    "invoice_processing_total", "Invoices handled by integration jobs, by outcome", ["outcome"]
)
external_api_calls_total = Counter(
    "external_api_calls_total",
    "Calls to other systems, by service, operation and result",
    ["service", "operation", "result"],
)
external_api_call_duration_seconds = Histogram(
    "external_api_call_duration_seconds",
    "Duration of calls to other systems",
    ["service", "operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# Workflows (issue 5)
workflow_runs_total = Counter("workflow_runs_total", "Workflows finished, by name and status", ["workflow", "status"])
workflow_step_duration_seconds = Histogram(
    "workflow_step_duration_seconds",
    "Duration of one workflow step attempt",
    ["workflow", "step"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
)

# HTTP (every API process)
http_requests_total = Counter(
    "http_requests_total", "HTTP requests answered, by method, route template and status", ["method", "route", "status"]
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetricsMiddleware:
    """Counts every HTTP request in `http_requests_total` by its route template (`/api/v1/jobs/{job_id}`, never
    the raw path: ids would make the series unbounded); requests that match no route count as `unmatched`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None)
            method = scope.get("method", "")
            http_requests_total.labels(
                method=method if method in _METHODS else "OTHER",
                route=route if isinstance(route, str) else "unmatched",
                status=str(status),
            ).inc()
