"""Manual top-ups recorded by finance staff: money received outside the platform, with a reason."""

from typing import Literal

from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from payments import accounts, ledger
from payments.models import PaymentIntent, Refund
from payments.providers.base import AuthorizeResult, Outcome, PaymentMethod, RefundOutcome


class ManualProvider:
    """Money finance staff say arrived (cash at a counter, a bank transfer matched by hand)."""

    name = "manual"
    settles_at_once = True
    holds_at_once = False
    asks_about_refunds = False

    def prepare(self, session: Session, who: Principal, intent: PaymentIntent, method: PaymentMethod) -> None:
        """Only finance staff may say money arrived outside the platform."""
        who.require(Role.FINANCE, Role.ADMIN)

    def source_account(self, session: Session, intent: PaymentIntent) -> accounts.AccountRef:
        """Manual receipts clear through their own clearing account, reconciled by finance."""
        return ledger.clearing_account(session, self.name, intent.currency)

    def authorize(self, session: Session, intent: PaymentIntent) -> AuthorizeResult:
        """The money is already there."""
        return "succeeded"

    def capture(self, session: Session, intent: PaymentIntent, amount: int) -> None:
        """Nothing is reserved."""

    def void(self, session: Session, intent: PaymentIntent) -> None:
        """Nothing is reserved."""

    def refund(
        self, session: Session, intent: PaymentIntent, refund: Refund
    ) -> Literal["succeeded", "pending"]:
        """Finance pays a manual refund back outside the platform; the ledger records it at once."""
        return "succeeded"

    def retrieve(self, session: Session, intent: PaymentIntent) -> Outcome:
        """A manual receipt is recorded as it happens: there is never an answer to wait for."""
        return Outcome("processing")

    def retrieve_refund(
        self, session: Session, intent: PaymentIntent, refund: Refund
    ) -> RefundOutcome | None:
        """There is nobody to ask: the refund is done at once."""
        return None
