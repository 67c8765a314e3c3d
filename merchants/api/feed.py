"""The vendor's live feed over HTTP: server-sent events, resumable with Last-Event-ID."""

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import Principal
from hanoipay.db import SessionLocal
from hanoipay.http import errors
from merchants.exceptions import MerchantNotFound
from merchants.service.access import require_staff
from merchants.service.feed import FeedEvent, replay_since, stream

router = APIRouter(prefix="/v1", tags=["live feed"])


def _check_access(who: Principal, merchant_id: str) -> None:
    with SessionLocal() as session:
        require_staff(session, who, merchant_id, staff_ok=False)


@router.get(
    "/merchants/{merchant_id}/feed",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **errors(MerchantNotFound)},
)
async def live_feed(
    merchant_id: str,
    request: Request,
    who: Caller,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=40)] = None,
) -> StreamingResponse:
    """The merchant's payments as they happen (server-sent events), for its staff; resumes after a drop."""
    await run_in_threadpool(_check_access, who, merchant_id)

    def replay() -> list[FeedEvent]:
        return replay_since(merchant_id, last_event_id) if last_event_id else []

    return StreamingResponse(
        stream(merchant_id, who.id, replay, request.is_disconnected),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
