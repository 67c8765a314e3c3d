"""Paying invoices: by wallet, card or VietQR through the core, and bank transfers naming an invoice code
(the parent writes the code as the reference); the `tuition_invoice` purpose's hooks."""

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from merchants.exceptions import AmountExceedsBalance, InvoiceNotFound, InvoicePaid, PartialPaymentNotAllowed
from merchants.models import Invoice, InvoicePayment
from merchants.service.tuition.invoices import codes_in, get_invoice, status_for
from payments import intents
from payments.models import BankTransaction, PaymentIntent, Refund
from payments.providers.vietqr import webhook as bank

# Whoever applies a bank transfer to an invoice: the platform itself, acting on the bank's word.
BANK_COLLECTOR = Principal(id="system_tuition_collector", kind="system", roles=frozenset({"finance"}))


def pay_invoice(
    session: Session,
    who: Principal,
    invoice_id: str,
    *,
    amount: int | None,
    provider: str,
    wallet_id: str | None = None,
    payment_method: str | None = None,
) -> PaymentIntent:
    """A parent pays an invoice (all that is left, or part where the school allows): wallet, VietQR, card."""
    invoice = get_invoice(session, who, invoice_id)
    remaining = invoice.total_amount - invoice.paid_amount
    return intents.create_intent(
        session,
        who,
        amount=remaining if amount is None else amount,
        currency=invoice.currency,
        purpose="tuition_invoice",
        merchant_id=invoice.merchant_id,
        purpose_ref=invoice.id,
        provider=provider,
        wallet_id=wallet_id,
        payment_method=payment_method,
        confirm=True,
        description=f"Học phí {invoice.term} {invoice.code}",
    )


def validate_payment(session: Session, who: Principal, intent: PaymentIntent) -> None:
    """An invoice payment names its invoice, fits its balance, and is whole unless the school takes part."""
    if intent.purpose_ref is None:
        raise InvoiceNotFound("A tuition payment names its invoice in purpose_ref.")
    invoice = get_invoice(session, who, intent.purpose_ref, for_update=True)
    if invoice.merchant_id != intent.merchant_id:
        raise InvoiceNotFound(f"No invoice {intent.purpose_ref} at this school.")
    remaining = invoice.total_amount - invoice.paid_amount
    if remaining <= 0:
        raise InvoicePaid(f"Invoice {invoice.code} is paid in full.")
    if intent.amount > remaining:
        raise AmountExceedsBalance(
            f"{intent.amount} is more than the {remaining} VND left on invoice {invoice.code}.",
            remaining=remaining,
        )
    if intent.amount < remaining and not invoice.allow_partial and who.id != BANK_COLLECTOR.id:
        raise PartialPaymentNotAllowed(
            f"The school takes invoice {invoice.code} in one payment of {remaining} VND.", remaining=remaining
        )


def record_payment(session: Session, intent: PaymentIntent) -> None:
    """Money reached an invoice: add it, in the payment's transaction."""
    assert intent.purpose_ref is not None
    # A wallet payment succeeds before its intent row is written, and the payment row refers to it.
    session.flush()
    invoice = session.get(Invoice, intent.purpose_ref, with_for_update=True, populate_existing=True)
    assert invoice is not None
    inserted = session.execute(
        pg_insert(InvoicePayment)
        .values(
            intent_id=intent.id,
            invoice_id=invoice.id,
            amount=intent.amount_received,
            provider=intent.provider or "unknown",
            paid_at=intent.succeeded_at or datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["intent_id"])
        .returning(InvoicePayment.intent_id)
    ).scalar()
    if inserted is not None:
        invoice.paid_amount += intent.amount_received
        invoice.status = status_for(invoice.total_amount, invoice.paid_amount)


def record_refund(session: Session, intent: PaymentIntent, refund: Refund) -> None:
    """A tuition payment was refunded: the invoice owes that much again."""
    amount = refund.amount
    assert intent.purpose_ref is not None
    invoice = session.get(Invoice, intent.purpose_ref, with_for_update=True, populate_existing=True)
    if invoice is not None and amount:
        invoice.paid_amount -= amount
        invoice.status = status_for(invoice.total_amount, invoice.paid_amount)


# The bank's side: transfers naming an invoice code ------------------------------------------------------


def claim_transfer(session: Session, txn: BankTransaction) -> bool:
    """Apply a transfer naming an open invoice's code; any excess follows the school's rule."""
    for code in codes_in(txn.description):
        invoice = session.scalar(select(Invoice).where(Invoice.code == code).with_for_update())
        if invoice is None or invoice.paid_amount >= invoice.total_amount:
            continue
        remaining = invoice.total_amount - invoice.paid_amount
        intent = intents.create_intent(
            session,
            BANK_COLLECTOR,
            amount=min(remaining, txn.amount),
            currency=invoice.currency,
            purpose="tuition_invoice",
            merchant_id=invoice.merchant_id,
            purpose_ref=invoice.id,
            provider="vietqr",
            confirm=True,
            description=f"bank transfer {txn.bank_txn_id} for {invoice.code}",
        )
        bank.apply_to_intent(session, txn, intent)
        return True
    return False


COLLECTOR = bank.Collector(name="tuition_invoices", claim=claim_transfer)
