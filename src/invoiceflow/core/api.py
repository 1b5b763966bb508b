"""The HTTP edge shared by every domain: response envelope, correlation ids, error rendering."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from invoiceflow.core.errors import AppError
from invoiceflow.core.idempotency import Replay

log = logging.getLogger("invoiceflow")

correlation_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")
extra_headers_var: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("extra_headers", default=None)
_CID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    success: bool = True
    data: T
    timestamp: str
    correlation_id: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorEnvelope(BaseModel):
    success: bool = False
    error: ErrorBody
    timestamp: str
    correlation_id: str


def add_response_headers(headers: dict[str, str]) -> None:
    """Headers that go on this request's response whatever it turns out to be (success or error)."""
    holder = extra_headers_var.get()
    if holder is not None:
        holder.update(headers)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _default(obj: Any) -> Any:
    return jsonable_encoder(obj)


class EnvelopeResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default)


def envelope(data: Any, *, status_code: int = 200, headers: dict[str, str] | None = None) -> EnvelopeResponse:
    """Wrap `data` (a pydantic model, list of models or plain JSON value) in the success envelope."""
    if isinstance(data, BaseModel):
        payload: Any = data.model_dump(mode="json")
    elif isinstance(data, list):
        payload = [d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in data]
    else:
        payload = data
    body = {"success": True, "data": payload, "timestamp": now_iso(), "correlation_id": correlation_id_var.get()}
    return EnvelopeResponse(body, status_code=status_code, headers=headers)


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> EnvelopeResponse:
    body = {
        "success": False,
        "error": {"code": code, "message": message, "details": details or {}},
        "timestamp": now_iso(),
        "correlation_id": correlation_id_var.get(),
    }
    return EnvelopeResponse(body, status_code=status_code, headers=headers)


class CorrelationIdMiddleware:
    """Takes the caller's X-Correlation-ID (when well-formed) or makes one; echoes it on the response.

    Also refuses request bodies above the configured size with 413 before the application reads them.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = ""
        length = None
        for name, value in scope["headers"]:
            if name == b"x-correlation-id":
                candidate = value.decode("latin-1")
                if _CID_RE.match(candidate):
                    cid = candidate
            elif name == b"content-length":
                length = value
        if not cid:
            cid = uuid.uuid4().hex
        # Also kept in the request state: the 500 handler runs outside this middleware, after the
        # context variable has been reset.
        scope.setdefault("state", {})["correlation_id"] = cid
        token = correlation_id_var.set(cid)
        extra: dict[str, str] = {}
        extra_token = extra_headers_var.set(extra)
        raw_cid = cid.encode()
        try:
            if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                response = error_response(
                    413,
                    "PAYLOAD_TOO_LARGE",
                    f"Request body exceeds {self.max_body_bytes} bytes",
                    {"max_bytes": self.max_body_bytes},
                )
                response.headers["X-Correlation-ID"] = cid
                await response(scope, receive, send)
                return
            received = 0
            limit = self.max_body_bytes

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise _BodyTooLarge(limit)
                return message

            async def send_with_cid(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = list(message.get("headers", []))
                    headers.append((b"x-correlation-id", raw_cid))
                    present = {k.lower() for k, _ in headers}
                    for name, value in extra.items():
                        if name.lower().encode() not in present:
                            headers.append((name.lower().encode(), value.encode()))
                    message["headers"] = headers
                await send(message)

            await self.app(scope, limited_receive, send_with_cid)
        finally:
            extra_headers_var.reset(extra_token)
            correlation_id_var.reset(token)


class _BodyTooLarge(StarletteHTTPException):
    """A body that grew past the limit while streaming (no or a false Content-Length).

    An HTTPException, because FastAPI re-raises those from body parsing; any other exception there
    becomes a 400 "error parsing the body".
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body exceeds {limit} bytes")
        self.limit = limit


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) if parts else "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> Response:
        return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(Replay)
    async def _replay(_request: Request, exc: Replay) -> Response:
        return envelope(exc.body, status_code=exc.status_code, headers={"Idempotent-Replayed": "true"})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        not_json = content_type and content_type != "application/json" and not content_type.endswith("+json")
        if not_json and any(tuple(err.get("loc", ()))[:1] == ("body",) for err in exc.errors()):
            return error_response(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                "Send the request body as application/json",
                {"content_type": content_type},
            )
        fields = []
        for err in exc.errors():
            loc = err.get("loc", ())
            if err.get("type") == "json_invalid":
                return error_response(
                    400, "MALFORMED_JSON", "Request body is not valid JSON", {"reason": err.get("msg", "")}
                )
            fields.append({"field": _field_path(loc), "message": err.get("msg", ""), "type": err.get("type", "")})
        names = ", ".join(dict.fromkeys(f["field"] for f in fields))
        return error_response(422, "VALIDATION_ERROR", f"Invalid input: {names}", {"fields": fields})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError | RecursionError):
            # FastAPI's body parsing turns these into a bare 400: a body that is not UTF-8 (RFC 8259 §8.1)
            # or nests too deeply is malformed JSON all the same.
            reason = "not UTF-8" if isinstance(exc.__cause__, UnicodeDecodeError) else "nested too deeply"
            return error_response(400, "MALFORMED_JSON", "Request body is not valid JSON", {"reason": reason})
        codes = {
            404: "NOT_FOUND",
            405: "METHOD_NOT_ALLOWED",
            400: "BAD_REQUEST",
            401: "UNAUTHORIZED",
            403: "FORBIDDEN",
            413: "PAYLOAD_TOO_LARGE",
            415: "UNSUPPORTED_MEDIA_TYPE",
        }
        code = codes.get(exc.status_code, "HTTP_ERROR")
        message = exc.detail if isinstance(exc.detail, str) else code
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(_BodyTooLarge)
    async def _too_large(_request: Request, exc: _BodyTooLarge) -> Response:
        return error_response(413, "PAYLOAD_TOO_LARGE", exc.detail, {"max_bytes": exc.limit})

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        cid = correlation_id_var.get() or str(getattr(request.state, "correlation_id", ""))
        token = correlation_id_var.set(cid)
        try:
            log.exception("unhandled error (correlation id %s)", cid, exc_info=exc)
            return error_response(
                500, "INTERNAL_ERROR", "An unexpected error occurred", headers={"X-Correlation-ID": cid}
            )
        finally:
            correlation_id_var.reset(token)
