"""Merchants, as far as the payment core needs them: who is paid, at what fee, into which account."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from hanoipay.ids import new_id
from payments import ledger
from payments.exceptions import MerchantNotFound, UnknownBank, UnsupportedCurrency
from payments.models import Merchant
from payments.money import CURRENCIES
from payments.providers.vietqr.banks import bank_by_bin

MERCHANT_KINDS = ("parking_operator", "transit_operator", "market_vendor", "school")


def create_merchant(
    session: Session,
    who: Principal,
    *,
    name: str,
    kind: str,
    fee_bps: int,
    currency: str,
    payout_bank_bin: str,
    payout_account: str,
    payout_account_name: str,
    overpayment_policy: str = "refund",
) -> Merchant:
    """Register a merchant and open its payable account; admin only."""
    who.require(Role.ADMIN)
    if currency not in CURRENCIES:
        raise UnsupportedCurrency(f"{currency} is not a supported currency.")
    if bank_by_bin(payout_bank_bin) is None:
        raise UnknownBank(f"{payout_bank_bin} is not the BIN of a bank in the VietQR list.")
    merchant_id = new_id("mer")
    account = ledger.open_account(
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
        kind=kind,
        fee_bps=fee_bps,
        currency=currency,
        payout_bank_bin=payout_bank_bin,
        payout_account=payout_account,
        payout_account_name=payout_account_name,
        overpayment_policy=overpayment_policy,
        account_id=account.id,
    )
    session.add(merchant)
    session.flush()
    return merchant


def payable_account(merchant: Merchant) -> ledger.AccountRef:
    """The merchant's payable account: what the platform owes it."""
    return ledger.AccountRef(
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


def list_merchants(session: Session, who: Principal) -> list[Merchant]:
    """Every merchant for finance and admin; the caller's own merchant for its staff."""
    query = select(Merchant).order_by(Merchant.id)
    if not who.is_staff:
        query = query.where(Merchant.id == who.merchant_id)
    return list(session.scalars(query))
