"""Small pieces every JSON API router shares."""

from typing import Any

from fastapi import Request

from hanoipay.errors import HanoiPayError, Problem


class UnsupportedMediaType(HanoiPayError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


async def require_json(request: Request) -> None:
    """Refuse a request with a body that is not declared as JSON (async: no thread hand-off, no I/O)."""
    if request.method in {"POST", "PUT", "PATCH"}:
        content_type = request.headers.get("content-type", "")
        has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
        if has_body and content_type.split(";")[0].strip().lower() != "application/json":
            raise UnsupportedMediaType(f"Send the body as application/json, not {content_type or 'nothing'}.")


def errors(*classes: type[HanoiPayError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the errors an endpoint may answer with, grouped by status."""
    grouped: dict[int, list[str]] = {}
    for cls in classes:
        grouped.setdefault(cls.status, []).append(cls.code)
    return {
        status: {"model": Problem, "description": "problem+json; codes: " + ", ".join(codes)}
        for status, codes in grouped.items()
    }


async def raw_body(request: Request) -> bytes:
    """The request body exactly as sent, which is what the signature covers."""
    return await request.body()
