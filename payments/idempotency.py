"""`Idempotency-Key` for every money POST: the same key and body replay the first response.

The key row is inserted in the request's own transaction before the work runs, so a concurrent duplicate
blocks on the primary key until the first request commits, then replays its stored response; if the
first rolls back, the duplicate runs instead. Refusals (4xx) are stored too, as Stripe does: the work
runs in a savepoint that is rolled back, and the problem document is kept with the key.
"""

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
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


def _claim(session: Session, owner: str, key: str, fingerprint: str) -> IdempotencyKey | None:
    """Insert the key; None if this request now owns it, else the existing (committed) row."""
    expires_at = datetime.now(UTC) + timedelta(hours=get_settings().idempotency_ttl_hours)
    for _ in range(2):
        inserted = session.execute(
            pg_insert(IdempotencyKey)
            .values(owner=owner, key=key, request_hash=fingerprint, expires_at=expires_at)
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        ).scalar()
        if inserted is not None:
            return None
        existing = session.execute(
            select(IdempotencyKey)
            .where(IdempotencyKey.owner == owner, IdempotencyKey.key == key)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if existing is None:
            continue
        if existing.expires_at > datetime.now(UTC):
            return existing
        session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.owner == owner, IdempotencyKey.key == key)
        )
    raise InvalidIdempotencyKey("The key could not be claimed; retry the request.")


def _replay(row: IdempotencyKey) -> Response:
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
    session: Session,
    who: Principal,
    request: Request,
    key: str | None,
    body: BaseModel | None,
    work: Callable[[], BaseModel],
    *,
    status_code: int = 200,
    keep_on: type[HanoiPayError] | None = None,
) -> Response:
    """Run `work` once per (caller, key); replay its stored response for retries with the same body.

    A refusal undoes what `work` wrote, except a `keep_on` error (a payment that failed), whose changes
    (the intent with its `last_payment_error`) are kept and committed with the refusal, as Stripe does.
    """
    if key is not None:
        if not _KEY_PATTERN.match(key):
            raise InvalidIdempotencyKey("Idempotency-Key must be 1 to 255 printable ASCII characters.")
        fingerprint = _fingerprint(request, body)
        existing = _claim(session, who.id, key, fingerprint)
        if existing is not None:
            if existing.request_hash != fingerprint:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was used with a different request; "
                    "use a new key for a new operation."
                )
            return _replay(existing)
    savepoint = session.begin_nested()
    try:
        content = _render(work().model_dump(mode="json"))
        savepoint.commit()
    except HanoiPayError as error:
        kept = keep_on is not None and isinstance(error, keep_on)
        if kept:
            savepoint.commit()
        else:
            savepoint.rollback()
        if error.status >= 500 or (key is None and not kept):
            raise
        content, status_code = _render(problem_body(error)), error.status
    if key is not None:
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.owner == who.id, IdempotencyKey.key == key)
            .values(status_code=status_code, response_body=content)
        )
    media_type = PROBLEM_JSON if status_code >= 400 else "application/json"
    return Response(content, status_code=status_code, media_type=media_type)


def purge_expired(session: Session) -> int:
    """Delete keys past their 24-hour life; returns how many."""
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < func.now()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
