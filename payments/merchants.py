"""Payees, as far as the payment core needs them: who is paid, in what currency, at what fee, into which
payable account, and what to do with an overpayment. Onboarding (kinds, staff, bank accounts,
verification) belongs to the `merchants` domain, which the core never imports.
"""

from dataclasses import dataclass

from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from hanoipay.db import execute, per_transaction
from hanoipay.ids import new_id
from payments import accounts
from payments.exceptions import MerchantNotFound, UnsupportedCurrency
from payments.models import Merchant
from payments.money import CURRENCIES

OVERPAYMENT_POLICIES = ("refund", "credit_wallet")


def open_payee(
    session: Session,
    *,
    name: str,
    fee_bps: int,
    currency: str,
    overpayment_policy: str = "refund",
    merchant_id: str | None = None,
) -> Merchant:
    """Open a payee and its payable account; the caller (the merchants domain) has authorized it."""
    if currency not in CURRENCIES:
        raise UnsupportedCurrency(f"{currency} is not a supported currency.")
    merchant_id = merchant_id or new_id("mer")
    account = accounts.open_account(
        session,
        f"merchant_payable:{merchant_id}",
        name=f"Payable to {name}",
        type="liability",
        currency=currency,
        balance_mode="deferred",
        merchant_id=merchant_id,
    )
    merchant = Merchant(
        id=merchant_id,
        name=name,
        fee_bps=fee_bps,
        currency=currency,
        overpayment_policy=overpayment_policy,
        account_id=account.id,
    )
    session.add(merchant)
    session.flush()
    return merchant


def set_terms(
    session: Session,
    merchant_id: str,
    *,
    name: str | None = None,
    fee_bps: int | None = None,
    overpayment_policy: str | None = None,
) -> Merchant:
    """Change a payee's name, fee or overpayment policy; payments from now on use the new terms."""
    merchant = session.get(Merchant, merchant_id, with_for_update=True)
    if merchant is None:
        raise MerchantNotFound(f"No merchant {merchant_id}.")
    if name is not None:
        merchant.name = name
    if fee_bps is not None:
        merchant.fee_bps = fee_bps
    if overpayment_policy is not None:
        merchant.overpayment_policy = overpayment_policy
    session.flush()
    session.info.pop(_PAYEES, None)
    return merchant


@dataclass(frozen=True)
class Payee:
    """What a payment reads of its merchant: currency, fee, payable account, overpayment policy."""

    id: str
    currency: str
    fee_bps: int
    account_id: str
    overpayment_policy: str


_PAYEES = "hanoipay.payees"


def known_payees(session: Session) -> dict[str, Payee]:
    """The payees this transaction has read, by merchant id."""
    return per_transaction(session, _PAYEES)


def payee(session: Session, merchant_id: str) -> Payee:
    """The merchant as a payee, read once per transaction (one statement, no ORM: a payment reads it)."""
    known = known_payees(session)
    found = known.get(merchant_id)
    if found is None:
        row = execute(
            session,
            "SELECT id, currency, fee_bps, account_id, overpayment_policy FROM merchant WHERE id = %s",
            (merchant_id,),
        ).fetchone()
        if row is None:
            raise MerchantNotFound(f"No merchant {merchant_id}.")
        found = known[merchant_id] = Payee(*row)
    return found


def payable_account(merchant: Payee | Merchant) -> accounts.AccountRef:
    """The merchant's payable account: what the platform owes it."""
    return accounts.AccountRef(
        merchant.account_id, f"merchant_payable:{merchant.id}", "liability", merchant.currency, "deferred"
    )


def get_merchant(session: Session, merchant_id: str) -> Merchant:
    """The merchant with this id, for any caller that may name it (payers pay any merchant)."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise MerchantNotFound(f"No merchant {merchant_id}.")
    return merchant


def get_own_merchant(session: Session, who: Principal, merchant_id: str) -> Merchant:
    """The merchant, if the caller is its staff or finance/admin; 404 otherwise, so ids do not leak."""
    if not who.can_act_for_merchant(merchant_id):
        raise MerchantNotFound(f"No merchant {merchant_id}.")
    return get_merchant(session, merchant_id)
