"""The interface every payment provider implements, and the registry of providers."""

from dataclasses import dataclass
from typing import Literal, Protocol

from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from payments.exceptions import UnknownProvider
from payments.ledger import AccountRef
from payments.models import PaymentIntent, Refund

AuthorizeResult = Literal["succeeded", "requires_capture", "processing", "requires_action"]


@dataclass(frozen=True)
class PaymentMethod:
    """How the payer pays: a wallet of theirs, or a provider's own token (Stripe's `pm_...`)."""

    wallet_id: str | None = None
    payment_method: str | None = None
    return_url: str | None = None


class Provider(Protocol):
    """A way money reaches the platform: the payer's wallet, a bank transfer, a card."""

    name: str

    def prepare(self, session: Session, who: Principal, intent: PaymentIntent, method: PaymentMethod) -> None:
        """Attach the payer's payment method to the intent, checking that the caller may use it."""

    def source_account(self, session: Session, intent: PaymentIntent) -> AccountRef:
        """The ledger account the intent's money comes from."""

    def authorize(self, session: Session, intent: PaymentIntent) -> AuthorizeResult:
        """Start taking the money; manual-capture intents only reserve it."""

    def capture(self, session: Session, intent: PaymentIntent, amount: int) -> None:
        """Take `amount` of a reserved authorization and release the rest."""

    def void(self, session: Session, intent: PaymentIntent) -> None:
        """Release whatever the intent reserved."""

    def refund(
        self, session: Session, intent: PaymentIntent, refund: Refund
    ) -> Literal["succeeded", "pending"]:
        """Send `refund.amount` back to the payer."""


_providers: dict[str, Provider] = {}


def register_provider(provider: Provider) -> None:
    """Make a provider available by its name."""
    _providers[provider.name] = provider


def get_provider(name: str | None) -> Provider:
    """The provider with this name, or UnknownProvider."""
    provider = _providers.get(name or "")
    if provider is None:
        raise UnknownProvider(f"Unknown provider {name!r}; available: {', '.join(sorted(_providers))}.")
    return provider
