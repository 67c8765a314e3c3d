"""Settlement: a merchant's matured balance becomes one payout a day, through the core's payout path.

T+1 by default: the run on business day D pays what reached the merchant's payable before D began
(`settlement_delay_days` = n pays what arrived before day D − n + 1; 0 pays everything up to the run).
Money that arrived later stays for a later run. The run locks the merchant's profile row, so two runs at
once take turns and the second sees the first's payout; a (merchant, day) row makes each day's run once.
"""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from hanoipay.ids import new_id
from merchants.exceptions import MerchantNotFound, MerchantNotVerified
from merchants.models import MerchantProfile, Settlement, StaffRole, Verification
from merchants.service.access import require_staff
from merchants.service.markets import business_day, day_bounds
from payments import balances, payouts
from payments.merchants import get_merchant, payable_account
from payments.models import JournalEntry, JournalLine, Payout

# Entries that move a payable's money out or back in; everything else is income that must mature first.
PAYOUT_KINDS = ("payout", "payout_returned")
READERS = frozenset({StaffRole.OWNER, StaffRole.ACCOUNTANT})


def cutoff_for(day_start: datetime, moment: datetime, delay_days: int) -> datetime:
    """The instant before which money is paid out by a run at `moment` on the day starting `day_start`."""
    if delay_days == 0:
        return moment
    return day_start - timedelta(days=delay_days - 1)


def settleable(session: Session, account_id: str, cutoff: datetime) -> int:
    """The payable balance now, less income posted since `cutoff` (refunds since then are not added back)."""
    balance = balances.balance(session, account_id).posted
    immature = session.scalar(
        select(func.coalesce(func.sum(-JournalLine.amount), 0))
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .where(
            JournalLine.account_id == account_id,
            JournalLine.posted_at >= cutoff,
            JournalLine.amount < 0,
            JournalEntry.kind.not_in(PAYOUT_KINDS),
        )
    )
    return max(0, balance - int(immature or 0))


def settle(session: Session, merchant_id: str, *, now: datetime | None = None) -> Settlement:
    """Pay out what has matured of the merchant's balance, once per business day."""
    moment = now or datetime.now(UTC)
    profile = session.get(MerchantProfile, merchant_id, with_for_update=True, populate_existing=True)
    if profile is None:
        raise MerchantNotFound(f"No merchant {merchant_id}.")
    if profile.verification != Verification.VERIFIED:
        raise MerchantNotVerified(f"Merchant {merchant_id} is {profile.verification}; it is not paid out.")
    day = business_day(moment)
    done = session.scalar(
        select(Settlement).where(Settlement.merchant_id == merchant_id, Settlement.business_day == day)
    )
    if done is not None:
        return done
    payee = get_merchant(session, merchant_id)
    cutoff = cutoff_for(day_bounds(day)[0], moment, profile.settlement_delay_days)
    amount = settleable(session, payee.account_id, cutoff)
    settlement_id = new_id("setl")
    payout: Payout | None = None
    if amount > 0:
        payout = payouts.queue_payout(
            session,
            source=payable_account(payee),
            bank_bin=profile.payout_bank_bin,
            account=profile.payout_account,
            account_name=profile.payout_account_name,
            amount=amount,
            currency=payee.currency,
            reason=f"settlement {day.isoformat()} {merchant_id}",
            merchant_id=merchant_id,
        )
    session.execute(
        pg_insert(Settlement).values(
            id=settlement_id,
            merchant_id=merchant_id,
            business_day=day,
            cutoff_at=cutoff,
            amount=amount,
            currency=payee.currency,
            payout_id=payout.id if payout else None,
            status="paid_out" if payout else "nothing_due",
        )
    )
    settlement = session.get(Settlement, settlement_id)
    assert settlement is not None
    return settlement


def run_settlement(
    session: Session, who: Principal, merchant_id: str, *, now: datetime | None = None
) -> Settlement:
    """Finance runs today's settlement of a merchant now (the daily job does the same)."""
    who.require(Role.FINANCE, Role.ADMIN)
    return settle(session, merchant_id, now=now)


def merchants_to_settle(session: Session) -> list[str]:
    """Every verified merchant, for the daily run."""
    return list(
        session.scalars(
            select(MerchantProfile.merchant_id).where(MerchantProfile.verification == Verification.VERIFIED)
        )
    )


def list_settlements(session: Session, who: Principal, merchant_id: str) -> list[Settlement]:
    """The merchant's settlement runs, newest first (owner, accountant, finance)."""
    require_staff(session, who, merchant_id, READERS)
    return list(
        session.scalars(
            select(Settlement)
            .where(Settlement.merchant_id == merchant_id)
            .order_by(Settlement.business_day.desc())
            .limit(366)
        )
    )


def list_merchant_payouts(session: Session, who: Principal, merchant_id: str) -> list[Payout]:
    """The merchant's payouts, newest first (owner, accountant, finance)."""
    require_staff(session, who, merchant_id, READERS)
    return list(
        session.scalars(
            select(Payout).where(Payout.merchant_id == merchant_id).order_by(Payout.id.desc()).limit(500)
        )
    )
