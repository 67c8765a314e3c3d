"""The interface every payment provider implements, and the registry of providers."""

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from payments.accounts import AccountRef
from payments.exceptions import UnknownProvider
from payments.models import PaymentIntent, Refund

AuthorizeResult = Literal["succeeded", "requires_capture", "processing", "requires_action"]
ProviderStatus = Literal[
    "succeeded", "requires_capture", "processing", "requires_action", "failed", "canceled"
]
RefundOutcome = Literal["succeeded", "pending", "failed"]


@dataclass(frozen=True)
class Outcome:
    """Where a provider says a payment stands: what `transitions.apply_outcome` applies to the intent once."""

    status: ProviderStatus
    amount: int | None = None
    error: dict[str, str | None] | None = None
    next_action: dict[str, Any] | None = None


@dataclass(frozen=True)
class PaymentMethod:
    """How the payer pays: a wallet of theirs, or a provider's own token (Stripe's `pm_...`)."""

    wallet_id: str | None = None
    payment_method: str | None = None
    return_url: str | None = None


class Provider(Protocol):
    """A way money reaches the platform: the payer's wallet, a bank transfer, a card."""

    name: str
    # True when `authorize` settles an automatic-capture payment inside the database transaction itself.
    settles_at_once: bool
    # True when `authorize` reserves a manual-capture intent's money inside the database transaction (a
    # hold), leaving the intent requires_capture.
    holds_at_once: bool
    # True when a pending refund can be settled by asking the provider (`retrieve_refund`).
    asks_about_refunds: bool

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

    def retrieve(self, session: Session, intent: PaymentIntent) -> Outcome:
        """Ask the provider where an intent left `processing` (its answer lost) stands now."""

    def retrieve_refund(
        self, session: Session, intent: PaymentIntent, refund: Refund
    ) -> RefundOutcome | None:
        """Ask the provider where a pending refund stands; None when only its own confirmation will say."""


_providers: dict[str, Provider] = {}


def register_provider(provider: Provider) -> None:
    """Make a provider available by its name."""
    _providers[provider.name] = provider


def all_providers() -> list[Provider]:
    """Every registered provider."""
    return list(_providers.values())


def get_provider(name: str | None) -> Provider:
    """The provider with this name, or UnknownProvider."""
    provider = _providers.get(name or "")
    if provider is None:
        raise UnknownProvider(f"Unknown provider {name!r}; available: {', '.join(sorted(_providers))}.")
    return provider
