"""Wallet top-ups: intents with purpose `wallet_topup` whose money lands in the payer's wallet."""

from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from payments import accounts, intents, wallets
from payments.exceptions import CurrencyMismatch, WalletNotFound
from payments.models import PaymentIntent, Wallet
from payments.purposes import Purpose


def topup_wallet_account(session: Session, intent: PaymentIntent) -> accounts.AccountRef:
    """The wallet a top-up intent credits, named by its purpose_ref."""
    wallet = session.get(Wallet, intent.purpose_ref) if intent.purpose_ref else None
    if wallet is None:
        raise WalletNotFound(f"No wallet {intent.purpose_ref}.")
    return wallets.wallet_account(wallet)


def validate_topup(session: Session, who: Principal, intent: PaymentIntent) -> None:
    """A top-up names, in purpose_ref, a wallet in its currency that the caller owns (or staff may fill)."""
    wallet = session.get(Wallet, intent.purpose_ref) if intent.purpose_ref else None
    if wallet is None or not (who.is_staff or wallet.owner_id == who.id):
        raise WalletNotFound(f"No wallet {intent.purpose_ref}; a top-up names its wallet in purpose_ref.")
    if wallet.currency != intent.currency:
        raise CurrencyMismatch(f"The wallet holds {wallet.currency}; the top-up is in {intent.currency}.")
    intent.payer_id = wallet.owner_id


WALLET_TOPUP = Purpose(
    name="wallet_topup",
    requires_merchant=False,
    providers=frozenset({"manual", "vietqr", "stripe"}),
    credit_account=topup_wallet_account,
    validate=validate_topup,
)


def record_manual_topup(
    session: Session, who: Principal, wallet_id: str, *, amount: int, reason: str
) -> PaymentIntent:
    """Finance records money received outside the platform into a wallet, with the reason, in the ledger."""
    who.require(Role.FINANCE, Role.ADMIN)
    wallet = session.get(Wallet, wallet_id)
    if wallet is None:
        raise WalletNotFound(f"No wallet {wallet_id}.")
    intent = intents.create_intent(
        session,
        who,
        amount=amount,
        currency=wallet.currency,
        purpose="wallet_topup",
        purpose_ref=wallet.id,
        provider="manual",
        confirm=True,
        description=reason,
        metadata={"reason": reason, "recorded_by": who.id},
    )
    return intent
