"""The wallet provider: pays from a person's stored balance, synchronously, never below zero."""

from typing import Literal

from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from payments import accounts, ledger
from payments.exceptions import CurrencyMismatch, PaymentMethodRequired
from payments.models import CaptureMethod, PaymentIntent, Refund
from payments.providers.base import AuthorizeResult, Outcome, PaymentMethod, RefundOutcome
from payments.wallets import wallet_account, wallet_ref, wallet_to_pay_from


class WalletProvider:
    """Moves money inside the database transaction; holds reserve it for manual capture."""

    name = "wallet"
    settles_at_once = True
    holds_at_once = True
    asks_about_refunds = False

    def prepare(self, session: Session, who: Principal, intent: PaymentIntent, method: PaymentMethod) -> None:
        """Use the caller's wallet for the intent."""
        wallet_id = method.wallet_id or intent.wallet_id
        if wallet_id is None:
            raise PaymentMethodRequired("Name the wallet to pay from: wallet_id.")
        wallet = wallet_to_pay_from(session, who, wallet_id)
        if wallet.currency != intent.currency:
            raise CurrencyMismatch(f"The wallet holds {wallet.currency}; the intent is in {intent.currency}.")
        intent.wallet_id = wallet.id
        intent.payer_id = wallet.owner_id

    def source_account(self, session: Session, intent: PaymentIntent) -> accounts.AccountRef:
        """The payer's wallet account."""
        wallet = wallet_ref(session, intent.wallet_id) if intent.wallet_id else None
        assert wallet is not None
        return wallet_account(wallet)

    def authorize(self, session: Session, intent: PaymentIntent) -> AuthorizeResult:
        """Automatic capture posts at once (the core does it); manual capture places a hold."""
        if intent.capture_method == CaptureMethod.AUTOMATIC:
            return "succeeded"
        assert intent.capture_before is not None
        account = self.source_account(session, intent)
        ledger.place_hold(
            session, account, intent_id=intent.id, amount=intent.amount, expires_at=intent.capture_before
        )
        return "requires_capture"

    def capture(self, session: Session, intent: PaymentIntent, amount: int) -> None:
        """Release the hold; the core posts the captured amount."""
        ledger.release_hold(session, intent.id)

    def void(self, session: Session, intent: PaymentIntent) -> None:
        """Release the hold, if any."""
        ledger.release_hold(session, intent.id)

    def refund(
        self, session: Session, intent: PaymentIntent, refund: Refund
    ) -> Literal["succeeded", "pending"]:
        """A wallet refund is the ledger reversal itself, done at once."""
        return "succeeded"

    def retrieve(self, session: Session, intent: PaymentIntent) -> Outcome:
        """A wallet payment is settled inside its own transaction: there is never an answer to wait for."""
        return Outcome("processing")

    def retrieve_refund(
        self, session: Session, intent: PaymentIntent, refund: Refund
    ) -> RefundOutcome | None:
        """There is nobody to ask: the refund is done at once."""
        return None
