"""A payment intent after confirmation: the provider's word applied, success, failure, cancellation, expiry.

Each transition runs inside the caller's transaction (a confirm, a capture, a webhook, a job): success
posts the ledger entry, success and cancellation call the purpose's hook, and each publishes its event,
so the intent, the books and the domain's state commit together. None of these checks who is asking;
the entry points in `payments.intents` do that first.
"""

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hanoipay.errors import HanoiPayError
from hanoipay.settings import get_settings
from payments import accounts, events, ledger
from payments.exceptions import IntentNotCancelable, PaymentFailed
from payments.merchants import payable_account, payee
from payments.models import IntentStatus, PaymentIntent
from payments.money import fee_for
from payments.providers.base import Outcome, get_provider
from payments.purposes import get_purpose

log = logging.getLogger(__name__)

CONFIRMABLE = frozenset({IntentStatus.REQUIRES_PAYMENT_METHOD, IntentStatus.REQUIRES_CONFIRMATION})
CANCELABLE = CONFIRMABLE | {IntentStatus.REQUIRES_ACTION, IntentStatus.REQUIRES_CAPTURE}
TERMINAL = frozenset({IntentStatus.SUCCEEDED, IntentStatus.CANCELED})


def _now() -> datetime:
    return datetime.now(UTC)


def record_payment_failure(session: Session, intent: PaymentIntent, error: dict[str, str | None]) -> None:
    """The payment did not go through: the intent waits for another payment method, with the error kept."""
    intent.status = IntentStatus.REQUIRES_PAYMENT_METHOD
    intent.last_payment_error = error
    intent.updated_at = _now()
    _publish(session, "payment_intent.payment_failed", intent)


def apply_provider_status(
    session: Session,
    intent: PaymentIntent,
    status: str,
    *,
    amount: int | None = None,
    error: dict[str, str | None] | None = None,
) -> bool:
    """Apply what the provider says of an intent (at confirm, from a webhook or a settle job), once.

    `status` is one of succeeded, requires_capture, processing, requires_action, failed, canceled.
    News about an intent that already succeeded or was canceled changes nothing, so duplicated, late and
    out-of-order notifications are harmless; returns whether anything changed.
    """
    if intent.status in TERMINAL or (intent.status == status and status != "failed"):
        return False
    intent.updated_at = _now()
    if status == "succeeded":
        mark_succeeded(session, intent, intent.amount if amount is None else amount)
    elif status == "requires_capture":
        intent.status = IntentStatus.REQUIRES_CAPTURE
        intent.amount_capturable = intent.amount if amount is None else amount
        if intent.capture_before is None:
            intent.capture_before = _now() + timedelta(hours=get_settings().capture_window_hours)
        _publish(session, "payment_intent.amount_capturable_updated", intent)
    elif status == "failed":
        record_payment_failure(session, intent, error or PaymentFailed("The payment failed.").payment_error())
    elif status == "canceled":
        cancel(session, intent, "provider", void=False)
    else:
        intent.status = status
    return True


def apply_outcome(session: Session, intent: PaymentIntent, outcome: Outcome) -> bool:
    """Apply a provider's word on the intent once (news of a finished intent changes nothing)."""
    changed = apply_provider_status(
        session, intent, outcome.status, amount=outcome.amount, error=outcome.error
    )
    if changed:
        intent.next_action = outcome.next_action
    return changed


def cancel_expired(session: Session, intent: PaymentIntent) -> None:
    """Cancel an intent whose time ran out (an uncaptured authorization, an unpaid QR)."""
    cancel(session, intent, "expired")


def cancel(session: Session, intent: PaymentIntent, reason: str, *, void: bool = True) -> None:
    """Cancel the intent for `reason`, voiding any authorization (not when the provider canceled it)."""
    if intent.status not in (CANCELABLE if void else CANCELABLE | {IntentStatus.PROCESSING}):
        raise IntentNotCancelable(f"Intent {intent.id} is {intent.status}; it can no longer be canceled.")
    if void and intent.provider is not None:
        get_provider(intent.provider).void(session, intent)
    intent.status = IntentStatus.CANCELED
    intent.amount_capturable = 0
    intent.canceled_at = intent.updated_at = _now()
    intent.cancellation_reason = reason
    spec = get_purpose(intent.purpose)
    if spec.on_canceled:
        spec.on_canceled(session, intent)
    _publish(session, "payment_intent.canceled", intent)
    session.flush()


def settlement_lines(
    session: Session, intent: PaymentIntent, amount: int, fee: int
) -> list[tuple[accounts.AccountRef, int]]:
    """The ledger lines that move `amount` of the intent from its source to where it lands, less `fee`."""
    spec = get_purpose(intent.purpose)
    source = get_provider(intent.provider).source_account(session, intent)
    if spec.credit_account is not None:
        return [(source, amount), (spec.credit_account(session, intent), -amount)]
    assert intent.merchant_id is not None
    payable = payable_account(payee(session, intent.merchant_id))
    return [
        (source, amount),
        (payable, fee - amount),
        (ledger.fee_revenue_account(session, intent.currency), -fee),
    ]


def mark_succeeded(session: Session, intent: PaymentIntent, amount: int) -> None:
    """Record that `amount` of the intent was received: post the ledger, tell the purpose's owner."""
    spec = get_purpose(intent.purpose)
    fee = 0
    if spec.credit_account is None:
        assert intent.merchant_id is not None
        fee = fee_for(amount, payee(session, intent.merchant_id).fee_bps)
    ledger.post_entry(
        session,
        kind="payment",
        dedupe_key=f"payment:{intent.id}",
        description=f"{intent.purpose} {intent.id}",
        lines=settlement_lines(session, intent, amount, fee),
        intent_id=intent.id,
    )
    intent.status = IntentStatus.SUCCEEDED
    intent.amount_received = amount
    intent.fee_amount = fee
    intent.succeeded_at = intent.updated_at = _now()
    if spec.on_succeeded:
        spec.on_succeeded(session, intent)
    _publish(session, "payment_intent.succeeded", intent)


def void_expired_authorizations(session: Session, *, now: datetime | None = None, limit: int = 500) -> int:
    """Cancel authorizations never captured within the capture window; returns how many."""
    expired = session.scalars(
        select(PaymentIntent)
        .where(
            PaymentIntent.status == IntentStatus.REQUIRES_CAPTURE,
            PaymentIntent.capture_before < (now or func.now()),
        )
        .order_by(PaymentIntent.capture_before)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    return cancel_expired_batch(session, expired)


def cancel_expired_batch(session: Session, expired: Sequence[PaymentIntent]) -> int:
    """Cancel intents whose time ran out, each in its own savepoint; returns how many were canceled.

    A provider refusing one void (Stripe down) must not undo the others; that intent is tried again on
    the next run.
    """
    canceled = 0
    for intent in expired:
        try:
            with session.begin_nested():
                cancel_expired(session, intent)
            canceled += 1
        except HanoiPayError as error:
            log.warning("could not cancel expired intent %s: %s", intent.id, error.detail)
    return canceled


def intent_data(intent: PaymentIntent) -> dict[str, Any]:
    """The intent as events carry it."""
    return {
        "id": intent.id,
        "merchant_id": intent.merchant_id,
        "purpose": intent.purpose,
        "purpose_ref": intent.purpose_ref,
        "amount": intent.amount,
        "amount_received": intent.amount_received,
        "amount_refunded": intent.amount_refunded,
        "currency": intent.currency,
        "status": intent.status,
        "provider": intent.provider,
    }


def _publish(session: Session, type: str, intent: PaymentIntent) -> None:
    events.publish(
        session, type, object_id=intent.id, merchant_id=intent.merchant_id, data=intent_data(intent)
    )
