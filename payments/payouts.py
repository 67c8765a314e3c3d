"""Payouts: transfers the platform owes back (VietQR refunds, overpayments) until the bank confirms them."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from hanoipay.errors import Conflict, InvalidRequest, NotFound
from hanoipay.ids import new_id
from payments import ledger
from payments.models import BankTransaction, PaymentIntent, Payout, PayoutStatus, Refund, RefundStatus


class PayoutNotFound(NotFound):
    code = "payout_not_found"


class PayoutAlreadyPaid(Conflict):
    code = "payout_already_paid"


class PayerAccountUnknown(InvalidRequest):
    code = "payer_account_unknown"


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
    intent_id: str | None,
    refund_id: str | None,
    bank_bin: str,
    account: str,
    amount: int,
    currency: str,
    reason: str,
) -> Payout:
    """Record a transfer to make; its money stays in the receipts account until the bank confirms it."""
    payout = Payout(
        id=new_id("po"),
        intent_id=intent_id,
        refund_id=refund_id,
        bank_bin=bank_bin,
        account=account,
        amount=amount,
        currency=currency,
        reason=reason,
        status=PayoutStatus.PENDING,
    )
    session.add(payout)
    session.flush()
    return payout


def mark_paid(session: Session, who: Principal, payout_id: str) -> Payout:
    """The bank confirmed the transfer: the money leaves the platform's account, and a refund succeeds."""
    who.require(Role.FINANCE, Role.ADMIN)
    payout = session.get(Payout, payout_id, with_for_update=True)
    if payout is None:
        raise PayoutNotFound(f"No payout {payout_id}.")
    if payout.status == PayoutStatus.PAID:
        raise PayoutAlreadyPaid(f"Payout {payout_id} was already confirmed.")
    ledger.post_entry(
        session,
        kind="payout",
        dedupe_key=f"payout:{payout.id}",
        description=payout.reason,
        lines=[
            (ledger.receipts_account(session, "vietqr", payout.currency), payout.amount),
            (ledger.clearing_account(session, "vietqr", payout.currency), -payout.amount),
        ],
        intent_id=payout.intent_id,
        refund_id=payout.refund_id,
    )
    payout.status, payout.paid_at = PayoutStatus.PAID, func.now()
    if payout.refund_id is not None:
        refund = session.get(Refund, payout.refund_id)
        assert refund is not None
        refund.status = RefundStatus.SUCCEEDED
    session.flush()
    session.refresh(payout)
    return payout


def list_payouts(session: Session, who: Principal, status: str | None) -> list[Payout]:
    """Payouts, newest first (finance)."""
    who.require(Role.FINANCE, Role.ADMIN)
    query = select(Payout).order_by(Payout.id.desc()).limit(500)
    if status:
        query = query.where(Payout.status == status)
    return list(session.scalars(query))
