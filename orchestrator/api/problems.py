"""Errors as RFC 9457 ``application/problem+json``: one place maps every typed error to a status.

``install_problem_handlers(app)`` registers the handlers; routers just raise (``Problem`` for their
own HTTP errors, or the domain, store and security errors, which map as below). A problem body has
``type`` (a URN naming the error class), ``title``, ``status``, ``detail`` (the error's one sentence)
and, for request validation, ``errors`` (where and what). Nothing else leaks: an unexpected error is a
500 with a generic detail, and its traceback goes to the log only.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.domain.errors import IllegalTransition, InvalidData
from orchestrator.security.errors import (
    InvalidCode,
    Locked,
    ReplayedNonce,
    SecurityError,
    SignatureError,
    TooManyRequests,
)
from orchestrator.store.domain_repositories import IdempotencyConflict
from orchestrator.store.errors import ConflictError, NotFoundError

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger(__name__)

# (error class, status), most specific first
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (IdempotencyConflict, 422),
    (IllegalTransition, 409),
    (ConflictError, 409),
    (NotFoundError, 404),
    (InvalidData, 422),
    (ReplayedNonce, 409),
    (TooManyRequests, 429),
    (SignatureError, 401),
    (Locked, 423),
    (InvalidCode, 400),
    (SecurityError, 400),
    (ValueError, 422),
)

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these statuses, all problem+json."""
    return {
        status: {"description": _title(status), "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}}}
        for status in statuses
    }


class Problem(Exception):
    """An HTTP error raised by a router: ``status``, one-sentence ``detail``, optional extra members."""

    def __init__(
        self, status: int, detail: str, *, type_: str = "about:blank", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = type_
        self.headers = headers or {}


def problem_response(
    status: int,
    detail: str,
    *,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response."""
    body = {"type": type_, "title": _title(status), "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def status_of(exc: Exception) -> int | None:
    """The HTTP status of a typed error, or None if it is not one of ours."""
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return None


def install_problem_handlers(app: FastAPI) -> None:
    """Every error the app answers becomes problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, type_=exc.type, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
        return problem_response(exc.status_code, detail, headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        detail = f"{'.'.join(first['loc'])}: {first['msg']}" if first["loc"] else str(first["msg"])
        return problem_response(422, detail, type_="urn:robopost:invalid-request", errors=errors)

    async def _typed(request: Request, exc: Exception) -> JSONResponse:
        status = status_of(exc) or 500
        headers = {"Retry-After": str(_retry_after(exc))} if status in (423, 429) else None
        type_ = f"urn:robopost:{_kebab(type(exc).__name__)}"
        return problem_response(status, str(exc), type_=type_, headers=headers)

    # typed errors get their own handlers (Starlette re-raises what the catch-all handles, which
    # would log a traceback for every 404/409 and break in-process clients)
    for cls, _ in STATUS:
        app.add_exception_handler(cls, _typed)

    @app.exception_handler(Exception)
    async def _any(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal error; the operators have the details in the log")

    _document_problems(app)


def _document_problems(app: FastAPI) -> None:
    """OpenAPI says what the handlers do: 422 is problem+json, a route with a body may answer 400."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        problem = {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}}
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses = operation["responses"]
                if "422" in responses:
                    responses["422"] = {"description": "Unprocessable Content", "content": problem}
                if "requestBody" in operation and "400" not in responses:
                    responses["400"] = {
                        "description": "Bad Request: the body cannot be parsed",
                        "content": problem,
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _retry_after(exc: Exception) -> int:
    until = getattr(exc, "retry_after_s", None)
    return max(1, round(until)) if isinstance(until, int | float) else 60


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
