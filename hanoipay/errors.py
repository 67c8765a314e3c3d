"""One error base with an HTTP status and a stable code; one handler writes RFC 9457 problem+json."""

import logging
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_JSON = "application/problem+json"
PAGE_FLAG = "hanoipay.page"
log = logging.getLogger(__name__)
PageRenderer = Callable[[Request, int, str, str], Response]
_page_renderer: PageRenderer | None = None


def render_refusals_as_pages(renderer: PageRenderer) -> None:
    """Show refusals to people on pages as a page (the composition root passes the web layer's renderer)."""
    global _page_renderer
    _page_renderer = renderer


def _wants_page(request: Request) -> bool:
    """A page endpoint was being served, or a browser navigated to a path outside the JSON API."""
    if request.scope.get(PAGE_FLAG):
        return True
    accept = request.headers.get("accept", "")
    return request.method == "GET" and "text/html" in accept and not request.url.path.startswith("/v1/")


class Problem(BaseModel):
    """An RFC 9457 problem document with HanoiPay's stable `code`."""

    type: str
    title: str
    status: int
    detail: str
    code: str


class HanoiPayError(Exception):
    """A refusal the caller can act on: its class names the condition, `code` is stable once published."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(HanoiPayError):
    status = 404
    code = "not_found"
    title = "Not found"


class Forbidden(HanoiPayError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class Unauthorized(HanoiPayError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"


class InvalidRequest(HanoiPayError):
    status = 422
    code = "invalid_request"
    title = "Invalid request"


class Conflict(HanoiPayError):
    status = 409
    code = "conflict"
    title = "Conflict"


def problem(
    status: int, code: str, title: str, detail: str, instance: str | None = None, **extra: Any
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": f"https://hanoipay.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_body(error: HanoiPayError) -> dict[str, Any]:
    """The problem+json document of an error, for storing beside an idempotency key."""
    return {
        "type": f"https://hanoipay.dev/problems/{error.code}",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
        **error.extra,
    }


def _validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def install_error_handlers(app: FastAPI) -> None:
    """Make every error, validation errors included, answer with problem+json and a stable code."""

    @app.exception_handler(HanoiPayError)
    async def _domain(request: Request, exc: HanoiPayError) -> Response:
        if _page_renderer is not None and _wants_page(request):
            return _page_renderer(request, exc.status, exc.title, exc.detail)
        body = problem_body(exc)
        return JSONResponse(body, status_code=exc.status, media_type=PROBLEM_JSON, headers=_auth_header(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc.errors())
        if any(e["type"] == "json_invalid" for e in errors):
            return problem(400, "malformed_json", "Malformed JSON", "The request body is not valid JSON.")
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "Invalid request."
        return problem(422, "validation_error", "Invalid request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        title = HTTPStatus(exc.status_code).phrase
        detail = exc.detail if isinstance(exc.detail, str) else title
        if _page_renderer is not None and _wants_page(request) and exc.status_code != 405:
            return _page_renderer(request, exc.status_code, title, detail)
        response = problem(exc.status_code, code, title, detail)
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            # RFC 9110: a 405 lists every method of the resource; Starlette names only the first route's.
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        refusal = _unstorable_input(exc)
        if refusal is None:
            log.error("database data error on %s %s", request.method, request.url.path, exc_info=exc)
            return problem(
                500, "internal_error", "Internal error", "An unexpected error occurred; it was logged."
            )
        log.warning("refused unstorable input on %s %s: %s", request.method, request.url.path, exc.orig)
        return problem(422, *refusal)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(
            500, "internal_error", "Internal error", "An unexpected error occurred; it was logged."
        )


# SQLSTATEs that only a value sent by the caller can cause: text PostgreSQL cannot store, or a value
# longer than its column. Other data exceptions (division by zero, overflow) stay 500s: they are bugs.
_INPUT_DATA_ERRORS = {
    "22001": ("value_too_long", "Value too long", "A value in the request is longer than allowed."),
    "22021": ("invalid_characters", "Invalid characters", "A value in the request has invalid characters."),
    "22P05": ("invalid_characters", "Invalid characters", "A value in the request has invalid characters."),
}


def _unstorable_input(exc: DataError) -> tuple[str, str, str] | None:
    """(code, title, detail) when the database refused a value from the request, not a bug of ours."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is None and "NUL" in str(exc.orig):
        # psycopg refuses NUL before sending; PostgreSQL text cannot hold it.
        return (
            "invalid_characters",
            "Invalid characters",
            "A value in the request contains a NUL (\\u0000) character.",
        )
    return _INPUT_DATA_ERRORS.get(sqlstate or "")


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route answers on the request's path (asked of the router, which nests routers)."""
    routes = request.app.router.routes
    probe = {
        key: request.scope[key] for key in ("type", "path", "headers", "query_string") if key in request.scope
    }
    probe["root_path"] = request.scope.get("root_path", "")
    return [
        method
        for method in _METHODS
        if any(route.matches({**probe, "method": method})[0] == Match.FULL for route in routes)
    ]


def _auth_header(exc: HanoiPayError) -> Mapping[str, str] | None:
    return {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
