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
from parking.models import ParkingSession, PaymentKind, SessionPayment, SessionStatus
from parking.service import sessions
from parking.service.payments import CREATING, PURPOSE
from payments.models import PaymentIntent
from payments.purposes import Purpose


def _validate(session: Session, who: Principal, intent: PaymentIntent) -> None:
    """Parking intents are made by the parking service for one of its sessions, never directly."""
    if not session.info.get(CREATING) or session.get(ParkingSession, intent.purpose_ref or "") is None:
        raise SessionNotFound("Parking payments are made through /v1/parking/sessions.")


def _payment(session: Session, intent: PaymentIntent) -> tuple[SessionPayment, ParkingSession] | None:
    payment = session.get(SessionPayment, intent.id, with_for_update=True)
    if payment is None:
        return None  # the intent is being created right now (an automatic wallet payment): nothing to do
    psn = session.get(ParkingSession, payment.session_id, with_for_update=True, populate_existing=True)
    assert psn is not None
    return payment, psn


def _succeeded(session: Session, intent: PaymentIntent) -> None:
    found = _payment(session, intent)
    if found is None:
        return
    payment, psn = found
    now = datetime.now(UTC)
    if payment.kind == PaymentKind.PREPAID and psn.status == SessionStatus.PENDING_PAYMENT:
        payment.applied = True
        sessions.activate(session, psn, now)
    elif (
        payment.kind == PaymentKind.EXTENSION
        and not payment.applied
        and psn.status
        in (
            SessionStatus.ACTIVE,
            SessionStatus.EXPIRED,
        )
    ):
        payment.applied = True
        sessions.apply_extension(session, psn, payment.minutes, payment.amount, now)
    elif payment.kind == PaymentKind.OVERSTAY and not payment.applied:
        payment.applied = True
        psn.unpaid_amount = max(0, psn.unpaid_amount - intent.amount_received)


def _canceled(session: Session, intent: PaymentIntent) -> None:
    found = _payment(session, intent)
    if found is None:
        return
    payment, psn = found
    if payment.kind == PaymentKind.PREPAID and psn.status == SessionStatus.PENDING_PAYMENT:
        sessions.cancel(session, psn, datetime.now(UTC))


PARKING_SESSION = Purpose(
    name=PURPOSE,
    requires_merchant=True,
    providers=frozenset({"wallet", "stripe", "vietqr"}),
    validate=_validate,
    on_succeeded=_succeeded,
    on_canceled=_canceled,
)
