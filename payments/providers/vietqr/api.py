"""HTTP API of the bank side: the signed webhook, VietQR images, bank transactions and payouts."""

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import Role, RoleNotAllowed
from hanoipay.db import DbSession, committed
from hanoipay.errors import Conflict, InvalidRequest
from hanoipay.http import errors, raw_body, require_json
from hanoipay.settings import get_settings
from payments import payouts
from payments.exceptions import IntentNotFound, InvalidSignature, MalformedWebhook, UnknownCollectionAccount
from payments.intents import get_intent
from payments.models import BankTransactionStatus, IntentStatus, PayoutStatus
from payments.providers.vietqr import payload_for, webhook
from payments.providers.vietqr.banks import bank_by_bin
from payments.providers.vietqr.codec import VietQrError, parse_payload
from payments.providers.vietqr.image import render_png

router = APIRouter(prefix="/v1")


class QrNotAvailable(Conflict):
    code = "qr_not_available"
    title = "No QR for this intent"


class QrBadCrc(InvalidRequest):
    code = "qr_bad_crc"


class QrBadLength(InvalidRequest):
    code = "qr_bad_length"


class QrBadLayout(InvalidRequest):
    code = "qr_bad_layout"


class QrUnknownBank(InvalidRequest):
    code = "qr_unknown_bank"


_QR_ERRORS: dict[str, type[InvalidRequest]] = {
    cls.code: cls for cls in (QrBadCrc, QrBadLength, QrBadLayout, QrUnknownBank)
}


class QrDecodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payload: str = Field(
        min_length=1, max_length=512, description="The text a camera read from a VietQR code"
    )


class QrDecodeOut(BaseModel):
    bank_bin: str
    bank: str | None
    account: str
    amount: int | None
    reference: str | None
    point_of_initiation: str
    merchant_name: str | None


class BankTransactionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    bank_txn_id: str
    amount: int
    currency: str
    description: str
    occurred_at: datetime
    intent_id: str | None
    status: BankTransactionStatus
    note: str | None


class PayoutOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    intent_id: str | None
    refund_id: str | None
    merchant_id: str | None
    bank_bin: str
    account: str
    account_name: str | None
    amount: int
    currency: str
    reason: str
    status: PayoutStatus
    created_at: datetime
    exported_at: datetime | None
    paid_at: datetime | None
    failed_at: datetime | None
    failure_reason: str | None


class PayoutFailure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)


class PayoutResults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    results: list[payouts.PayoutResult] = Field(min_length=1, max_length=10_000)


class BankNotificationReceived(BaseModel):
    received: bool
    duplicate: bool = Field(description="The bank sent this transaction before; nothing changed.")
    status: BankTransactionStatus | None = Field(default=None, description="What became of the transfer.")
    payment_intent: str | None = Field(default=None, description="The intent the transfer was applied to.")


@router.post(
    "/webhooks/bank",
    tags=["webhooks"],
    response_model=BankNotificationReceived,
    responses=errors(InvalidSignature, MalformedWebhook, UnknownCollectionAccount),
)
def bank_webhook(request: Request, body: Annotated[bytes, Depends(raw_body)]) -> Response:
    """The bank's signed "balance changed" notification; each bank transaction is applied once."""
    webhook.verify_signature(request.headers.get(webhook.SIGNATURE_HEADER), body)
    note = webhook.parse_notification(body)
    answer = committed(lambda session: webhook.apply_notification(session, note))
    # Written as it is (the documented model above): a bank's notifications arrive by the thousand.
    return Response(json.dumps(answer), media_type="application/json")


@router.post(
    "/webhooks/bank/payouts", tags=["webhooks"], responses=errors(InvalidSignature, MalformedWebhook)
)
def bank_payout_webhook(request: Request, body: Annotated[bytes, Depends(raw_body)]) -> dict[str, Any]:
    """The bank's signed report of which transfers of a payout file went through and which failed."""
    webhook.verify_signature(request.headers.get(webhook.SIGNATURE_HEADER), body)
    try:
        report = PayoutResults.model_validate_json(body)
    except ValueError as exc:
        raise MalformedWebhook(f"The payout report is not valid: {str(exc)[:300]}") from None
    applied = committed(lambda session: payouts.apply_results(session, report.results))
    return {"received": True, "payouts": applied}


@router.get(
    "/payment_intents/{intent_id}/qr.png",
    tags=["payment intents"],
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **errors(IntentNotFound, QrNotAvailable)},
)
def intent_qr(intent_id: str, session: DbSession, who: Caller) -> Response:
    """The VietQR code to scan with a bank app, with the bank, holder, amount and reference under it."""
    intent = get_intent(session, who, intent_id)
    if (
        intent.provider != "vietqr"
        or intent.reference is None
        or intent.status != IntentStatus.REQUIRES_ACTION
    ):
        raise QrNotAvailable(f"Intent {intent.id} is not waiting for a VietQR transfer.")
    settings = get_settings()
    bank_entry = bank_by_bin(settings.vietqr_bank_bin)
    png = render_png(
        payload_for(intent),
        bank_short_name=bank_entry.short_name if bank_entry else settings.vietqr_bank_bin,
        account_holder=settings.vietqr_account_name,
        amount=intent.amount,
        reference=intent.reference,
    )
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})


@router.post(
    "/vietqr/decode",
    tags=["payment intents"],
    dependencies=[Depends(require_json)],
    responses=errors(QrBadCrc, QrBadLength, QrBadLayout, QrUnknownBank),
)
def decode_qr(body: QrDecodeIn, who: Caller) -> QrDecodeOut:
    """Read a scanned VietQR payload (static or dynamic): the bank, account, amount and reference."""
    try:
        parsed = parse_payload(body.payload.strip())
    except VietQrError as error:
        raise _QR_ERRORS.get(error.code, QrBadLayout)(error.detail) from None
    found = bank_by_bin(parsed.bank_bin)
    return QrDecodeOut(
        bank_bin=parsed.bank_bin,
        bank=found.short_name if found else None,
        account=parsed.account,
        amount=parsed.amount,
        reference=parsed.reference,
        point_of_initiation=parsed.point_of_initiation,
        merchant_name=parsed.merchant_name,
    )


@router.get("/bank_transactions", tags=["reconciliation"], responses=errors(RoleNotAllowed))
def list_bank_transactions(
    session: DbSession,
    who: Caller,
    status: Annotated[
        str | None, Query(max_length=16, description="applied, partial, unapplied, late, excess")
    ] = None,
) -> list[BankTransactionOut]:
    """Transfers the bank reported, newest first: what is unapplied, late or in excess (finance)."""
    who.require(Role.FINANCE, Role.ADMIN)
    return [BankTransactionOut.model_validate(t) for t in webhook.list_transactions(session, status)]


@router.get("/payouts", tags=["reconciliation"], responses=errors(RoleNotAllowed))
def list_payouts(
    session: DbSession, who: Caller, status: Annotated[str | None, Query(max_length=16)] = None
) -> list[PayoutOut]:
    """Transfers the platform owes (VietQR refunds, overpayments), newest first (finance)."""
    return [PayoutOut.model_validate(p) for p in payouts.list_payouts(session, who, status)]


@router.get(
    "/payouts/bank_file.csv",
    tags=["reconciliation"],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **errors(RoleNotAllowed)},
)
def payout_bank_file(session: DbSession, who: Caller) -> Response:
    """The pending payouts not yet sent, as the bank's transfer file; each payout is exported once."""
    content, count = payouts.export_bank_file(session, who)
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="payouts.csv"',
            "X-Payout-Count": str(count),
        },
    )


@router.post(
    "/payouts/{payout_id}/mark_failed",
    tags=["reconciliation"],
    dependencies=[Depends(require_json)],
    responses=errors(
        RoleNotAllowed, payouts.PayoutNotFound, payouts.PayoutAlreadyPaid, payouts.PayoutAlreadyFailed
    ),
)
def mark_payout_failed(payout_id: str, body: PayoutFailure, session: DbSession, who: Caller) -> PayoutOut:
    """Record that the bank refused a payout: its money returns to where it came from."""
    return PayoutOut.model_validate(payouts.mark_failed(session, who, payout_id, reason=body.reason))


@router.post(
    "/payouts/{payout_id}/mark_paid",
    tags=["reconciliation"],
    responses=errors(
        RoleNotAllowed, payouts.PayoutNotFound, payouts.PayoutAlreadyPaid, payouts.PayoutAlreadyFailed
    ),
)
def mark_payout_paid(payout_id: str, session: DbSession, who: Caller) -> PayoutOut:
    """Record that the bank confirmed a payout: the money leaves the platform and a refund succeeds."""
    return PayoutOut.model_validate(payouts.mark_paid(session, who, payout_id))
