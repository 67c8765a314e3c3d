"""Payment intents and their state machine: create, confirm, capture, cancel, expire.

requires_payment_method → requires_confirmation → (requires_action | processing)
    → (requires_capture) → succeeded, or canceled
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from hanoipay.errors import Forbidden, HanoiPayError
from hanoipay.ids import new_id
from hanoipay.pagination import Page, paginate
from hanoipay.settings import get_settings
from payments import events, ledger
from payments.exceptions import (
    AmountExceedsCapturable,
    CurrencyMismatch,
    IntentNotCancelable,
    IntentNotCapturable,
    IntentNotConfirmable,
    IntentNotFound,
    MerchantNotFound,
    PaymentFailed,
    PaymentMethodRequired,
    UnknownProvider,
    UnsupportedCurrency,
)
from payments.merchants import get_merchant, payable_account
from payments.models import CaptureMethod, IntentStatus, Merchant, PaymentIntent
from payments.money import CURRENCIES, fee_for
from payments.providers.base import Outcome, PaymentMethod, Provider, get_provider
from payments.purposes import Purpose, get_purpose
from payments.wallets import wallet_to_pay_from

log = logging.getLogger(__name__)

CONFIRMABLE = frozenset({IntentStatus.REQUIRES_PAYMENT_METHOD, IntentStatus.REQUIRES_CONFIRMATION})
CANCELABLE = CONFIRMABLE | {IntentStatus.REQUIRES_ACTION, IntentStatus.REQUIRES_CAPTURE}
OPEN_FOR_PAYER = CONFIRMABLE


@dataclass(frozen=True)
class IntentFilters:
    """What a list of intents may be narrowed by."""

    merchant_id: str | None = None
    purpose: str | None = None
    status: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def can_view(who: Principal, intent: PaymentIntent) -> bool:
    """Staff see all; a merchant sees its own; a payer sees theirs and any unclaimed open intent."""
    if who.can_act_for_merchant(intent.merchant_id):
        return True
    if who.kind != "user":
        return False
    return intent.payer_id == who.id or (intent.payer_id is None and intent.status in OPEN_FOR_PAYER)


def get_intent(
    session: Session, who: Principal, intent_id: str, *, for_update: bool = False
) -> PaymentIntent:
    """The intent, if the caller may see it; 404 otherwise so that ids do not leak."""
    intent = session.get(PaymentIntent, intent_id, with_for_update=for_update, populate_existing=for_update)
    if intent is None or not can_view(who, intent):
        raise IntentNotFound(f"No payment intent {intent_id}.")
    return intent


def create_intent(
    session: Session,
    who: Principal,
    *,
    amount: int,
    currency: str,
    purpose: str,
    merchant_id: str | None = None,
    purpose_ref: str | None = None,
    capture_method: str = CaptureMethod.AUTOMATIC,
    provider: str | None = None,
    wallet_id: str | None = None,
    payment_method: str | None = None,
    return_url: str | None = None,
    confirm: bool = False,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> PaymentIntent:
    """Create an intent; with `confirm`, confirm it in the same transaction."""
    if currency not in CURRENCIES:
        raise UnsupportedCurrency(f"{currency} is not a supported currency.")
    spec = get_purpose(purpose)
    merchant: Merchant | None = None
    if spec.requires_merchant:
        if merchant_id is None:
            raise MerchantNotFound(f"Purpose {purpose} needs a merchant_id.")
        if who.merchant_id is not None and not who.can_act_for_merchant(merchant_id):
            raise MerchantNotFound(f"No merchant {merchant_id}.")
        merchant = get_merchant(session, merchant_id)
        if merchant.currency != currency:
            raise CurrencyMismatch(f"Merchant {merchant.id} is paid in {merchant.currency}, not {currency}.")
    elif merchant_id is not None:
        raise MerchantNotFound(f"Purpose {purpose} is not paid to a merchant.")
    if provider is not None:
        _provider_for(spec, provider)
    if who.kind == "user" and not who.has(Role.CUSTOMER, Role.FINANCE, Role.ADMIN) and merchant is None:
        raise Forbidden("Only customers and staff create intents with no merchant.")
    payer = who.id if who.kind == "user" and who.merchant_id is None and not who.is_staff else None
    intent = PaymentIntent(
        id=new_id("pi"),
        merchant=merchant,
        merchant_id=merchant.id if merchant else None,
        payer_id=payer,
        purpose=purpose,
        purpose_ref=purpose_ref,
        amount=amount,
        currency=currency,
        status=IntentStatus.REQUIRES_CONFIRMATION if provider else IntentStatus.REQUIRES_PAYMENT_METHOD,
        capture_method=capture_method,
        provider=provider,
        wallet_id=wallet_id,
        amount_capturable=0,
        amount_received=0,
        amount_refunded=0,
        fee_amount=0,
        description=description,
        metadata_=metadata or {},
        created_by=who.id,
        updated_at=_now(),
    )
    if spec.validate is not None:
        spec.validate(session, who, intent)
    if wallet_id is not None:
        intent.wallet = wallet_to_pay_from(session, who, wallet_id)
    session.add(intent)
    if confirm:
        _confirm(session, who, intent, provider, PaymentMethod(wallet_id, payment_method, return_url))
    session.flush()
    return intent


def confirm_intent(
    session: Session,
    who: Principal,
    intent_id: str,
    *,
    provider: str | None = None,
    wallet_id: str | None = None,
    payment_method: str | None = None,
    return_url: str | None = None,
) -> PaymentIntent:
    """Confirm an intent with a payment method; a wallet payment succeeds (or is authorized) at once."""
    intent = get_intent(session, who, intent_id, for_update=True)
    _confirm(session, who, intent, provider, PaymentMethod(wallet_id, payment_method, return_url))
    session.flush()
    return intent


def _provider_for(spec: Purpose, name: str | None) -> Provider:
    """The named provider, if the purpose may be paid with it."""
    chosen = get_provider(name)
    if spec.providers is not None and chosen.name not in spec.providers:
        raise UnknownProvider(f"Purpose {spec.name} cannot be paid with {chosen.name}.")
    return chosen


def _confirm(
    session: Session, who: Principal, intent: PaymentIntent, provider: str | None, method: PaymentMethod
) -> None:
    if intent.status not in CONFIRMABLE:
        raise IntentNotConfirmable(f"Intent {intent.id} is {intent.status}; it can no longer be confirmed.")
    if provider is None and intent.provider is None:
        raise PaymentMethodRequired("Name how to pay: provider (and wallet_id for a wallet).")
    chosen = _provider_for(get_purpose(intent.purpose), provider or intent.provider)
    if intent.payer_id is not None and who.kind == "user" and intent.payer_id != who.id and not who.is_staff:
        raise IntentNotFound(f"No payment intent {intent.id}.")
    chosen.prepare(session, who, intent, method)
    intent.provider = chosen.name
    intent.last_payment_error = None
    if intent.capture_method == CaptureMethod.MANUAL:
        intent.capture_before = _now() + timedelta(hours=get_settings().capture_window_hours)
    try:
        # A refused payment undoes what it wrote (a ledger entry begun, a hold) but keeps the intent.
        with session.begin_nested():
            apply_provider_status(session, intent, chosen.authorize(session, intent))
    except PaymentFailed as failure:
        record_payment_failure(session, intent, failure.payment_error())
        session.flush()
        failure.extra["payment_intent"] = intent.id
        raise


TERMINAL = frozenset({IntentStatus.SUCCEEDED, IntentStatus.CANCELED})


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
        _cancel(session, intent, "provider", void=False)
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


def capture_intent(
    session: Session, who: Principal, intent_id: str, *, amount: int | None = None
) -> PaymentIntent:
    """Capture an authorized intent in whole or in part; the rest of the authorization is released."""
    intent = get_intent(session, who, intent_id, for_update=True)
    if not who.can_act_for_merchant(intent.merchant_id):
        raise IntentNotFound(f"No payment intent {intent.id}.")
    if intent.status != IntentStatus.REQUIRES_CAPTURE:
        raise IntentNotCapturable(
            f"Intent {intent.id} is {intent.status}; only requires_capture can be captured."
        )
    amount = intent.amount_capturable if amount is None else amount
    if amount > intent.amount_capturable:
        raise AmountExceedsCapturable(
            f"Cannot capture {amount}; {intent.amount_capturable} {intent.currency} is authorized.",
            amount_capturable=intent.amount_capturable,
        )
    get_provider(intent.provider).capture(session, intent, amount)
    intent.amount_capturable = 0
    mark_succeeded(session, intent, amount)
    session.flush()
    return intent


def cancel_intent(
    session: Session, who: Principal, intent_id: str, *, reason: str | None = None
) -> PaymentIntent:
    """Cancel an intent that has not succeeded, releasing any authorization."""
    intent = get_intent(session, who, intent_id, for_update=True)
    is_payer = who.kind == "user" and intent.payer_id == who.id
    if not (who.can_act_for_merchant(intent.merchant_id) or (is_payer and intent.status in OPEN_FOR_PAYER)):
        raise IntentNotFound(f"No payment intent {intent.id}.")
    _cancel(session, intent, reason or "requested_by_customer")
    return intent


def cancel_expired(session: Session, intent: PaymentIntent) -> None:
    """Cancel an intent whose time ran out (an uncaptured authorization, an unpaid QR)."""
    _cancel(session, intent, "expired")


def _cancel(session: Session, intent: PaymentIntent, reason: str, *, void: bool = True) -> None:
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
) -> list[tuple[ledger.AccountRef, int]]:
    """The ledger lines that move `amount` of the intent from its source to where it lands, less `fee`."""
    spec = get_purpose(intent.purpose)
    source = get_provider(intent.provider).source_account(session, intent)
    if spec.credit_account is not None:
        return [(source, amount), (spec.credit_account(session, intent), -amount)]
    assert intent.merchant is not None
    payable = payable_account(intent.merchant)
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
        assert intent.merchant is not None
        fee = fee_for(amount, intent.merchant.fee_bps)
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


def list_intents(
    session: Session, who: Principal, filters: IntentFilters, *, limit: int, starting_after: str | None
) -> Page[PaymentIntent]:
    """The caller's intents, newest first, one page after the cursor."""
    query = select(PaymentIntent)
    if not who.is_staff:
        if who.merchant_id is not None:
            query = query.where(PaymentIntent.merchant_id == who.merchant_id)
        else:
            query = query.where(PaymentIntent.payer_id == who.id)
    if filters.merchant_id:
        query = query.where(PaymentIntent.merchant_id == filters.merchant_id)
    if filters.purpose:
        query = query.where(PaymentIntent.purpose == filters.purpose)
    if filters.status:
        query = query.where(PaymentIntent.status == filters.status)
    if filters.created_gte:
        query = query.where(PaymentIntent.created_at >= filters.created_gte)
    if filters.created_lt:
        query = query.where(PaymentIntent.created_at < filters.created_lt)
    return paginate(session, query, PaymentIntent.id, limit=limit, starting_after=starting_after)


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
