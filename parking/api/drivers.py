"""Drivers: search for a spot, get a binding quote, start, extend and end a session, see the receipt."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime
from sqlalchemy.orm import Session

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import RoleNotAllowed
from hanoipay.db import DbSession
from hanoipay.http import errors, require_json
from hanoipay.pagination import Cursor, Limit
from parking.api.convert import price_out, receipt_out, session_out
from parking.exceptions import (
    DurationOutOfRange,
    InvalidPlate,
    InvalidSearch,
    NoTariff,
    PaymentNotAuthorized,
    PlateHasOpenSession,
    QuoteExpired,
    QuoteNotFound,
    QuoteUsed,
    SessionNotEndable,
    SessionNotExtendable,
    SessionNotFound,
    SpotNotFound,
    SpotOutOfService,
    SpotTaken,
    ZoneNotFound,
)
from parking.models import TariffVersion, VehicleType
from parking.schemas import (
    QuoteCreate,
    QuoteOut,
    ReceiptOut,
    SearchHitOut,
    SearchOut,
    SessionCreate,
    SessionExtend,
    SessionList,
    SessionOut,
    ZoneBrief,
)
from parking.service import quotes, search, sessions
from payments.exceptions import IdempotencyKeyReused, InsufficientFunds, PaymentMethodRequired, WalletNotFound
from payments.idempotency import IdempotencyHeader, run_idempotent

router = APIRouter(prefix="/v1/parking", tags=["parking"], dependencies=[Depends(require_json)])
PAY_ERRORS = (
    InsufficientFunds,
    WalletNotFound,
    PaymentMethodRequired,
    IdempotencyKeyReused,
    PaymentNotAuthorized,
)


@router.get("/search", responses=errors(InvalidSearch, DurationOutOfRange))
def search_zones(
    session: DbSession,
    who: Caller,
    vehicle_type: Annotated[VehicleType, Query()] = VehicleType.CAR,
    duration_minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 60,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    radius_m: Annotated[int, Query(ge=1, le=search.MAX_RADIUS_M)] = 500,
    street: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    zone_code: Annotated[str | None, Query(max_length=32)] = None,
    arrival: Annotated[AwareDatetime | None, Query(description="When you will arrive; default now")] = None,
    limit: Annotated[int, Query(ge=1, le=search.MAX_LIMIT)] = 10,
) -> SearchOut:
    """The nearest zones with a free spot for the vehicle, their distance and the price of the stay."""
    arrival = arrival or datetime.now(UTC)
    hits = search.search(
        session,
        vehicle_type=vehicle_type,
        duration_minutes=duration_minutes,
        lat=lat,
        lon=lon,
        radius_m=radius_m,
        street=street,
        zone_code=zone_code,
        arrival=arrival,
        limit=limit,
    )
    return SearchOut(
        data=[
            SearchHitOut(
                zone=ZoneBrief(**hit.zone),
                distance_m=None if hit.distance_m is None else round(hit.distance_m, 1),
                free_spots=hit.free_spots,
                vehicle_type=vehicle_type,
                duration_minutes=duration_minutes,
                arrival=arrival,
                quote=price_out(hit.version, hit.priced),
            )
            for hit in hits
        ]
    )


@router.post(
    "/quotes",
    status_code=201,
    responses=errors(ZoneNotFound, SpotNotFound, SpotTaken, SpotOutOfService, DurationOutOfRange, NoTariff),
)
def create_quote(body: QuoteCreate, session: DbSession, who: Caller) -> QuoteOut:
    """A binding price for parking from now, valid for 10 minutes: start a session with its id."""
    quote, priced = quotes.create_quote(
        session,
        who,
        zone_code=body.zone_code,
        vehicle_type=body.vehicle_type,
        duration_minutes=body.duration_minutes,
        spot_id=body.spot_id,
    )
    version = session.get(TariffVersion, quote.tariff_version_id)
    assert version is not None
    return QuoteOut(
        id=quote.id,
        zone_code=body.zone_code,
        spot_id=quote.spot_id,
        vehicle_type=quote.vehicle_type,
        duration_minutes=quote.duration_minutes,
        open_ended=quote.duration_minutes is None,
        amount=quote.amount,
        currency=quote.currency,
        starts_at=quote.starts_at,
        expires_at=quote.expires_at,
        price=price_out(version, priced),
    )


@router.post(
    "/sessions",
    status_code=201,
    response_model=SessionOut,
    responses=errors(
        *PAY_ERRORS,
        QuoteNotFound,
        QuoteExpired,
        QuoteUsed,
        InvalidPlate,
        SpotTaken,
        SpotOutOfService,
        PlateHasOpenSession,
        RoleNotAllowed,
    ),
)
def start_session(
    body: SessionCreate,
    request: Request,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Start a session on a quote for a plate, paid by wallet or card (a hold) or VietQR (a transfer)."""

    def work(session: Session) -> SessionOut:
        psn = sessions.start_session(session, who, **body.model_dump())
        return session_out(session, psn)

    return run_idempotent(who, request, idempotency_key, body, work, status_code=201)


@router.get("/sessions")
def list_sessions(
    session: DbSession, who: Caller, limit: Limit = 25, starting_after: Cursor = None
) -> SessionList:
    """The caller's sessions, newest first (the operator's, for its staff)."""
    page = sessions.list_sessions(session, who, limit=limit, starting_after=starting_after)
    return SessionList(
        data=[session_out(session, psn) for psn in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor,
    )


@router.get("/sessions/{session_id}", responses=errors(SessionNotFound))
def get_session(session_id: str, session: DbSession, who: Caller) -> SessionOut:
    """One session."""
    return session_out(session, sessions.get_session(session, who, session_id))


@router.post(
    "/sessions/{session_id}/extend",
    response_model=SessionOut,
    responses=errors(*PAY_ERRORS, SessionNotFound, SessionNotExtendable, DurationOutOfRange),
)
def extend_session(
    session_id: str,
    body: SessionExtend,
    request: Request,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Add minutes before the paid time runs out, paying the difference."""

    def work(session: Session) -> SessionOut:
        psn = sessions.extend_session(session, who, session_id, minutes=body.minutes)
        return session_out(session, psn)

    return run_idempotent(who, request, idempotency_key, body, work)


@router.post(
    "/sessions/{session_id}/end",
    response_model=SessionOut,
    responses=errors(SessionNotFound, SessionNotEndable, IdempotencyKeyReused),
)
def end_session(
    session_id: str,
    request: Request,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """End the session now: the time used is charged, the rest released or refunded, an overstay charged."""

    def work(session: Session) -> SessionOut:
        return session_out(session, sessions.end_session(session, who, session_id))

    return run_idempotent(who, request, idempotency_key, None, work)


@router.get("/sessions/{session_id}/receipt", responses=errors(SessionNotFound))
def get_receipt(session_id: str, session: DbSession, who: Caller) -> ReceiptOut:
    """The session's receipt."""
    return receipt_out(session, sessions.receipt(session, who, session_id))
