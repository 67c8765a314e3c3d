"""HTTP API of the payment core: wallets, payment intents, refunds, merchants' ledger, events.

Merchant onboarding (`POST /v1/merchants` and its staff, bank account and verification) is served by
the merchants domain.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import Role, RoleNotAllowed
from hanoipay.db import DbSession
from hanoipay.http import errors, require_json
from payments import intents, ledger, merchants, refunds, topups, wallets
from payments.exceptions import (
    AmountExceedsCapturable,
    AmountExceedsRefundable,
    CurrencyMismatch,
    IdempotencyKeyReused,
    InsufficientFunds,
    IntentNotCancelable,
    IntentNotCapturable,
    IntentNotConfirmable,
    IntentNotFound,
    IntentNotRefundable,
    MerchantNotFound,
    PaymentFailed,
    PaymentMethodRequired,
    UnknownProvider,
    UnknownPurpose,
    UnsupportedCurrency,
    UserNotFound,
    WalletExists,
    WalletNotFound,
)
from payments.idempotency import IdempotencyHeader, run_idempotent
from payments.models import Event
from payments.schemas import (
    BalanceOut,
    EventList,
    EventOut,
    LedgerEntryList,
    LedgerEntryOut,
    LedgerLineOut,
    ManualTopupCreate,
    PaymentIntentCancel,
    PaymentIntentCapture,
    PaymentIntentConfirm,
    PaymentIntentCreate,
    PaymentIntentList,
    PaymentIntentOut,
    RefundCreate,
    RefundOut,
    WalletCreate,
    WalletOut,
)

router = APIRouter(prefix="/v1", dependencies=[Depends(require_json)])
Limit = Annotated[int, Query(ge=1, le=100, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=40, description="Return items after this id (next_cursor)")]
MONEY_ERRORS = (
    IdempotencyKeyReused,
    InsufficientFunds,
    IntentNotFound,
    UnsupportedCurrency,
    CurrencyMismatch,
)


def _intent_out(intent: object) -> PaymentIntentOut:
    return PaymentIntentOut.model_validate(intent)


# Merchants -------------------------------------------------------------------------------------------


@router.get("/merchants/{merchant_id}/balance", tags=["ledger"], responses=errors(MerchantNotFound))
def merchant_balance(
    merchant_id: str,
    session: DbSession,
    who: Caller,
    as_of: Annotated[datetime | None, Query(description="Balance at this time, from the lines")] = None,
) -> BalanceOut:
    """What the platform owes the merchant: now, or as of a time."""
    merchant = merchants.get_own_merchant(session, who, merchant_id)
    return _balance_out(session, merchant.account_id, as_of)


@router.get("/merchants/{merchant_id}/ledger_entries", tags=["ledger"], responses=errors(MerchantNotFound))
def merchant_entries(
    merchant_id: str, session: DbSession, who: Caller, limit: Limit = 25, starting_after: Cursor = None
) -> LedgerEntryList:
    """Journal entries that touched the merchant's payable account, newest first."""
    merchant = merchants.get_own_merchant(session, who, merchant_id)
    return _entries_out(session, merchant.account_id, limit, starting_after)


# Wallets ---------------------------------------------------------------------------------------------


def _wallet_out(session: DbSession, wallet: object) -> WalletOut:
    out = WalletOut.model_validate(wallet)
    balance = ledger.balance(session, out.account_id)
    return out.model_copy(
        update={"posted": balance.posted, "held": balance.held, "available": balance.available}
    )


@router.post(
    "/wallets",
    status_code=201,
    tags=["wallets"],
    responses=errors(WalletExists, UnsupportedCurrency, UserNotFound),
)
def open_wallet(body: WalletCreate, session: DbSession, who: Caller) -> WalletOut:
    """Open a stored-value wallet for the caller."""
    return _wallet_out(
        session, wallets.open_wallet(session, who, currency=body.currency, owner_id=body.owner_id)
    )


@router.get("/wallets", tags=["wallets"])
def list_wallets(session: DbSession, who: Caller) -> list[WalletOut]:
    """The caller's wallets with their balances."""
    return [_wallet_out(session, w) for w in wallets.list_wallets(session, who)]


@router.get("/wallets/{wallet_id}", tags=["wallets"], responses=errors(WalletNotFound))
def get_wallet(wallet_id: str, session: DbSession, who: Caller) -> WalletOut:
    """A wallet and its posted, held and available balance."""
    return _wallet_out(session, wallets.get_wallet(session, who, wallet_id))


@router.post(
    "/wallets/{wallet_id}/manual_topups",
    status_code=201,
    tags=["wallets"],
    responses=errors(RoleNotAllowed, WalletNotFound, IdempotencyKeyReused),
)
def manual_topup(
    wallet_id: str,
    body: ManualTopupCreate,
    request: Request,
    session: DbSession,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Record money received outside the platform into a wallet, with a reason (finance)."""

    def work() -> PaymentIntentOut:
        return _intent_out(
            topups.record_manual_topup(session, who, wallet_id, amount=body.amount, reason=body.reason)
        )

    return run_idempotent(session, who, request, idempotency_key, body, work, status_code=201)


# Payment intents -------------------------------------------------------------------------------------


@router.post(
    "/payment_intents",
    status_code=201,
    tags=["payment intents"],
    response_model=PaymentIntentOut,
    responses=errors(*MONEY_ERRORS, MerchantNotFound, UnknownPurpose, UnknownProvider, PaymentMethodRequired),
)
def create_intent(
    body: PaymentIntentCreate,
    request: Request,
    session: DbSession,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Create a payment intent for a purpose; with `confirm: true`, pay it at once."""
    return run_idempotent(
        session,
        who,
        request,
        idempotency_key,
        body,
        lambda: _intent_out(intents.create_intent(session, who, **body.model_dump())),
        status_code=201,
        keep_on=PaymentFailed,
    )


@router.get("/payment_intents", tags=["payment intents"])
def list_intents(
    session: DbSession,
    who: Caller,
    limit: Limit = 25,
    starting_after: Cursor = None,
    merchant_id: Annotated[str | None, Query(max_length=40)] = None,
    purpose: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    created_gte: Annotated[datetime | None, Query(description="Created at or after")] = None,
    created_lt: Annotated[datetime | None, Query(description="Created before")] = None,
) -> PaymentIntentList:
    """The caller's intents, newest first, with cursor pagination and filters."""
    filters = intents.IntentFilters(merchant_id, purpose, status, created_gte, created_lt)
    rows, has_more = intents.list_intents(session, who, filters, limit=limit, starting_after=starting_after)
    return PaymentIntentList(
        data=[_intent_out(i) for i in rows], has_more=has_more, next_cursor=rows[-1].id if has_more else None
    )


@router.get("/payment_intents/{intent_id}", tags=["payment intents"], responses=errors(IntentNotFound))
def get_intent(intent_id: str, session: DbSession, who: Caller) -> PaymentIntentOut:
    """One payment intent."""
    return _intent_out(intents.get_intent(session, who, intent_id))


@router.post(
    "/payment_intents/{intent_id}/confirm",
    tags=["payment intents"],
    response_model=PaymentIntentOut,
    responses=errors(*MONEY_ERRORS, IntentNotConfirmable, PaymentMethodRequired, WalletNotFound),
)
def confirm_intent(
    intent_id: str,
    request: Request,
    session: DbSession,
    who: Caller,
    body: PaymentIntentConfirm | None = None,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Confirm an intent with a payment method; a wallet pays at once or authorizes for manual capture."""
    body = body or PaymentIntentConfirm()
    return run_idempotent(
        session,
        who,
        request,
        idempotency_key,
        body,
        lambda: _intent_out(intents.confirm_intent(session, who, intent_id, **body.model_dump())),
        keep_on=PaymentFailed,
    )


@router.post(
    "/payment_intents/{intent_id}/capture",
    tags=["payment intents"],
    response_model=PaymentIntentOut,
    responses=errors(*MONEY_ERRORS, IntentNotCapturable, AmountExceedsCapturable),
)
def capture_intent(
    intent_id: str,
    request: Request,
    session: DbSession,
    who: Caller,
    body: PaymentIntentCapture | None = None,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Capture an authorized intent, in whole or in part; the rest is released."""
    body = body or PaymentIntentCapture()
    return run_idempotent(
        session,
        who,
        request,
        idempotency_key,
        body,
        lambda: _intent_out(intents.capture_intent(session, who, intent_id, amount=body.amount_to_capture)),
    )


@router.post(
    "/payment_intents/{intent_id}/cancel",
    tags=["payment intents"],
    response_model=PaymentIntentOut,
    responses=errors(IntentNotFound, IntentNotCancelable, IdempotencyKeyReused),
)
def cancel_intent(
    intent_id: str,
    request: Request,
    session: DbSession,
    who: Caller,
    body: PaymentIntentCancel | None = None,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Cancel an intent that has not succeeded; an authorization is voided."""
    body = body or PaymentIntentCancel()
    return run_idempotent(
        session,
        who,
        request,
        idempotency_key,
        body,
        lambda: _intent_out(intents.cancel_intent(session, who, intent_id, reason=body.cancellation_reason)),
    )


# Refunds ---------------------------------------------------------------------------------------------


@router.post(
    "/refunds",
    status_code=201,
    tags=["refunds"],
    response_model=RefundOut,
    responses=errors(*MONEY_ERRORS, IntentNotRefundable, AmountExceedsRefundable),
)
def create_refund(
    body: RefundCreate,
    request: Request,
    session: DbSession,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Refund part or all of a succeeded intent."""
    return run_idempotent(
        session,
        who,
        request,
        idempotency_key,
        body,
        lambda: RefundOut.model_validate(
            refunds.create_refund(session, who, body.payment_intent, amount=body.amount, reason=body.reason)
        ),
        status_code=201,
    )


@router.get("/refunds/{refund_id}", tags=["refunds"])
def get_refund(refund_id: str, session: DbSession, who: Caller) -> RefundOut:
    """One refund."""
    return RefundOut.model_validate(refunds.get_refund(session, who, refund_id))


@router.get("/payment_intents/{intent_id}/refunds", tags=["refunds"], responses=errors(IntentNotFound))
def list_refunds(intent_id: str, session: DbSession, who: Caller) -> list[RefundOut]:
    """The refunds of an intent."""
    return [RefundOut.model_validate(r) for r in refunds.list_refunds(session, who, intent_id)]


# Ledger (finance) ------------------------------------------------------------------------------------


def _balance_out(session: DbSession, account_id: str, as_of: datetime | None) -> BalanceOut:
    if as_of is not None:
        posted = ledger.balance_as_of(session, account_id, as_of)
        currency = ledger.account_by_id(session, account_id).currency
        return BalanceOut(
            account_id=account_id, currency=currency, posted=posted, held=0, available=posted, as_of=as_of
        )
    balance = ledger.balance(session, account_id)
    return BalanceOut(
        account_id=account_id,
        currency=balance.currency,
        posted=balance.posted,
        held=balance.held,
        available=balance.available,
    )


def _entries_out(
    session: DbSession, account_id: str | None, limit: int, starting_after: str | None
) -> LedgerEntryList:
    views, has_more = ledger.list_entries(
        session, account_id=account_id, limit=limit, starting_after=starting_after
    )
    data = [
        LedgerEntryOut(
            id=v.id,
            kind=v.kind,
            intent_id=v.intent_id,
            refund_id=v.refund_id,
            description=v.description,
            posted_at=v.posted_at,
            lines=[LedgerLineOut(account_id=a, amount=amt, currency=c) for a, amt, c in v.lines],
        )
        for v in views
    ]
    return LedgerEntryList(data=data, has_more=has_more, next_cursor=views[-1].id if has_more else None)


@router.get("/ledger/accounts", tags=["ledger"], responses=errors(RoleNotAllowed))
def list_accounts(session: DbSession, who: Caller) -> list[dict[str, object]]:
    """Every ledger account with its balance (finance)."""
    who.require(Role.FINANCE, Role.ADMIN)
    return [
        {
            "id": a.id,
            "code": a.code,
            "type": a.type,
            "currency": a.currency,
            "balance_mode": a.balance_mode,
            "posted": b.posted,
            "held": b.held,
            "available": b.available,
        }
        for a, b in ledger.list_accounts(session)
    ]


@router.get("/ledger/accounts/{account_id}/balance", tags=["ledger"], responses=errors(RoleNotAllowed))
def account_balance(
    account_id: str, session: DbSession, who: Caller, as_of: Annotated[datetime | None, Query()] = None
) -> BalanceOut:
    """Any account's balance, now or as of a time (finance)."""
    who.require(Role.FINANCE, Role.ADMIN)
    return _balance_out(session, account_id, as_of)


@router.get("/ledger/entries", tags=["ledger"], responses=errors(RoleNotAllowed))
def list_entries(
    session: DbSession,
    who: Caller,
    limit: Limit = 25,
    starting_after: Cursor = None,
    account_id: Annotated[str | None, Query(max_length=40)] = None,
) -> LedgerEntryList:
    """All journal entries, or those of one account, newest first (finance)."""
    who.require(Role.FINANCE, Role.ADMIN)
    return _entries_out(session, account_id, limit, starting_after)


# Events ----------------------------------------------------------------------------------------------


@router.get("/events", tags=["events"], responses=errors(RoleNotAllowed))
def list_events(
    session: DbSession, who: Caller, limit: Limit = 25, starting_after: Cursor = None
) -> EventList:
    """Events about the caller's merchant (all, for finance), newest first."""
    if not who.is_staff and who.merchant_id is None:
        raise RoleNotAllowed("Events are for merchants and finance.")
    query = select(Event).order_by(Event.id.desc()).limit(limit + 1)
    if not who.is_staff:
        query = query.where(Event.merchant_id == who.merchant_id)
    if starting_after:
        query = query.where(Event.id < starting_after)
    rows = list(session.scalars(query))
    page, has_more = rows[:limit], len(rows) > limit
    return EventList(
        data=[EventOut.model_validate(e) for e in page],
        has_more=has_more,
        next_cursor=page[-1].id if has_more else None,
    )
