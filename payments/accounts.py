"""Ledger accounts: what a posting needs to know of one (`AccountRef`), opening them, and the account cache.

An account never changes its code, type, currency or balance mode once opened, so each process caches
what it has read; `clear_account_cache` forgets it after the database was reset underneath.
"""

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from hanoipay.ids import new_id
from payments.exceptions import AccountNotFound
from payments.models import AccountBalance, LedgerAccount

AccountType = Literal["asset", "liability", "revenue", "expense", "equity"]
DEBIT_NORMAL = frozenset({"asset", "expense"})


@dataclass(frozen=True)
class AccountRef:
    """What a posting needs to know of an account; cached, since an account never changes these."""

    id: str
    code: str
    type: str
    currency: str
    balance_mode: str

    @property
    def sign(self) -> int:
        """+1 when a debit raises the balance, -1 when a credit does."""
        return 1 if self.type in DEBIT_NORMAL else -1


_cache: dict[str, AccountRef] = {}


def clear_account_cache() -> None:
    """Forget cached accounts, after the database was reset underneath the process (restores, tests)."""
    _cache.clear()


def _ref(account: LedgerAccount) -> AccountRef:
    return AccountRef(account.id, account.code, account.type, account.currency, account.balance_mode)


def open_account(
    session: Session,
    code: str,
    *,
    name: str,
    type: AccountType,
    currency: str,
    balance_mode: Literal["checked", "deferred"],
    merchant_id: str | None = None,
) -> AccountRef:
    """The account with this code, opened (with its balance row) if it does not exist yet."""
    if (cached := _cache.get(code)) is not None:
        return cached
    account_id = session.execute(
        pg_insert(LedgerAccount)
        .values(
            id=new_id("acct"),
            code=code,
            name=name,
            type=type,
            currency=currency,
            balance_mode=balance_mode,
            merchant_id=merchant_id,
        )
        .on_conflict_do_nothing(index_elements=["code"])
        .returning(LedgerAccount.id)
    ).scalar()
    if account_id is not None:
        session.execute(
            insert(AccountBalance).values(
                account_id=account_id, non_negative=balance_mode == "checked", updated_at=func.now()
            )
        )
        # Not cached yet: the transaction that opened it may still roll back.
        return AccountRef(account_id, code, type, currency, balance_mode)
    ref = _ref(session.scalars(select(LedgerAccount).where(LedgerAccount.code == code)).one())
    _cache[code] = ref
    return ref


def account_by_id(session: Session, account_id: str) -> AccountRef:
    """The account with this id."""
    account = session.get(LedgerAccount, account_id)
    if account is None:
        raise AccountNotFound(f"No ledger account {account_id}.")
    return _ref(account)
