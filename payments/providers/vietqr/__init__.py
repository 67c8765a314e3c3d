"""The VietQR provider: the payer scans a dynamic NAPAS QR with a bank app; the bank's webhook confirms.

The QR asks for a transfer to the platform's collection account with the intent's reference. What the
bank reports arriving is first posted to the `unapplied_receipts:vietqr` account (see `webhook.py`);
that account is this provider's source, so applied money nets out of it and its balance is always the
money received but not (yet) applied: partial, late, unmatched or excess transfers.
"""

from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from hanoipay.errors import InvalidRequest
from hanoipay.settings import get_settings
from payments import accounts, ledger
from payments.models import CaptureMethod, PaymentIntent, Refund
from payments.payouts import queue_refund_payout
from payments.providers.base import AuthorizeResult, Outcome, PaymentMethod, RefundOutcome
from payments.providers.vietqr.banks import bank_by_bin
from payments.providers.vietqr.codec import build_payload

REFERENCE_PREFIX = "HP"


class ManualCaptureUnsupported(InvalidRequest):
    code = "capture_method_unsupported"


def reference_for(intent_id: str) -> str:
    """The transfer reference of an intent: HP and the 16 random characters of its id (uppercase base32)."""
    return REFERENCE_PREFIX + intent_id[-16:]


def payload_for(intent: PaymentIntent) -> str:
    """The dynamic VietQR payload asking for the intent's amount with its reference."""
    settings = get_settings()
    assert intent.reference is not None
    return build_payload(
        bank_bin=settings.vietqr_bank_bin,
        account=settings.vietqr_account,
        amount=intent.amount,
        reference=intent.reference,
    )


class VietQrProvider:
    """Waits for the bank: confirming shows a QR, and the bank's signed webhook completes the intent."""

    name = "vietqr"
    settles_at_once = False
    holds_at_once = False
    asks_about_refunds = False

    def prepare(self, session: Session, who: Principal, intent: PaymentIntent, method: PaymentMethod) -> None:
        """A transfer is taken whole: manual capture does not apply."""
        if intent.capture_method != CaptureMethod.AUTOMATIC:
            raise ManualCaptureUnsupported("A bank transfer cannot be authorized and captured later.")
        if intent.currency != "VND":
            raise InvalidRequest("VietQR transfers are in VND.")
        if intent.payer_id is None and who.kind == "user" and who.merchant_id is None and not who.is_staff:
            intent.payer_id = who.id

    def source_account(self, session: Session, intent: PaymentIntent) -> accounts.AccountRef:
        """Applied transfers come out of the receipts suspense account."""
        return ledger.receipts_account(session, self.name, intent.currency)

    def authorize(self, session: Session, intent: PaymentIntent) -> AuthorizeResult:
        """Issue the QR: the intent waits for the bank until it expires."""
        settings = get_settings()
        intent.reference = reference_for(intent.id)
        intent.expires_at = datetime.now(UTC) + timedelta(minutes=settings.vietqr_expiry_minutes)
        bank = bank_by_bin(settings.vietqr_bank_bin)
        intent.next_action = {
            "type": "vietqr_transfer",
            "payload": payload_for(intent),
            "qr_png_url": f"/v1/payment_intents/{intent.id}/qr.png",
            "bank_bin": settings.vietqr_bank_bin,
            "bank": bank.short_name if bank else None,
            "account": settings.vietqr_account,
            "account_name": settings.vietqr_account_name,
            "amount": intent.amount,
            "reference": intent.reference,
            "expires_at": intent.expires_at.isoformat(),
        }
        return "requires_action"

    def capture(self, session: Session, intent: PaymentIntent, amount: int) -> None:
        """Never reached: transfers are not authorized first."""

    def void(self, session: Session, intent: PaymentIntent) -> None:
        """Nothing is reserved; a transfer arriving after the cancel is kept as late."""

    def refund(
        self, session: Session, intent: PaymentIntent, refund: Refund
    ) -> Literal["succeeded", "pending"]:
        """A transfer back to the payer's account, tracked as a payout until the bank confirms it."""
        queue_refund_payout(session, intent, refund)
        return "pending"

    def retrieve(self, session: Session, intent: PaymentIntent) -> Outcome:
        """Only the bank's notification says a transfer arrived: the intent keeps waiting for it."""
        return Outcome("requires_action")

    def retrieve_refund(
        self, session: Session, intent: PaymentIntent, refund: Refund
    ) -> RefundOutcome | None:
        """There is nobody to ask: the payout is confirmed by the bank or by finance."""
        return None
