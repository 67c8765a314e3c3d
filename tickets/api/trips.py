"""Passes, trips and what they cost: buying passes, trips, service days, cap progress, paying a debt."""

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from hanoipay.auth.deps import Caller
from hanoipay.db import DbSession
from hanoipay.http import errors
from hanoipay.pagination import Cursor, Limit, ListOut, paginate
from payments.exceptions import IdempotencyKeyReused, InsufficientFunds
from payments.idempotency import IdempotencyHeader, run_idempotent
from tickets.api.deps import JSON
from tickets.exceptions import (
    CardNotFound,
    CardRevoked,
    NoActiveFeed,
    NoDebt,
    NotAPass,
    ProductNotFound,
)
from tickets.models import FareDay, TransitTrip
from tickets.schemas import (
    CapProgressOut,
    ChargeRunOut,
    FareDayOut,
    PassIn,
    PassOut,
    TripOut,
)
from tickets.service import cards, charging, passes
from tickets.service.days import current_service_day

router = APIRouter(prefix="/v1/transit", tags=["transit"])


@router.post(
    "/cards/{card_id}/passes",
    status_code=201,
    dependencies=JSON,
    responses={
        **errors(
            CardNotFound, CardRevoked, ProductNotFound, NotAPass, InsufficientFunds, IdempotencyKeyReused
        ),
        201: {"model": PassOut},
    },
)
def buy_pass(
    card_id: str,
    body: PassIn,
    request: Request,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Buy a pass (a day ticket, a monthly pass) for the card from its wallet, through the payment core."""
    return run_idempotent(
        who,
        request,
        idempotency_key,
        body,
        lambda session: PassOut.model_validate(
            passes.buy_pass(session, who, card_id, product_id=body.product_id, starts_on=body.starts_on)
        ),
        status_code=201,
    )


@router.get("/cards/{card_id}/passes", responses=errors(CardNotFound))
def list_passes(card_id: str, session: DbSession, who: Caller) -> list[PassOut]:
    """The card's passes."""
    return [PassOut.model_validate(p) for p in passes.list_passes(session, who, card_id)]


@router.get("/cards/{card_id}/trips", responses=errors(CardNotFound))
def list_trips(
    card_id: str,
    session: DbSession,
    who: Caller,
    service_day: date | None = None,
    limit: Limit = 25,
    starting_after: Cursor = None,
) -> ListOut[TripOut]:
    """The card's trips, newest first: what each cost and why (product, concession, pass, transfer, cap)."""
    card = cards.get_card(session, who, card_id)
    page = paginate(
        session,
        passes.trips_query(card, service_day),
        TransitTrip.id,
        limit=limit,
        starting_after=starting_after,
    )
    return ListOut[TripOut].of(page, TripOut.model_validate)


@router.get("/cards/{card_id}/days", responses=errors(CardNotFound))
def list_days(
    card_id: str, session: DbSession, who: Caller, limit: Annotated[int, Query(ge=1, le=100)] = 31
) -> list[FareDayOut]:
    """The card's service days, newest first: total after capping, charged, pending and owed."""
    card = cards.get_card(session, who, card_id)
    rows = session.scalars(
        select(FareDay).where(FareDay.card_id == card.id).order_by(FareDay.service_day.desc()).limit(limit)
    )
    return [
        FareDayOut.model_validate(day).model_copy(
            update={
                "pending": 0 if day.closed else day.total_amount - day.charged_amount,
                "owed": max(0, day.total_amount - day.charged_amount) if day.closed else 0,
            }
        )
        for day in rows
    ]


@router.get("/cards/{card_id}/caps", responses=errors(CardNotFound, NoActiveFeed))
def cap_progress(
    card_id: str, session: DbSession, who: Caller, service_day: date | None = None
) -> list[CapProgressOut]:
    """Progress towards each cap the card's rides touched: daily caps, and monthly ones ('earn the pass')."""
    card = cards.get_card(session, who, card_id)
    day = service_day or current_service_day(datetime.now(UTC))
    return [CapProgressOut.model_validate(row) for row in passes.cap_progress(session, card, day)]


@router.post(
    "/cards/{card_id}/pay_debt",
    responses={
        **errors(CardNotFound, NoDebt, InsufficientFunds, IdempotencyKeyReused),
        200: {"model": ChargeRunOut},
    },
)
def pay_debt(
    card_id: str, request: Request, who: Caller, idempotency_key: IdempotencyHeader = None
) -> Response:
    """Pay what the card owes from its wallet, in full; the card leaves the deny list at once."""

    def work(session: Session) -> ChargeRunOut:
        run = charging.pay_debt(session, who, card_id)
        return ChargeRunOut(days=run.days, charged=run.charged, refunded=run.refunded)

    return run_idempotent(who, request, idempotency_key, None, work)
