"""Stored-value wallets: one per person and currency, its money held in a checked ledger account."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hanoipay.auth.models import User
from hanoipay.auth.service import Principal
from hanoipay.db import execute, per_transaction
from hanoipay.ids import new_id
from payments import accounts, balances
from payments.exceptions import UnsupportedCurrency, UserNotFound, WalletExists, WalletNotFound
from payments.merchants import Payee, known_payees
from payments.models import Wallet
from payments.money import CURRENCIES


def open_wallet(
    session: Session, who: Principal, *, currency: str = "VND", owner_id: str | None = None
) -> Wallet:
    """Open a wallet for the caller (or, for staff, for `owner_id`)."""
    owner = owner_id if owner_id and who.is_staff else who.id
    if who.kind != "user":
        raise WalletNotFound("Wallets belong to people, not API keys.")
    if currency not in CURRENCIES:
        raise UnsupportedCurrency(f"{currency} is not a supported currency.")
    if session.get(User, owner) is None:
        raise UserNotFound(f"No user {owner}.")
    if session.scalar(select(Wallet.id).where(Wallet.owner_id == owner, Wallet.currency == currency)):
        raise WalletExists(f"There is already a {currency} wallet for this person.")
    wallet_id = new_id("wal")
    account = accounts.open_account(
        session,
        f"wallet:{wallet_id}",
        name=f"Wallet {wallet_id}",
        type="liability",
        currency=currency,
        balance_mode="checked",
    )
    wallet = Wallet(id=wallet_id, owner_id=owner, currency=currency, account_id=account.id)
    session.add(wallet)
    session.flush()
    return wallet


def get_wallet(session: Session, who: Principal, wallet_id: str) -> Wallet:
    """The wallet, if the caller owns it or is finance/admin."""
    wallet = session.get(Wallet, wallet_id)
    if wallet is None or not (who.is_staff or wallet.owner_id == who.id):
        raise WalletNotFound(f"No wallet {wallet_id}.")
    return wallet


@dataclass(frozen=True)
class WalletRef:
    """What a payment needs of a wallet: its owner, currency and ledger account (none of them ever change)."""

    id: str
    owner_id: str
    currency: str
    account_id: str


_WALLETS = "hanoipay.wallets"


def _known_wallets(session: Session) -> dict[str, WalletRef]:
    return per_transaction(session, _WALLETS)


def wallet_ref(session: Session, wallet_id: str) -> WalletRef | None:
    """The wallet's facts, read once per transaction (one round trip, no ORM)."""
    known = _known_wallets(session)
    found = known.get(wallet_id)
    if found is None:
        row = execute(
            session, "SELECT id, owner_id, currency, account_id FROM wallet WHERE id = %s", (wallet_id,)
        ).fetchone()
        if row is None:
            return None
        found = known[wallet_id] = WalletRef(*row)
    return found


# What a payment reads of its merchant (as `m`) and its wallet (as `w`), in the order
# `remember_payee_and_wallet` takes. A statement that already joins both can return these beside its own
# columns, and the payment that follows in the transaction reads neither again.
PAYEE_AND_WALLET_COLUMNS = (
    "m.id, m.currency, m.fee_bps, m.account_id, m.overpayment_policy,"
    " w.id, w.owner_id, w.currency, w.account_id"
)
_PAYEE_AND_WALLET = f"""
SELECT {PAYEE_AND_WALLET_COLUMNS}
FROM (VALUES (1)) AS one (n)
LEFT JOIN merchant m ON m.id = %s
LEFT JOIN wallet w ON w.id = %s
"""  # noqa: S608 (the columns are the constant above)


def read_payee_and_wallet(session: Session, merchant_id: str, wallet_id: str) -> None:
    """Read a payment's merchant and wallet in one round trip instead of two, for `payee` and `wallet_ref`
    to answer from; one that does not exist is left for them to refuse."""
    if merchant_id in known_payees(session) or wallet_id in _known_wallets(session):
        return
    row = execute(session, _PAYEE_AND_WALLET, (merchant_id, wallet_id)).fetchone()
    assert row is not None
    remember_payee_and_wallet(session, row)


def remember_payee_and_wallet(session: Session, row: Sequence[Any]) -> None:
    """Keep, for the rest of the transaction, a merchant and a wallet read as `PAYEE_AND_WALLET_COLUMNS`
    (either may be all NULL: nothing is kept of it)."""
    if row[0] is not None:
        known_payees(session)[row[0]] = Payee(*row[:5])
    if row[5] is not None:
        _known_wallets(session)[row[5]] = WalletRef(*row[5:])


def wallet_to_pay_from(session: Session, who: Principal, wallet_id: str) -> WalletRef:
    """The caller's own wallet: only its owner may spend from it, not even finance staff."""
    wallet = wallet_ref(session, wallet_id)
    if wallet is None or wallet.owner_id != who.id:
        raise WalletNotFound(f"No wallet {wallet_id} of yours to pay from.")
    return wallet


def list_wallets(session: Session, who: Principal) -> list[Wallet]:
    """The caller's own wallets."""
    return list(session.scalars(select(Wallet).where(Wallet.owner_id == who.id).order_by(Wallet.id)))


def wallet_account(wallet: Wallet | WalletRef) -> accounts.AccountRef:
    """The wallet's ledger account: checked, so it never goes below zero."""
    return accounts.AccountRef(
        wallet.account_id, f"wallet:{wallet.id}", "liability", wallet.currency, "checked"
    )


def wallet_balance(session: Session, wallet: Wallet) -> balances.Balance:
    """The wallet's posted, held and available balance."""
    return balances.balance(session, wallet.account_id)
