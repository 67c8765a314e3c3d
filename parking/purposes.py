"""The `parking_session` purpose: what the payment core tells parking, inside the payment's transaction.

A transfer that pays a session's prepayment starts the session in the same transaction as the payment
(so an attendant's look-up sees it the moment the money is in); one that pays an extension adds its
minutes; one that pays an overstay clears what was owed. A prepayment canceled before it was paid (the
QR expired) cancels the session and frees its spot.
"""

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from parking.exceptions import SessionNotFound
from parking.models import ParkingSession, PaymentKind, SessionStatus
from parking.service import sessions
from parking.service.payments import CREATING, HOLDING_PROVIDERS, PURPOSE, kind_of
from payments.models import PaymentIntent
from payments.purposes import Purpose


def _validate(session: Session, who: Principal, intent: PaymentIntent) -> None:
    """Parking intents are made by the parking service, for the session it is paying for, never directly."""
    if intent.purpose_ref is None or session.info.get(CREATING) != intent.purpose_ref:
        raise SessionNotFound("Parking payments are made through /v1/parking/sessions.")


def _session(session: Session, intent: PaymentIntent) -> ParkingSession:
    psn = session.get(ParkingSession, intent.purpose_ref, with_for_update=True, populate_existing=True)
    assert psn is not None  # the parking service made the intent for this session (`_validate`)
    return psn


def _succeeded(session: Session, intent: PaymentIntent) -> None:
    """A transfer arrived: start the session, add the extension's minutes, or clear the overstay owed.

    Holds (wallet, card) are applied when they are placed; their capture at the end changes nothing here.
    """
    if intent.provider in HOLDING_PROVIDERS and kind_of(intent) != PaymentKind.OVERSTAY:
        return
    psn = _session(session, intent)
    now = datetime.now(UTC)
    kind = kind_of(intent)
    if kind == PaymentKind.PREPAID and psn.status == SessionStatus.PENDING_PAYMENT:
        sessions.activate(session, psn, now)
    elif kind == PaymentKind.EXTENSION and psn.status in (SessionStatus.ACTIVE, SessionStatus.EXPIRED):
        minutes = int(intent.metadata_.get("minutes", "0"))
        sessions.apply_extension(session, psn, minutes, intent.amount, now)
    elif kind == PaymentKind.OVERSTAY:
        psn.unpaid_amount = max(0, psn.unpaid_amount - intent.amount_received)


def _canceled(session: Session, intent: PaymentIntent) -> None:
    """A prepayment canceled before it was paid (its QR expired): the session never starts."""
    if kind_of(intent) != PaymentKind.PREPAID or intent.provider in HOLDING_PROVIDERS:
        return
    psn = _session(session, intent)
    if psn.status == SessionStatus.PENDING_PAYMENT:
        sessions.cancel(session, psn, datetime.now(UTC))


PARKING_SESSION = Purpose(
    name=PURPOSE,
    requires_merchant=True,
    providers=frozenset({"wallet", "stripe", "vietqr"}),
    validate=_validate,
    on_succeeded=_succeeded,
    on_canceled=_canceled,
)
