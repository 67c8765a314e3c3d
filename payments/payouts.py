"""Payouts: every transfer the platform sends out of its bank account, one path for all of them.

A refund of a VietQR payment, the excess of an overpayment and a merchant's settlement are all payouts:

    queued   source (unapplied receipts, or the merchant's payable) → payout clearing
    paid     payout clearing → the bank account (provider clearing), when the bank confirms the transfer
    failed   payout clearing → back to the source, when the bank says the transfer did not go through

Pending payouts are exported to the bank as a transfer file (CSV, columns in `BANK_FILE_COLUMNS`); the
bank's confirmation arrives by its signed webhook, or finance records it by hand. Each posting has a
dedupe key, and the payout row is locked before its status changes, so a confirmation delivered twice,
or twice at once, moves the money once.
"""

import csv
import io
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from hanoipay.errors import Conflict, InvalidRequest, NotFound
from hanoipay.ids import new_id
from payments import accounts, ledger
from payments.models import BankTransaction, PaymentIntent, Payout, PayoutStatus, Refund, RefundStatus

BANK_FILE_COLUMNS = (
    "payout_id",
    "bank_bin",
    "account",
    "account_name",
    "amount",
    "currency",
    "description",
)


class PayoutNotFound(NotFound):
    code = "payout_not_found"


class PayoutAlreadyPaid(Conflict):
    code = "payout_already_paid"


class PayoutAlreadyFailed(Conflict):
    code = "payout_already_failed"


class PayerAccountUnknown(InvalidRequest):
    code = "payer_account_unknown"


class PayoutResult(BaseModel):
    """What the bank says became of a transfer in a payout file."""

    model_config = ConfigDict(extra="ignore")

    payout_id: str = Field(min_length=1, max_length=40)
    status: str = Field(pattern=r"^(paid|failed)$")
    reason: str | None = Field(default=None, max_length=500)


def payout_clearing_account(session: Session, currency: str) -> accounts.AccountRef:
    """Money on its way out of the platform: queued payouts the bank has not yet confirmed."""
    return accounts.open_account(
        session,
        f"payout_clearing:{currency}",
        name=f"Payouts in transit ({currency})",
        type="liability",
        currency=currency,
        balance_mode="deferred",
    )


def _payer_account(session: Session, intent_id: str) -> tuple[str, str]:
    """The bank and account the intent's first transfer came from."""
    row = session.execute(
        select(BankTransaction.counter_bank_bin, BankTransaction.counter_account)
        .where(BankTransaction.intent_id == intent_id, BankTransaction.counter_account.is_not(None))
        .order_by(BankTransaction.id)
        .limit(1)
    ).first()
    if row is None or row[0] is None or row[1] is None:
        raise PayerAccountUnknown("The bank did not say which account paid; refund this transfer by hand.")
    return row[0], row[1]


def queue_refund_payout(session: Session, intent: PaymentIntent, refund: Refund) -> Payout:
    """A transfer of the refund back to the account that paid the intent."""
    bank_bin, account = _payer_account(session, intent.id)
    return queue_payout(
        session,
        source=ledger.receipts_account(session, "vietqr", refund.currency),
        intent_id=intent.id,
        refund_id=refund.id,
        bank_bin=bank_bin,
        account=account,
        amount=refund.amount,
        currency=refund.currency,
        reason=f"refund {refund.id} of {intent.id}",
    )


def queue_payout(
    session: Session,
    *,
    source: accounts.AccountRef,
    bank_bin: str,
    account: str,
    amount: int,
    currency: str,
    reason: str,
    intent_id: str | None = None,
    refund_id: str | None = None,
    merchant_id: str | None = None,
    account_name: str | None = None,
    payout_id: str | None = None,
) -> Payout:
    """Record a transfer to make and move its money from `source` to payout clearing."""
    payout = Payout(
        id=payout_id or new_id("po"),
        intent_id=intent_id,
        refund_id=refund_id,
        merchant_id=merchant_id,
        source_account_id=source.id,
        bank_bin=bank_bin,
        account=account,
        account_name=account_name,
        amount=amount,
        currency=currency,
        reason=reason,
        status=PayoutStatus.PENDING,
    )
    session.add(payout)
    session.flush()
    ledger.post_entry(
        session,
        kind="payout",
        dedupe_key=f"payout_queued:{payout.id}",
        description=reason,
        lines=[(source, amount), (payout_clearing_account(session, currency), -amount)],
        intent_id=intent_id,
        refund_id=refund_id,
    )
    return payout


def _locked(session: Session, payout_id: str) -> Payout:
    payout = session.get(Payout, payout_id, with_for_update=True, populate_existing=True)
    if payout is None:
        raise PayoutNotFound(f"No payout {payout_id}.")
    return payout


def _settle_paid(session: Session, payout: Payout) -> None:
    if payout.status == PayoutStatus.PAID:
        raise PayoutAlreadyPaid(f"Payout {payout.id} was already confirmed.")
    if payout.status == PayoutStatus.FAILED:
        raise PayoutAlreadyFailed(
            f"Payout {payout.id} failed; its money went back to {payout.source_account_id}."
        )
    ledger.post_entry(
        session,
        kind="payout_sent",
        dedupe_key=f"payout:{payout.id}",
        description=payout.reason,
        lines=[
            (payout_clearing_account(session, payout.currency), payout.amount),
            (ledger.clearing_account(session, "vietqr", payout.currency), -payout.amount),
        ],
        intent_id=payout.intent_id,
        refund_id=payout.refund_id,
    )
    payout.status, payout.paid_at = PayoutStatus.PAID, func.now()
    if payout.refund_id is not None:
        session.execute(
            update(Refund).where(Refund.id == payout.refund_id).values(status=RefundStatus.SUCCEEDED)
        )
    session.flush()
    session.refresh(payout)


def _settle_failed(session: Session, payout: Payout, reason: str) -> None:
    if payout.status == PayoutStatus.PAID:
        raise PayoutAlreadyPaid(f"Payout {payout.id} was already confirmed; it cannot fail now.")
    if payout.status == PayoutStatus.FAILED:
        raise PayoutAlreadyFailed(f"Payout {payout.id} already failed.")
    ledger.post_entry(
        session,
        kind="payout_returned",
        dedupe_key=f"payout_failed:{payout.id}",
        description=f"{payout.reason} failed: {reason}",
        lines=[
            (payout_clearing_account(session, payout.currency), payout.amount),
            (accounts.account_by_id(session, payout.source_account_id), -payout.amount),
        ],
        intent_id=payout.intent_id,
        refund_id=payout.refund_id,
    )
    payout.status, payout.failed_at, payout.failure_reason = PayoutStatus.FAILED, func.now(), reason
    if payout.refund_id is not None:
        session.execute(
            update(Refund).where(Refund.id == payout.refund_id).values(status=RefundStatus.FAILED)
        )
    session.flush()
    session.refresh(payout)


def mark_paid(session: Session, who: Principal, payout_id: str) -> Payout:
    """Finance records that the bank confirmed the transfer: the money leaves the platform's account."""
    who.require(Role.FINANCE, Role.ADMIN)
    payout = _locked(session, payout_id)
    _settle_paid(session, payout)
    return payout


def mark_failed(session: Session, who: Principal, payout_id: str, *, reason: str) -> Payout:
    """Finance records that the transfer failed: the money returns to where it came from."""
    who.require(Role.FINANCE, Role.ADMIN)
    payout = _locked(session, payout_id)
    _settle_failed(session, payout, reason)
    return payout


def apply_results(session: Session, results: Sequence[PayoutResult]) -> dict[str, str]:
    """Apply the bank's signed report of payout results; a result already applied is reported, not redone."""
    outcome: dict[str, str] = {}
    for result in sorted(results, key=lambda r: r.payout_id):
        payout = session.get(Payout, result.payout_id, with_for_update=True, populate_existing=True)
        if payout is None:
            outcome[result.payout_id] = "unknown"
        elif payout.status != PayoutStatus.PENDING:
            outcome[result.payout_id] = f"already_{payout.status}"
        elif result.status == "paid":
            _settle_paid(session, payout)
            outcome[result.payout_id] = "paid"
        else:
            _settle_failed(session, payout, result.reason or "refused by the bank")
            outcome[result.payout_id] = "failed"
    return outcome


def export_bank_file(session: Session, who: Principal, *, now: datetime | None = None) -> tuple[str, int]:
    """The pending payouts not yet sent to the bank, as a transfer file (CSV); each is exported once."""
    who.require(Role.FINANCE, Role.ADMIN)
    rows = session.scalars(
        select(Payout)
        .where(Payout.status == PayoutStatus.PENDING, Payout.exported_at.is_(None))
        .order_by(Payout.id)
        .with_for_update(skip_locked=True)
    ).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(BANK_FILE_COLUMNS)
    for p in rows:
        writer.writerow([p.id, p.bank_bin, p.account, p.account_name or "", p.amount, p.currency, p.reason])
    if rows:
        session.execute(
            update(Payout).where(Payout.id.in_([p.id for p in rows])).values(exported_at=now or func.now())
        )
    return out.getvalue(), len(rows)


def list_payouts(session: Session, who: Principal, status: str | None) -> list[Payout]:
    """Payouts, newest first (finance)."""
    who.require(Role.FINANCE, Role.ADMIN)
    query = select(Payout).order_by(Payout.id.desc()).limit(500)
    if status:
        query = query.where(Payout.status == status)
    return list(session.scalars(query))
