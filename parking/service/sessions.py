"""Parking sessions: start after a binding quote, extend before expiry, end (early or late), receipts."""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role, RoleNotAllowed
from hanoipay.db import column_keys, execute, loaded
from hanoipay.errors import HanoiPayError
from hanoipay.ids import new_id
from hanoipay.jobs import written
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
from payments import intents, transitions
from payments.models import PaymentIntent
from payments.wallets import PAYEE_AND_WALLET_COLUMNS, remember_payee_and_wallet


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


_COLUMNS = tuple(column_keys(ParkingSession))  # the session's columns as `_START` returns them, in order

# One hand-written statement takes the quote, claims a spot and writes the session, so a start costs one
# round trip before the payment: the quote is marked used if it is the driver's, unused and current; the
# quoted spot (or the zone's first free spot of the type, skipping rows another start holds) is occupied;
# the session is inserted unless the plate or the spot has an open one; a session that starts now with an
# end writes its timers' outbox row (see `timers.schedule_after_commit`). If any part finds nothing,
# nothing is inserted and the caller's transaction is rolled back by the refusal `_why_not` raises. It also
# returns the zone operator and the wallet as the payment reads them, so the hold that follows in the same
# transaction does not read them again. Its row comes back as a plain tuple (the session's columns, the
# timers' outbox row, the operator and the wallet), the cheapest for psycopg to read.
_START = f"""
WITH quote AS (
    UPDATE parking_quote SET used_at = %(now)s
    WHERE id = %(quote_id)s AND driver_id = %(driver_id)s AND used_at IS NULL AND expires_at > %(now)s
    RETURNING *
), spot AS (
    UPDATE parking_spot SET state = 'occupied', state_source = 'session', state_changed_at = %(now)s
    WHERE id = (
        SELECT s.id FROM parking_spot s, quote q
        WHERE s.state = 'free' AND (
            s.id = q.spot_id
            OR (q.spot_id IS NULL AND s.zone_id = q.zone_id AND s.vehicle_type = q.vehicle_type))
        ORDER BY s.code LIMIT 1 FOR UPDATE OF s SKIP LOCKED)
    RETURNING id
), terms AS (
    SELECT q.*, s.id AS claimed_spot, (%(holds)s OR q.amount = 0) AS starts_now
    FROM quote q, spot s
), started AS (
INSERT INTO parking_session (
    id, driver_id, merchant_id, zone_id, zone_code, spot_id, quote_id, tariff_version_id, plate,
    vehicle_type, status, provider, wallet_id, payment_method, open_ended, priced_from, prepaid_minutes,
    started_at, covered_until, remind_at, currency, prepaid_amount, overstay_minutes, unpaid_amount,
    updated_at, created_at)
SELECT %(id)s, t.driver_id, t.merchant_id, t.zone_id, t.zone_code, t.claimed_spot, t.id, t.tariff_version_id,
    %(plate)s, t.vehicle_type, CASE WHEN t.starts_now THEN 'active' ELSE 'pending_payment' END, %(provider)s,
    %(wallet_id)s, %(payment_method)s, t.duration_minutes IS NULL, t.starts_at, t.minutes,
    CASE WHEN t.starts_now THEN CAST(%(now)s AS timestamptz) END,
    CASE WHEN t.starts_now THEN %(now)s + make_interval(mins => t.minutes) END,
    CASE WHEN t.starts_now AND t.duration_minutes IS NOT NULL
         THEN %(now)s + make_interval(mins => t.minutes - t.reminder_minutes) END,
    t.currency, t.amount, 0, 0, %(now)s, %(now)s
FROM terms t
ON CONFLICT DO NOTHING
RETURNING *
), timers AS (
    INSERT INTO outbox (job, kwargs)
    SELECT %(timers_job)s,
        jsonb_build_object('session_id', id, 'remind_at', remind_at, 'expire_at', covered_until)
    FROM started WHERE remind_at IS NOT NULL AND covered_until IS NOT NULL
    RETURNING id, kwargs
)
SELECT {", ".join(f"started.{name}" for name in _COLUMNS)}, timers.id, timers.kwargs,
    {PAYEE_AND_WALLET_COLUMNS}
FROM started LEFT JOIN timers ON true
LEFT JOIN merchant m ON m.id = started.merchant_id
LEFT JOIN wallet w ON w.id = started.wallet_id
"""  # noqa: S608 (a constant of the payment core, no input)


def _why_not(session: Session, who: Principal, quote_id: str, plate: str, now: datetime) -> HanoiPayError:
    """Why the start statement inserted nothing: the quote, the plate, or the spot."""
    quote = session.get(Quote, quote_id, populate_existing=True)
    if quote is None or quote.driver_id != who.id:
        return QuoteNotFound(f"No quote {quote_id}.")
    if quote.used_at is not None and quote.used_at != now:
        return QuoteUsed(f"Quote {quote_id} was used for a session already; ask for a new one.")
    if quote.used_at is None:
        return QuoteExpired(f"Quote {quote_id} expired at {quote.expires_at.isoformat()}; ask for a new one.")
    if open_session_for_plate(session, plate) is not None:
        return PlateHasOpenSession(
            f"{plate} already has an open parking session; end it before starting another."
        )
    named = session.get(Spot, quote.spot_id, populate_existing=True) if quote.spot_id else None
    if named is not None and named.state == SpotState.OUT_OF_SERVICE:
        return SpotOutOfService(f"Spot {named.code} of {quote.zone_code} is out of service.")
    if named is not None:
        return SpotTaken(f"The spot of {quote.zone_code} you were quoted was taken.")
    return SpotTaken(f"No free {quote.vehicle_type} spot is left in zone {quote.zone_code}.")


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
    when the bank reports the money.

    The session returned is outside the ORM session (`hanoipay.db.loaded`): nothing in this transaction
    changes it after the statement that wrote it, and attaching it would cost a start about a twentieth of
    its Python. Read it again with `get_session` to change it."""
    now = _now(now)
    if who.kind != "user" or who.merchant_id is not None:
        raise RoleNotAllowed("Drivers start parking sessions.")
    plate = normalize_plate(plate)
    params = {
        "id": new_id("psn"),
        "quote_id": quote_id,
        "driver_id": who.id,
        "plate": plate,
        "provider": provider,
        "wallet_id": wallet_id,
        "payment_method": payment_method,
        "holds": provider in payments.HOLDING_PROVIDERS,
        "now": now,
        "timers_job": timers.SCHEDULE,
    }
    row = execute(session, _START, params).fetchone()
    if row is None:
        raise _why_not(session, who, quote_id, plate, now)
    psn = loaded(ParkingSession, zip(_COLUMNS, row, strict=False))
    timers_outbox_id, timers_kwargs, *payee_and_wallet = row[len(_COLUMNS) :]
    remember_payee_and_wallet(session, payee_and_wallet)
    if timers_outbox_id is not None:
        written(session, timers_outbox_id, timers.SCHEDULE, timers_kwargs)
    if psn.prepaid_amount > 0:
        intent = payments.pay(session, who, psn, amount=psn.prepaid_amount, kind=PaymentKind.PREPAID)
        if intent.status not in ("requires_capture", "requires_action") or (
            intent.status == "requires_action" and provider != "vietqr"
        ):
            intents.cancel_intent(session, payments.operator(psn.merchant_id), intent.id, reason="abandoned")
            raise PaymentNotAuthorized(
                f"The payment is {intent.status}; a parking session needs a card that authorizes at once."
            )
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
            if intent.status in transitions.CANCELABLE:
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
