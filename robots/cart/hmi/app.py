"""The kiosk web app the cart serves to its touch screen, over one ``CartService``.

::

    GET  /                      the page (static/index.html; its CSS and JS under /static/)
    GET  /api/screen            what the screen shows now (``wire.screen_json``)
    WS   /api/live              the screen now, then again after every change of the service
    POST /api/code              {code, tail?} → the answer to a typed code (``wire.answer_json``)
    POST /api/staff/login       {pin} → {token, expires_in}; 401 wrong PIN, 423 locked, 403 no PIN set
    GET  /api/staff/board       (Bearer) every compartment's door and occupancy, for the staff grid
    POST /api/staff/open        (Bearer) {compartments: [int] | null} (null: all) → one result each
    POST /api/staff/logout      (Bearer) ends the staff session (204)

Every error is ``application/problem+json`` (RFC 9457) with one clear sentence in ``detail``: a body
that is not JSON or has wrong types is a 422, never a 500. The service's life cycle belongs to the
caller (``start()`` before serving, ``stop()`` after); the app only reads and calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocketDisconnect

from robots.cart.hmi.wire import answer_json, board_json, open_results_json, screen_json
from robots.cart.locker.driver import MAX_COMPARTMENTS
from robots.cart.service import (
    CartService,
    StaffError,
    StaffLocked,
    StaffNotConfigured,
    StaffSessionEnded,
)

STATIC = Path(__file__).resolve().parent / "static"
PROBLEM = "application/problem+json"
NO_STORE = {"Cache-Control": "no-store"}
PAGE_HEADERS = {
    **NO_STORE,
    # everything the page uses comes from the cart itself: no CDN, no inline script
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "
        "script-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}
EXAMPLE = {"/api/code": '{"code": "042917", "tail": "1234"}', "/api/staff/login": '{"pin": "2468"}'}


_bearer = HTTPBearer(auto_error=False, description="The staff session's token (POST /api/staff/login).")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class KioskProblem(Exception):
    """An HTTP error the kiosk answers as problem+json."""

    def __init__(self, status: int, detail: str, type_: str) -> None:
        super().__init__(detail)
        self.status, self.detail, self.type = status, detail, type_


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeIn(_Body):
    """Digits typed on the keypad; ``tail`` (the phone's last 4 digits) when the screen asks for it."""

    code: StrictStr = Field(max_length=32)
    tail: StrictStr | None = Field(default=None, max_length=16)


class LoginIn(_Body):
    """The staff PIN."""

    pin: StrictStr = Field(max_length=64)


class OpenIn(_Body):
    """Which compartments to open: a list of numbers, or null for all of them (the key is required)."""

    compartments: list[Annotated[StrictInt, Field(ge=1, le=MAX_COMPARTMENTS)]] | None = Field(
        max_length=MAX_COMPARTMENTS
    )


def create_kiosk_app(service: CartService) -> FastAPI:
    """The kiosk app over ``service`` (see the module docstring); the caller starts and stops it."""
    app = FastAPI(
        title="robopost cart kiosk",
        description="The pickup-code screen of one delivery cart.",
        docs_url=None,  # the interactive docs pull scripts from a CDN: the cart serves only its own files
        redoc_url=None,
    )
    app.state.service = service
    _install_problems(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    @app.get("/api/screen")
    async def screen() -> JSONResponse:
        """What the screen shows now."""
        return JSONResponse(screen_json(service.screen()), headers=NO_STORE)

    @app.post("/api/code")
    async def code(body: CodeIn) -> dict[str, Any]:
        """Check a typed code offline and open its compartment; every outcome is a 200 with ``result``."""
        return answer_json(await service.enter_code(body.code, body.tail))

    @app.websocket("/api/live")
    async def live(socket: WebSocket) -> None:
        """The screen now, then after every change, until the page goes away."""
        await socket.accept()
        await _stream_screen(service, socket)

    @app.post("/api/staff/login")
    async def staff_login(body: LoginIn) -> dict[str, Any]:
        """A staff session for the right PIN."""
        try:
            token = await service.staff_login(body.pin)
        except StaffError as exc:
            raise _staff_problem(exc) from None
        return {"token": token, "expires_in": service.settings.staff_session_s}

    @app.get("/api/staff/board")
    async def staff_board(credentials: Credentials) -> JSONResponse:
        """Every compartment's door and occupancy (and any watch running on it)."""
        token = _token(credentials)
        try:
            service.check_staff(token)
        except StaffError as exc:
            raise _staff_problem(exc) from None
        watched = {c.number: c for c in service.screen().compartments}
        return JSONResponse(board_json(service.board.snapshot(), watched), headers=NO_STORE)

    @app.post("/api/staff/open")
    async def staff_open(body: OpenIn, credentials: Credentials) -> dict[str, Any]:
        """Open the chosen compartments (null: all) for loading or unloading."""
        token = _token(credentials)
        try:
            results = await service.staff_open(token, body.compartments)
        except StaffError as exc:
            raise _staff_problem(exc) from None
        return open_results_json(results)

    @app.post("/api/staff/logout", status_code=204)
    async def staff_logout(credentials: Credentials) -> Response:
        """End the staff session (also fine when it has ended already)."""
        service.staff_logout(_token(credentials))
        return Response(status_code=204)

    return app


async def _stream_screen(service: CartService, socket: WebSocket) -> None:
    """Send every screen until the client leaves; its messages are ignored (it only listens)."""

    async def push() -> None:
        views = service.changes()
        async with contextlib.aclosing(views):
            async for view in views:
                await socket.send_json(screen_json(view))

    async def listen() -> None:
        while (await socket.receive())["type"] != "websocket.disconnect":
            pass

    tasks = {asyncio.create_task(push()), asyncio.create_task(listen())}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        error = None if task.cancelled() else task.exception()
        if error is not None and not isinstance(error, WebSocketDisconnect):
            raise error


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None:
        raise KioskProblem(
            401, "staff mode needs the token from /api/staff/login", "urn:robopost:kiosk:staff-session"
        )
    return credentials.credentials


def _staff_problem(exc: StaffError) -> KioskProblem:
    """401 for a wrong PIN or an ended session, 423 while locked, 403 when no PIN is configured."""
    message = str(exc)
    if isinstance(exc, StaffLocked):
        return KioskProblem(423, message, "urn:robopost:kiosk:staff-locked")
    if isinstance(exc, StaffNotConfigured):
        return KioskProblem(403, message, "urn:robopost:kiosk:no-staff-pin")
    if isinstance(exc, StaffSessionEnded):
        return KioskProblem(401, message, "urn:robopost:kiosk:staff-session")
    return KioskProblem(401, message, "urn:robopost:kiosk:wrong-pin")


# --- problem+json -----------------------------------------------------------------------------------


def problem(status: int, detail: str, type_: str, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem response."""
    title = _TITLES.get(status, "Error")
    body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": 'Bearer realm="robopost-kiosk"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


_TITLES = {
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    422: "Unprocessable Content",
    423: "Locked",
}


def _install_problems(app: FastAPI) -> None:
    async def kiosk_problem(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, KioskProblem)
        return problem(exc.status, exc.detail, exc.type)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [_error(e) for e in exc.errors()]
        return problem(
            422,
            _sentence(request.url.path, exc.errors()),
            "urn:robopost:kiosk:invalid-request",
            errors=errors,
        )

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem(exc.status_code, str(exc.detail), f"urn:robopost:kiosk:http-{exc.status_code}")

    app.add_exception_handler(KioskProblem, kiosk_problem)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)


def _error(error: Any) -> dict[str, Any]:
    return {"loc": [str(p) for p in error.get("loc", ())], "msg": str(error.get("msg", ""))}


def _sentence(path: str, errors: Any) -> str:
    """One sentence for people: what was wrong and what a right body looks like."""
    example = EXAMPLE.get(path)
    shape = f" Send JSON like {example}." if example else ""
    first = errors[0] if errors else {}
    kind = first.get("type", "")
    loc = [str(p) for p in first.get("loc", ())]
    where = "The request body" if not loc or loc[0] == "body" else f"The request's {loc[0]}"
    field = ".".join(loc[1:]) or "the body"
    if kind == "json_invalid":
        return f"The request body is not valid JSON.{shape}"
    if kind == "missing" and len(loc) < 2:
        return f"The request body is empty.{shape}"
    if kind == "missing":
        return f"{where} lacks {field}.{shape}"
    if kind == "extra_forbidden":
        return f"{where} has an unknown field {field}.{shape}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"The request body must be a JSON object.{shape}"
    return f"{field}: {first.get('msg', 'invalid value')}.{shape}"
