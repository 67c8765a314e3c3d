"""Parking sessions: start after a binding quote, extend before expiry, end (early or late), receipts."""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role, RoleNotAllowed
from hanoipay.ids import new_id
from hanoipay.pagination import Page, paginate
from parking.exceptions import (
    DurationOutOfRange,
    PaymentNotAuthorized,
    PlateHasOpenSession,
    QuoteExpired,
    QuoteNotFound,
    QuoteUsed,
    SessionNotEndable,
    SessionNotExtendable,
    SessionNotFound,
    SpotOutOfService,
    SpotTaken,
)
from parking.models import (
    OPEN_STATUSES,
    ParkingSession,
    PaymentKind,
    Quote,
    SessionStatus,
    Spot,
    SpotState,
    TariffVersion,
    UnusedTimeRule,
    Zone,
)
from parking.plates import normalize_plate
from parking.service import payments, timers
from parking.service.quotes import price
from payments import intents
from payments.models import PaymentIntent


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _use_quote(session: Session, who: Principal, quote_id: str, now: datetime) -> Quote:
    """Mark the driver's quote used, if it can be; otherwise say why not."""
    quote: Quote | None = session.scalar(
        update(Quote)
        .where(
            Quote.id == quote_id, Quote.driver_id == who.id, Quote.used_at.is_(None), Quote.expires_at > now
        )
        .values(used_at=now)
        .returning(Quote)
    )
    if quote is not None:
        return quote
    found = session.get(Quote, quote_id)
    if found is None or found.driver_id != who.id:
        raise QuoteNotFound(f"No quote {quote_id}.")
    if found.used_at is not None:
        raise QuoteUsed(f"Quote {quote_id} was used for a session already; ask for a new one.")
    raise QuoteExpired(f"Quote {quote_id} expired at {found.expires_at.isoformat()}; ask for a new one.")


def _claim_spot(session: Session, quote: Quote, now: datetime) -> Spot:
    """Occupy the quoted spot, or any free spot of the zone, in one statement; SpotTaken if there is none.

    Two drivers racing for the last spot both run this UPDATE: the second waits for the first's row lock
    (or skips the row it holds) and then finds no free spot."""
    taken = update(Spot).values(state=SpotState.OCCUPIED, state_source="session", state_changed_at=now)
    if quote.spot_id is not None:
        spot: Spot | None = session.scalar(
            taken.where(Spot.id == quote.spot_id, Spot.state == SpotState.FREE).returning(Spot)
        )
        if spot is None:
            named = session.get(Spot, quote.spot_id)
            if named is not None and named.state == SpotState.OUT_OF_SERVICE:
                raise SpotOutOfService(f"Spot {named.code} of {quote.zone_code} is out of service.")
            raise SpotTaken(f"The spot of {quote.zone_code} you were quoted was taken.")
        return spot
    free = (
        select(Spot.id)
        .where(
            Spot.zone_id == quote.zone_id,
            Spot.vehicle_type == quote.vehicle_type,
            Spot.state == SpotState.FREE,
        )
        .order_by(Spot.code)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claimed: Spot | None = session.scalar(taken.where(Spot.id == free).returning(Spot))
    if claimed is None:
        raise SpotTaken(f"No free {quote.vehicle_type} spot is left in zone {quote.zone_code}.")
    return claimed


def _insert(session: Session, values: dict[str, Any]) -> ParkingSession:
    """Insert the session unless the plate (or the spot) already has an open one."""
    psn: ParkingSession | None = session.scalar(
        insert(ParkingSession).values(**values).on_conflict_do_nothing().returning(ParkingSession)
    )
    if psn is not None:
        return psn
    if open_session_for_plate(session, values["plate"]) is not None:
        raise PlateHasOpenSession(
            f"{values['plate']} already has an open parking session; end it before starting another."
        )
    raise SpotTaken("The spot was taken.")


def start_session(
    session: Session,
    who: Principal,
    *,
    quote_id: str,
    plate: str,
    provider: str,
    wallet_id: str | None = None,
    payment_method: str | None = None,
    now: datetime | None = None,
) -> ParkingSession:
    """Start a session on a quote: a hold (wallet, card) starts it at once; a VietQR transfer starts it
    when the bank reports the money."""
    now = _now(now)
    if who.kind != "user" or who.merchant_id is not None:
        raise RoleNotAllowed("Drivers start parking sessions.")
    plate = normalize_plate(plate)
    quote = _use_quote(session, who, quote_id, now)
    spot = _claim_spot(session, quote, now)
    starts_now = provider in payments.HOLDING_PROVIDERS or quote.amount == 0
    covered_until = now + timedelta(minutes=quote.minutes)
    psn = _insert(
        session,
        {
            "id": new_id("psn"),
            "driver_id": who.id,
            "merchant_id": quote.merchant_id,
            "zone_id": quote.zone_id,
            "zone_code": quote.zone_code,
            "spot_id": spot.id,
            "quote_id": quote.id,
            "tariff_version_id": quote.tariff_version_id,
            "plate": plate,
            "vehicle_type": quote.vehicle_type,
            "status": SessionStatus.ACTIVE if starts_now else SessionStatus.PENDING_PAYMENT,
            "provider": provider,
            "wallet_id": wallet_id,
            "payment_method": payment_method,
            "open_ended": quote.duration_minutes is None,
            "priced_from": quote.starts_at,
            "prepaid_minutes": quote.minutes,
            "started_at": now if starts_now else None,
            "covered_until": covered_until if starts_now else None,
            "remind_at": _remind_at(quote, covered_until) if starts_now else None,
            "currency": quote.currency,
            "prepaid_amount": quote.amount,
            "overstay_minutes": 0,
            "unpaid_amount": 0,
            "updated_at": now,
            "created_at": now,
        },
    )
    if quote.amount > 0:
        intent = payments.pay(session, who, psn, amount=quote.amount, kind=PaymentKind.PREPAID)
        if intent.status not in ("requires_capture", "requires_action") or (
            intent.status == "requires_action" and provider != "vietqr"
        ):
            intents.cancel_intent(session, payments.operator(psn.merchant_id), intent.id, reason="abandoned")
            raise PaymentNotAuthorized(
                f"The payment is {intent.status}; a parking session needs a card that authorizes at once."
            )
    if starts_now:
        timers.schedule_after_commit(session, psn)
    return psn


def _remind_at(quote: Quote, covered_until: datetime) -> datetime | None:
    if quote.duration_minutes is None:
        return None  # an open-ended session has no end to remind of
    return covered_until - timedelta(minutes=quote.reminder_minutes)


def activate(session: Session, psn: ParkingSession, now: datetime) -> None:
    """The session's prepayment arrived (a transfer): it runs from now, and its timers are set."""
    quote = session.get(Quote, psn.quote_id)
    assert quote is not None
    psn.status = SessionStatus.ACTIVE
    psn.started_at = now
    psn.covered_until = now + timedelta(minutes=psn.prepaid_minutes)
    psn.remind_at = _remind_at(quote, psn.covered_until)
    psn.updated_at = now
    session.flush()
    timers.schedule_after_commit(session, psn)


def get_session(
    session: Session, who: Principal, session_id: str, *, for_update: bool = False
) -> ParkingSession:
    """The session, for its driver, its operator's staff and admins; 404 for anyone else."""
    psn = session.get(ParkingSession, session_id, with_for_update=for_update, populate_existing=for_update)
    if psn is None or not (psn.driver_id == who.id or who.can_act_for_merchant(psn.merchant_id)):
        raise SessionNotFound(f"No parking session {session_id}.")
    return psn


def list_sessions(
    session: Session, who: Principal, *, limit: int, starting_after: str | None
) -> Page[ParkingSession]:
    """The driver's sessions (the operator's, for its staff), newest first."""
    query = select(ParkingSession)
    if who.merchant_id is not None:
        query = query.where(ParkingSession.merchant_id == who.merchant_id)
    elif not who.is_staff:
        query = query.where(ParkingSession.driver_id == who.id)
    return paginate(session, query, ParkingSession.id, limit=limit, starting_after=starting_after)


def extend_session(
    session: Session, who: Principal, session_id: str, *, minutes: int, now: datetime | None = None
) -> ParkingSession:
    """Add paid time before the session expires, paying the difference in price (a new hold or transfer)."""
    now = _now(now)
    psn = get_session(session, who, session_id, for_update=True)
    if psn.driver_id != who.id:
        raise SessionNotFound(f"No parking session {session_id}.")
    if psn.open_ended:
        raise SessionNotExtendable("An open-ended session runs until it is ended; it needs no extension.")
    if psn.status != SessionStatus.ACTIVE or psn.covered_until is None or psn.covered_until <= now:
        state = psn.status if psn.status != SessionStatus.ACTIVE else SessionStatus.EXPIRED
        raise SessionNotExtendable(f"The session is {state}; only an active session can be extended.")
    if any(
        i.status == "requires_action" and payments.kind_of(i) == PaymentKind.EXTENSION
        for i in payments.payments_of(session, psn)
    ):
        raise SessionNotExtendable("An extension is waiting for its transfer; pay it first.")
    zone = session.get(Zone, psn.zone_id)
    version = session.get(TariffVersion, psn.tariff_version_id)
    assert zone is not None
    assert version is not None
    total = psn.prepaid_minutes + minutes
    if total > zone.max_duration_minutes:
        raise DurationOutOfRange(
            f"Zone {zone.code} takes stays of up to {zone.max_duration_minutes} minutes; "
            f"this would make {total}."
        )
    difference = (
        price(version, psn.priced_from, total).amount
        - price(version, psn.priced_from, psn.prepaid_minutes).amount
    )
    if difference > 0:
        intent = payments.pay(
            session, who, psn, amount=difference, kind=PaymentKind.EXTENSION, minutes=minutes
        )
        if intent.status == "requires_action":
            return psn  # applied when the bank reports the transfer
    apply_extension(session, psn, minutes, difference, now)
    return psn


def apply_extension(session: Session, psn: ParkingSession, minutes: int, amount: int, now: datetime) -> None:
    """Add paid minutes to the session (and make an expired one active again if they reach past now)."""
    assert psn.covered_until is not None
    psn.prepaid_minutes += minutes
    psn.prepaid_amount += amount
    psn.covered_until += timedelta(minutes=minutes)
    if psn.remind_at is not None:
        psn.remind_at += timedelta(minutes=minutes)
    if psn.status == SessionStatus.EXPIRED and psn.covered_until > now:
        psn.status = SessionStatus.ACTIVE
    psn.updated_at = now
    session.flush()
    timers.schedule_after_commit(session, psn)


def charge_for(
    psn: ParkingSession, zone: Zone, version: TariffVersion, ended_at: datetime
) -> tuple[int, int, int]:
    """(amount, minutes charged, overstay minutes) for a session ending at `ended_at`, by the zone's rules."""
    assert psn.started_at is not None
    used = max(1, math.ceil((ended_at - psn.started_at).total_seconds() / 60))
    prepaid = psn.prepaid_minutes
    if not psn.open_ended and prepaid < used <= prepaid + zone.grace_minutes:
        used = prepaid
    overstay = max(0, used - prepaid)
    charged = prepaid if zone.unused_time_rule == UnusedTimeRule.KEEP and used < prepaid else used
    return price(version, psn.priced_from, charged).amount, charged, overstay


def end_session(
    session: Session, who: Principal, session_id: str, *, now: datetime | None = None
) -> ParkingSession:
    """End the session now: charge the time used by the zone's rule, release or refund the rest, charge any
    overstay; frees the spot. The driver, the operator's attendants and the expiry jobs may end it."""
    now = _now(now)
    psn = get_session(session, who, session_id, for_update=True)
    if psn.driver_id != who.id and not who.is_staff and not who.has(Role.OPERATOR, "merchant_system"):
        raise SessionNotFound(f"No parking session {session_id}.")
    zone = session.get(Zone, psn.zone_id)
    assert zone is not None
    if psn.status == SessionStatus.PENDING_PAYMENT:
        for intent in payments.payments_of(session, psn):
            if intent.status in intents.CANCELABLE:
                intents.cancel_intent(
                    session, payments.operator(psn.merchant_id), intent.id, reason="abandoned"
                )
        cancel(session, psn, now)
        return psn
    if psn.status not in (SessionStatus.ACTIVE, SessionStatus.EXPIRED):
        raise SessionNotEndable(f"The session is {psn.status}; it cannot be ended again.")
    version = session.get(TariffVersion, psn.tariff_version_id)
    assert version is not None
    charge, _, overstay = charge_for(psn, zone, version, now)
    psn.unpaid_amount = payments.settle(session, psn, charge)
    psn.charged_amount, psn.overstay_minutes = charge, overstay
    psn.status, psn.ended_at, psn.ended_by, psn.updated_at = SessionStatus.ENDED, now, who.id, now
    _free_spot(session, psn, now)
    session.flush()
    return psn


def cancel(session: Session, psn: ParkingSession, now: datetime) -> None:
    """The session never started (its transfer never came): free its spot."""
    psn.status, psn.ended_at, psn.updated_at, psn.charged_amount = SessionStatus.CANCELED, now, now, 0
    _free_spot(session, psn, now)
    session.flush()


def _free_spot(session: Session, psn: ParkingSession, now: datetime) -> None:
    spot = session.get(Spot, psn.spot_id, with_for_update=True)
    if spot is not None and spot.state == SpotState.OCCUPIED:
        spot.state, spot.state_source, spot.state_changed_at = SpotState.FREE, "session", now


@dataclass(frozen=True)
class Receipt:
    """What a session cost and how it was paid."""

    psn: ParkingSession
    zone: Zone
    spot: Spot
    version: TariffVersion
    payments: list[PaymentIntent]

    @property
    def paid_amount(self) -> int:
        """What the driver's payments took, less refunds."""
        return sum(i.amount_received - i.amount_refunded for i in self.payments)


def receipt(session: Session, who: Principal, session_id: str) -> Receipt:
    """The session's receipt: times, plate, zone, the tariff decision, every payment and refund."""
    psn = get_session(session, who, session_id)
    zone, spot = session.get(Zone, psn.zone_id), session.get(Spot, psn.spot_id)
    version = session.get(TariffVersion, psn.tariff_version_id)
    assert zone is not None
    assert spot is not None
    assert version is not None
    return Receipt(psn, zone, spot, version, payments.payments_of(session, psn))


def open_session_for_plate(session: Session, plate: str) -> ParkingSession | None:
    """The plate's open session, if any."""
    return session.scalar(
        select(ParkingSession).where(ParkingSession.plate == plate, ParkingSession.status.in_(OPEN_STATUSES))
    )
