"""What the API refuses before any endpoint sees it: a body over its limit, text PostgreSQL cannot store.

A pure ASGI middleware, so the refusal comes before the body is parsed, authenticated or routed:

- a body larger than `HANOIPAY_MAX_BODY_BYTES` (file uploads: `HANOIPAY_MAX_UPLOAD_BYTES`) gets 413
  `payload_too_large`, from its `Content-Length` at once, or as soon as a streamed body passes the limit;
- a JSON body whose strings or keys hold a NUL or a lone surrogate, and a query string or path with a
  NUL, get 422 `invalid_characters` naming where. Webhook bodies are signed by a provider and checked by
  their own endpoint (400 `malformed_webhook`), so they pass through unchanged.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hanoipay.errors import PROBLEM_JSON
from hanoipay.validation import describe, unstorable_paths

UPLOAD_TYPES = ("multipart/form-data", "text/csv", "application/xml", "text/xml", "application/octet-stream")
SIGNED_WEBHOOKS = "/v1/webhooks/"


class _TooLarge(Exception):
    pass


def _problem(status: int, code: str, title: str, detail: str) -> bytes:
    return json.dumps(
        {
            "type": f"https://hanoipay.dev/problems/{code}",
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
        },
        ensure_ascii=False,
    ).encode()


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """Refuse oversized bodies and unstorable text before the app reads them."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().decode("latin-1").lower()
        limit = self.max_upload_bytes if content_type in UPLOAD_TYPES else self.max_body_bytes
        if b"\x00" in scope.get("query_string", b"") or b"%00" in scope.get("query_string", b""):
            await _answer(send, 422, _invalid("the query string"))
            return
        if "\x00" in scope["path"]:
            await _answer(send, 422, _invalid("the path"))
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _answer(send, 413, _too_large(limit))
            return
        try:
            body, more = await _read_body(receive, limit)
        except _TooLarge:
            await _answer(send, 413, _too_large(limit))
            return
        if content_type == "application/json" and not scope["path"].startswith(SIGNED_WEBHOOKS):
            refusal = _unstorable_json(body)
            if refusal is not None:
                await _answer(send, 422, refusal)
                return
        await self.app(scope, _replay(body, more, receive), send)


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The whole body (it is bounded by `limit`), and whether the client disconnected meanwhile."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, connected: bool, receive: Receive) -> Callable[[], Awaitable[Message]]:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            if connected:
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}
        return await receive()

    return replay


def _unstorable_json(body: bytes) -> bytes | None:
    # NUL and lone surrogates can only arrive in valid JSON as \u escapes (a raw NUL is invalid JSON, and
    # UTF-8 cannot encode a surrogate), so bodies without one are not parsed here at all.
    if b"\\u" not in body:
        return None
    try:
        document: Any = json.loads(body)
    except ValueError:
        return None  # malformed JSON is the endpoint's to refuse, with its own code
    paths = list(unstorable_paths(document))
    if not paths:
        return None
    return _problem(422, "invalid_characters", "Invalid characters", describe(paths))


def _invalid(where: str) -> bytes:
    return _problem(
        422,
        "invalid_characters",
        "Invalid characters",
        f"{where.capitalize()} contains a NUL (%00) character.",
    )


def _too_large(limit: int) -> bytes:
    return _problem(
        413, "payload_too_large", "Content too large", f"The request body is larger than {limit} bytes."
    )
