"""`Idempotency-Key` for every money POST: the same key and body replay the first response.

The key row is inserted in the request's own transaction before the work runs, so a concurrent duplicate
blocks on the primary key until the first request commits, then replays its stored response; if the
first rolls back, the duplicate runs instead. Refusals (4xx) are stored too, as Stripe does: the refused
work is rolled back whole and the key is claimed again with the problem document. The answer is stored
as the bytes sent, so a replay is byte for byte the first answer. Claiming and storing are one
hand-written statement each: this runs on every money POST.
"""

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import delete, func
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from hanoipay.db import execute, request_session
from hanoipay.errors import PROBLEM_JSON, HanoiPayError, problem_body
from hanoipay.settings import get_settings
from payments.exceptions import IdempotencyKeyReused, InvalidIdempotencyKey
from payments.models import IdempotencyKey

_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")

IdempotencyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="A unique key for this operation; a retry with the same key and body replays the answer.",
    ),
]


def _fingerprint(request: Request, body: BaseModel | None) -> str:
    payload = body.model_dump(mode="json") if body is not None else None
    canonical = json.dumps([request.method, request.url.path, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class _Stored:
    request_hash: str
    status_code: int | None
    response_body: bytes | None


_CLAIM = """
INSERT INTO idempotency_key (owner, key, request_hash, expires_at, created_at)
VALUES (%s, %s, %s, now() + make_interval(hours => %s), now())
ON CONFLICT DO NOTHING RETURNING key
"""
_STORED = """
SELECT request_hash, status_code, response_body, expires_at > now() FROM idempotency_key
WHERE owner = %s AND key = %s
"""
_STORE = "UPDATE idempotency_key SET status_code = %s, response_body = %s WHERE owner = %s AND key = %s"


def _claim(session: Session, owner: str, key: str, fingerprint: str) -> _Stored | None:
    """Insert the key (one round trip); None if this request now owns it, else the committed answer.

    A concurrent request with the same key waits here, on the key's primary key, until the first one
    commits (then it replays that answer) or rolls back (then it owns the key).
    """
    hours = get_settings().idempotency_ttl_hours
    for _ in range(2):
        if execute(session, _CLAIM, (owner, key, fingerprint, hours)).fetchone() is not None:
            return None
        row = execute(session, _STORED, (owner, key)).fetchone()
        if row is None:
            continue
        request_hash, status_code, body, alive = row
        if alive:
            return _Stored(request_hash, status_code, body)
        execute(session, "DELETE FROM idempotency_key WHERE owner = %s AND key = %s", (owner, key))
    raise InvalidIdempotencyKey("The key could not be claimed; retry the request.")


def _replay(row: _Stored) -> Response:
    status = row.status_code or 200
    return Response(
        row.response_body,
        status_code=status,
        media_type=PROBLEM_JSON if status >= 400 else "application/json",
        headers={"Idempotent-Replayed": "true"},
    )


def _render(document: Any) -> bytes:
    """JSON bytes exactly as a `JSONResponse` writes them; stored so a replay sends the same bytes."""
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def run_idempotent(
    who: Principal,
    request: Request,
    key: str | None,
    body: BaseModel | None,
    work: Callable[[Session], BaseModel],
    *,
    status_code: int = 200,
    keep_on: type[HanoiPayError] | None = None,
) -> Response:
    """Run `work` once per (caller, key) in the request's own session; replay the stored answer for retries.

    A refusal undoes everything `work` wrote, except a `keep_on` error (a payment that failed), whose
    changes (the intent with its `last_payment_error`) are kept and committed with the refusal, as Stripe
    does. With a key, the refusal is stored for the key in a fresh transaction, so a retry replays it.
    The session is opened and committed here, in the endpoint's thread (see `hanoipay.db.request_session`).
    """
    with request_session() as session:
        return _run_once(session, who, request, key, body, work, status_code, keep_on)


def _run_once(
    session: Session,
    who: Principal,
    request: Request,
    key: str | None,
    body: BaseModel | None,
    work: Callable[[Session], BaseModel],
    status_code: int,
    keep_on: type[HanoiPayError] | None,
) -> Response:
    fingerprint = None
    if key is not None:
        if not _KEY_PATTERN.match(key):
            raise InvalidIdempotencyKey("Idempotency-Key must be 1 to 255 printable ASCII characters.")
        fingerprint = _fingerprint(request, body)
        existing = _claim(session, who.id, key, fingerprint)
        if existing is not None:
            return _answer_for(existing, fingerprint)
    try:
        content = (
            work(session).model_dump_json().encode()
        )  # the bytes `_render` would make, in pydantic's core
    except HanoiPayError as error:
        kept = keep_on is not None and isinstance(error, keep_on)
        if error.status >= 500 or (key is None and not kept):
            raise
        if not kept and key is not None and fingerprint is not None:
            session.rollback()
            existing = _claim(session, who.id, key, fingerprint)
            if existing is not None:  # another request took the key meanwhile and answered it
                return _answer_for(existing, fingerprint)
        content, status_code = _render(problem_body(error)), error.status
    if key is not None:
        execute(session, _STORE, (status_code, content, who.id, key))
    session.commit()
    media_type = PROBLEM_JSON if status_code >= 400 else "application/json"
    return Response(content, status_code=status_code, media_type=media_type)


def _answer_for(existing: _Stored, fingerprint: str) -> Response:
    if existing.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request; use a new key for a new operation."
        )
    return _replay(existing)


def purge_expired(session: Session) -> int:
    """Delete keys past their 24-hour life; returns how many."""
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < func.now()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
