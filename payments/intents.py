"""Payment intents as a caller sees them: create, confirm, capture, cancel, read and list.

requires_payment_method → requires_confirmation → (requires_action | processing)
    → (requires_capture) → succeeded, or canceled

The transitions after confirmation (ledger posting, purpose hooks, events) are in `payments.transitions`.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from hanoipay.db import attach, column_keys, execute, locked
from hanoipay.errors import Forbidden
from hanoipay.ids import new_id
from hanoipay.pagination import Page, paginate
from hanoipay.settings import get_settings
from payments.exceptions import (
    AmountExceedsCapturable,
    CurrencyMismatch,
    IntentNotCapturable,
    IntentNotConfirmable,
    IntentNotFound,
    MerchantNotFound,
    PaymentFailed,
    PaymentMethodRequired,
    UnknownProvider,
    UnsupportedCurrency,
)
from payments.merchants import payee
from payments.models import CaptureMethod, IntentStatus, PaymentIntent
from payments.money import CURRENCIES
from payments.providers.base import PaymentMethod, Provider, get_provider
from payments.purposes import Purpose, get_purpose
from payments.transitions import (
    CONFIRMABLE,
    apply_provider_status,
    cancel,
    mark_succeeded,
    record_payment_failure,
)
from payments.wallets import read_payee_and_wallet, wallet_to_pay_from

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


_LOCK_INTENT = "SELECT * FROM payment_intent WHERE id = %s FOR UPDATE"


def get_intent(
    session: Session, who: Principal, intent_id: str, *, for_update: bool = False
) -> PaymentIntent:
    """The intent, if the caller may see it; 404 otherwise so that ids do not leak.

    `for_update` locks its row for the transaction (every change of an intent does), with one
    hand-written statement: the ORM's locking `get` costs a confirmation, a capture or a refund about as
    much Python as the rest of its reads.
    """
    if for_update:
        intent = locked(session, PaymentIntent, _LOCK_INTENT, (intent_id,))
    else:
        intent = session.get(PaymentIntent, intent_id)
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
    """Create an intent; with `confirm`, confirm it in the same transaction.

    An intent whose confirmation is decided inside this transaction without calling its purpose's hook is
    written once, when its outcome is known: one INSERT of the intent after the one-statement ledger
    posting or hold (see `_decided_at_once`). Every other intent is written first and then carried along.
    """
    if currency not in CURRENCIES:
        raise UnsupportedCurrency(f"{currency} is not a supported currency.")
    spec = get_purpose(purpose)
    if merchant_id is not None and wallet_id is not None:
        read_payee_and_wallet(session, merchant_id, wallet_id)
    if spec.requires_merchant:
        if merchant_id is None:
            raise MerchantNotFound(f"Purpose {purpose} needs a merchant_id.")
        if who.merchant_id is not None and not who.can_act_for_merchant(merchant_id):
            raise MerchantNotFound(f"No merchant {merchant_id}.")
        paid = payee(session, merchant_id)
        if paid.currency != currency:
            raise CurrencyMismatch(f"Merchant {paid.id} is paid in {paid.currency}, not {currency}.")
    elif merchant_id is not None:
        raise MerchantNotFound(f"Purpose {purpose} is not paid to a merchant.")
    chosen = None if provider is None else _provider_for(spec, provider)
    if who.kind == "user" and not who.has(Role.CUSTOMER, Role.FINANCE, Role.ADMIN) and merchant_id is None:
        raise Forbidden("Only customers and staff create intents with no merchant.")
    payer = who.id if who.kind == "user" and who.merchant_id is None and not who.is_staff else None
    now = _now()
    intent = PaymentIntent(
        **_UNSET,
        id=new_id("pi"),
        merchant_id=merchant_id,
        payer_id=payer,
        purpose=purpose,
        purpose_ref=purpose_ref,
        amount=amount,
        currency=currency,
        status=IntentStatus.REQUIRES_CONFIRMATION if provider else IntentStatus.REQUIRES_PAYMENT_METHOD,
        capture_method=capture_method,
        provider=provider,
        wallet_id=wallet_id,
        description=description,
        metadata_=metadata or {},
        created_by=who.id,
        created_at=now,
        updated_at=now,
    )
    if spec.validate is not None:
        spec.validate(session, who, intent)
    if wallet_id is not None:
        wallet_to_pay_from(session, who, wallet_id)
    method = PaymentMethod(wallet_id, payment_method, return_url)
    if confirm and chosen is not None and _decided_at_once(intent, chosen):
        try:
            _confirm(session, who, intent, provider, method)
        except PaymentFailed:
            _insert(session, intent)  # the failed attempt is news about the intent; nothing else was written
            raise
        _insert(session, intent)
        return intent
    session.add(intent)
    session.flush()
    if confirm:
        _confirm(session, who, intent, provider, method)
        session.flush()
    return intent


# Every column of a new intent that creation leaves empty, so the object is complete without a reload.
_UNSET: dict[str, Any] = {
    "provider_ref": None,
    "amount_capturable": 0,
    "amount_received": 0,
    "amount_refunded": 0,
    "amount_collected": 0,
    "fee_amount": 0,
    "capture_before": None,
    "succeeded_at": None,
    "canceled_at": None,
    "cancellation_reason": None,
    "last_payment_error": None,
    "next_action": None,
    "reference": None,
    "expires_at": None,
}
_COLUMNS = column_keys(PaymentIntent)
_JSON_COLUMNS = frozenset({"metadata", "next_action", "last_payment_error"})
# Built once from the mapped columns (names from the model, never from input).
_INSERT_INTENT = (
    f"INSERT INTO payment_intent ({', '.join(_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join(f'%({name})s' for name in _COLUMNS)})"
)


def _decided_at_once(intent: PaymentIntent, provider: Provider) -> bool:
    """Whether confirming with `provider` ends inside this transaction without a purpose hook to call: an
    automatic payment the provider settles at once for a purpose with no `on_succeeded` (a wallet payment
    to a merchant), or a hold the provider places at once (a wallet hold; the hold's foreign key to its
    intent is checked at commit)."""
    if intent.capture_method == CaptureMethod.MANUAL:
        return provider.holds_at_once
    return provider.settles_at_once and get_purpose(intent.purpose).on_succeeded is None


def _insert(session: Session, intent: PaymentIntent) -> None:
    """Write the intent as it stands in one statement, and attach it to the session as already stored."""
    values = {}
    for name, key in _COLUMNS.items():
        value = getattr(intent, key)
        values[name] = Jsonb(value) if name in _JSON_COLUMNS and value is not None else value
    execute(session, _INSERT_INTENT, values)
    attach(session, intent)


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
        # A refusal writes nothing: the ledger posting and the hold are each one conditional statement.
        apply_provider_status(session, intent, chosen.authorize(session, intent))
    except PaymentFailed as failure:
        record_payment_failure(session, intent, failure.payment_error())
        failure.extra["payment_intent"] = intent.id
        raise


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
    cancel(session, intent, reason or "requested_by_customer")
    return intent


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
