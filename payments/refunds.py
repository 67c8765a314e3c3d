"""Refunds: money sent back against a succeeded intent, partial or whole, never more than was received."""

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from hanoipay.db import inserted
from hanoipay.ids import new_id
from payments import events, ledger
from payments.exceptions import AmountExceedsRefundable, IntentNotFound, IntentNotRefundable, RefundNotFound
from payments.intents import get_intent
from payments.models import IntentStatus, PaymentIntent, Refund, RefundStatus
from payments.money import prorated
from payments.providers.base import get_provider
from payments.purposes import get_purpose
from payments.transitions import intent_data, settlement_lines

log = logging.getLogger(__name__)


# Written at once, by hand (see `hanoipay.db.execute`): the reversal's entry and a provider's payout
# refer to its row.
_INSERT_REFUND = """
INSERT INTO refund (id, intent_id, amount, currency, fee_refunded, status, reason, created_by)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
RETURNING *
"""


def create_refund(
    session: Session, who: Principal, intent_id: str, *, amount: int | None = None, reason: str | None = None
) -> Refund:
    """Refund part or all of what a succeeded intent received; the platform fee is returned pro rata."""
    intent = get_intent(session, who, intent_id, for_update=True)
    if not who.can_act_for_merchant(intent.merchant_id):
        raise IntentNotFound(f"No payment intent {intent.id}.")
    if intent.status != IntentStatus.SUCCEEDED:
        raise IntentNotRefundable(
            f"Intent {intent.id} is {intent.status}; only succeeded intents can be refunded."
        )
    refundable = intent.amount_received - intent.amount_refunded
    if refundable == 0:
        raise IntentNotRefundable(f"Intent {intent.id} has already been refunded in full.")
    amount = refundable if amount is None else amount
    if amount > refundable:
        raise AmountExceedsRefundable(
            f"Cannot refund {amount}; {refundable} {intent.currency} of this intent is left to refund.",
            amount_refundable=refundable,
        )
    fee_refunded = prorated(
        intent.fee_amount, intent.amount_refunded + amount, intent.amount_received
    ) - prorated(intent.fee_amount, intent.amount_refunded, intent.amount_received)
    refund = inserted(
        session,
        Refund,
        _INSERT_REFUND,
        (
            new_id("re"),
            intent.id,
            amount,
            intent.currency,
            fee_refunded,
            RefundStatus.PENDING,
            reason,
            who.id,
        ),
    )
    assert refund is not None
    provider = get_provider(intent.provider)
    refund.status = provider.refund(session, intent, refund)
    _post_reversal(session, intent, refund)
    intent.amount_refunded += amount
    spec = get_purpose(intent.purpose)
    if spec.on_refunded:
        spec.on_refunded(session, intent, refund)
    data = {**intent_data(intent), "refund": {"id": refund.id, "amount": amount, "status": refund.status}}
    events.publish(session, "charge.refunded", object_id=refund.id, merchant_id=intent.merchant_id, data=data)
    session.flush()
    return refund


def _post_reversal(session: Session, intent: PaymentIntent, refund: Refund) -> None:
    lines = settlement_lines(session, intent, refund.amount, refund.fee_refunded)
    ledger.post_entry(
        session,
        kind="refund",
        dedupe_key=f"refund:{refund.id}",
        description=f"refund of {intent.id}",
        lines=[(account, -amount) for account, amount in lines],
        intent_id=intent.id,
        refund_id=refund.id,
    )


def record_refund_outcome(refund: Refund, outcome: str | None) -> bool:
    """Mark a pending refund succeeded once its provider says so; returns whether it changed.

    A refund the provider says failed keeps its reversal in the ledger and is logged for finance, who
    decide whether to pay it another way or reverse the entry.
    """
    if refund.status == RefundStatus.PENDING and outcome == "succeeded":
        refund.status = RefundStatus.SUCCEEDED
        return True
    if outcome == "failed":
        log.error(
            "the provider says refund %s failed; finance must pay it another way or reverse it", refund.id
        )
    return False


def get_refund(session: Session, who: Principal, refund_id: str) -> Refund:
    """The refund, if the caller may see its intent."""
    refund = session.get(Refund, refund_id)
    if refund is None:
        raise RefundNotFound(f"No refund {refund_id}.")
    try:
        get_intent(session, who, refund.intent_id)
    except IntentNotFound:
        raise RefundNotFound(f"No refund {refund_id}.") from None
    return refund


def list_refunds(session: Session, who: Principal, intent_id: str) -> list[Refund]:
    """The refunds of one intent, oldest first."""
    intent = get_intent(session, who, intent_id)
    return list(session.scalars(select(Refund).where(Refund.intent_id == intent.id).order_by(Refund.id)))
