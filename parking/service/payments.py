"""A session's money, only through the payment core: holds, captures, transfers and refunds.

- **wallet** and **stripe** (cards): every prepayment and extension is a manual-capture intent, a hold.
  Ending the session captures the real amount across the holds (oldest first) and cancels what is left;
  an overstay beyond the holds is charged as a new payment from the same wallet or card.
- **vietqr**: a bank transfer cannot be held and captured later, so the driver pays the quoted amount up
  front; the session starts when the bank's webhook says the money arrived (in that same transaction).
  Ending early refunds the unused part through the core (a payout back to the paying account); an
  overstay is a new VietQR payment, unpaid (and listed for attendants) until the bank reports it.

A session's payments are the core's intents with purpose `parking_session` and the session's id as
`purpose_ref`; their metadata says what each paid for (`kind`) and, for an extension, its `minutes`.
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from hanoipay.errors import HanoiPayError
from parking.models import ParkingSession, PaymentKind
from payments import intents, refunds, transitions
from payments.models import PaymentIntent

PURPOSE = "parking_session"
HOLDING_PROVIDERS = frozenset({"wallet", "stripe"})
CREATING = "parking.creating_intent"  # session.info: the id of the session an intent is being made for


def operator(merchant_id: str) -> Principal:
    """The parking service acting for the zone's operator, under the session's terms (capture, cancel)."""
    return Principal(id="parking", kind="system", roles=frozenset(), merchant_id=merchant_id)


def driver(psn: ParkingSession) -> Principal:
    """The driver, for a charge the session's terms allow (an overstay from the same wallet or card)."""
    return Principal(id=psn.driver_id, kind="user", roles=frozenset({"customer"}))


def kind_of(intent: PaymentIntent) -> str:
    """What the intent paid for: prepaid, extension or overstay."""
    return str(intent.metadata_.get("kind", PaymentKind.PREPAID))


def pay(
    session: Session, who: Principal, psn: ParkingSession, *, amount: int, kind: PaymentKind, minutes: int = 0
) -> PaymentIntent:
    """Create and confirm the session's intent for `amount`: a hold, or a transfer to wait for."""
    hold = psn.provider in HOLDING_PROVIDERS and kind != PaymentKind.OVERSTAY
    session.info[CREATING] = psn.id
    try:
        return intents.create_intent(
            session,
            who,
            amount=amount,
            currency=psn.currency,
            purpose=PURPOSE,
            merchant_id=psn.merchant_id,
            purpose_ref=psn.id,
            capture_method="manual" if hold else "automatic",
            provider=psn.provider,
            wallet_id=psn.wallet_id,
            payment_method=psn.payment_method,
            confirm=True,
            description=f"Parking {psn.zone_code} {psn.plate} ({kind})",
            metadata={
                "zone_id": psn.zone_id,
                "zone_code": psn.zone_code,
                "kind": str(kind),
                "minutes": str(minutes),
            },
        )
    finally:
        session.info.pop(CREATING, None)


def payments_of(session: Session, psn: ParkingSession) -> list[PaymentIntent]:
    """The session's payment intents, oldest first."""
    return list(
        session.scalars(
            select(PaymentIntent)
            .where(PaymentIntent.purpose == PURPOSE, PaymentIntent.purpose_ref == psn.id)
            .order_by(PaymentIntent.id)
        )
    )


def settle(session: Session, psn: ParkingSession, charge: int) -> int:
    """Take `charge` for the ended session and release the rest; returns what is still owed."""
    acting = operator(psn.merchant_id)
    remaining = charge
    for intent in payments_of(session, psn):
        if intent.status == "requires_capture":
            take = min(remaining, intent.amount_capturable)
            if take > 0:
                intents.capture_intent(session, acting, intent.id, amount=take)
            else:
                intents.cancel_intent(session, acting, intent.id, reason="abandoned")
            remaining -= take
        elif intent.status == "succeeded":
            remaining -= intent.amount_received - intent.amount_refunded
        elif intent.status in transitions.CANCELABLE and kind_of(intent) == PaymentKind.EXTENSION:
            intents.cancel_intent(session, acting, intent.id, reason="abandoned")
    if remaining < 0:
        _refund(session, psn, acting, -remaining)
        return 0
    if remaining > 0:
        return _charge_overstay(session, psn, remaining)
    return 0


def _refund(session: Session, psn: ParkingSession, acting: Principal, amount: int) -> None:
    """Send back the unused part of what was paid up front, newest payment first."""
    for intent in reversed(payments_of(session, psn)):
        refundable = intent.amount_received - intent.amount_refunded if intent.status == "succeeded" else 0
        part = min(amount, refundable)
        if part > 0:
            refunds.create_refund(session, acting, intent.id, amount=part, reason="unused parking time")
            amount -= part
        if amount == 0:
            return


def _charge_overstay(session: Session, psn: ParkingSession, amount: int) -> int:
    """Charge what the holds did not cover; what cannot be charged now stays owed (and listed)."""
    try:
        with session.begin_nested():
            intent = pay(session, driver(psn), psn, amount=amount, kind=PaymentKind.OVERSTAY)
    except HanoiPayError:
        return amount
    return 0 if intent.status == "succeeded" else amount
