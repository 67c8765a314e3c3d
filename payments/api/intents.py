"""HTTP API of payment intents and their refunds."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from hanoipay.auth.deps import Caller
from hanoipay.db import DbSession
from hanoipay.http import errors, require_json
from hanoipay.pagination import Cursor, Limit, ListOut
from payments import intents, refunds
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
    WalletNotFound,
)
from payments.idempotency import IdempotencyHeader, run_idempotent
from payments.schemas import (
    PaymentIntentCancel,
    PaymentIntentCapture,
    PaymentIntentConfirm,
    PaymentIntentCreate,
    PaymentIntentOut,
    RefundCreate,
    RefundOut,
)

router = APIRouter(prefix="/v1", dependencies=[Depends(require_json)])


MONEY_ERRORS = (
    IdempotencyKeyReused,
    InsufficientFunds,
    IntentNotFound,
    UnsupportedCurrency,
    CurrencyMismatch,
)


def _intent_out(intent: object) -> PaymentIntentOut:
    return PaymentIntentOut.model_validate(intent)


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
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Create a payment intent for a purpose; with `confirm: true`, pay it at once."""
    return run_idempotent(
        who,
        request,
        idempotency_key,
        body,
        lambda session: _intent_out(intents.create_intent(session, who, **body.model_dump())),
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
) -> ListOut[PaymentIntentOut]:
    """The caller's intents, newest first, with cursor pagination and filters."""
    filters = intents.IntentFilters(merchant_id, purpose, status, created_gte, created_lt)
    page = intents.list_intents(session, who, filters, limit=limit, starting_after=starting_after)
    return ListOut.of(page, _intent_out)


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
    who: Caller,
    body: PaymentIntentConfirm | None = None,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Confirm an intent with a payment method; a wallet pays at once or authorizes for manual capture."""
    body = body or PaymentIntentConfirm()
    return run_idempotent(
        who,
        request,
        idempotency_key,
        body,
        lambda session: _intent_out(intents.confirm_intent(session, who, intent_id, **body.model_dump())),
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
    who: Caller,
    body: PaymentIntentCapture | None = None,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Capture an authorized intent, in whole or in part; the rest is released."""
    body = body or PaymentIntentCapture()
    return run_idempotent(
        who,
        request,
        idempotency_key,
        body,
        lambda session: _intent_out(
            intents.capture_intent(session, who, intent_id, amount=body.amount_to_capture)
        ),
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
    who: Caller,
    body: PaymentIntentCancel | None = None,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Cancel an intent that has not succeeded; an authorization is voided."""
    body = body or PaymentIntentCancel()
    return run_idempotent(
        who,
        request,
        idempotency_key,
        body,
        lambda session: _intent_out(
            intents.cancel_intent(session, who, intent_id, reason=body.cancellation_reason)
        ),
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
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Refund part or all of a succeeded intent."""
    return run_idempotent(
        who,
        request,
        idempotency_key,
        body,
        lambda session: RefundOut.model_validate(
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
