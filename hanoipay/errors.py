"""One error base with an HTTP status and a stable code; one handler writes RFC 9457 problem+json."""

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


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
    async def _domain(request: Request, exc: HanoiPayError) -> JSONResponse:
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
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        title = HTTPStatus(exc.status_code).phrase
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem(exc.status_code, code, title, detail)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(
            500, "internal_error", "Internal error", "An unexpected error occurred; it was logged."
        )


def _auth_header(exc: HanoiPayError) -> Mapping[str, str] | None:
    return {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
