"""Markets and stalls: static codes on the stall's own account, dynamic codes per sale, transfers held
for the vendor to confirm, and each stall's daily summary."""

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from hanoipay.ids import new_id
from hanoipay.localtime import HANOI
from hanoipay.settings import get_settings
from merchants.exceptions import (
    MarketNotFound,
    StallCodeTaken,
    StallNotFound,
    StallTransferDecided,
    StallTransferNotFound,
    WrongMerchantKind,
)
from merchants.models import (
    Market,
    MerchantKind,
    MerchantProfile,
    SaleKind,
    StaffRole,
    Stall,
    StallSale,
    StallTransfer,
    TransferStatus,
)
from merchants.service.access import require_staff
from merchants.service.text import bank_holder_name
from merchants.settings import get_merchants_settings
from payments import intents
from payments.models import BankTransaction, PaymentIntent, Refund
from payments.providers.vietqr import webhook as bank
from payments.providers.vietqr.codec import build_payload

SELLERS = frozenset({StaffRole.OWNER, StaffRole.CASHIER})


def _now() -> datetime:
    return datetime.now(UTC)


def business_day(moment: datetime) -> date:
    """The day in Hanoi a moment falls on."""
    return moment.astimezone(HANOI).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants a Hanoi business day starts and ends at."""
    start = datetime.combine(day, time(), HANOI)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def create_market(session: Session, who: Principal, *, name: str, address: str) -> Market:
    """Open a market (admin, finance)."""
    who.require(Role.ADMIN, Role.FINANCE)
    market = Market(id=new_id("mkt"), name=name, address=address)
    session.add(market)
    session.flush()
    return market


def list_markets(session: Session) -> list[Market]:
    """Every market, by name."""
    return list(session.scalars(select(Market).order_by(Market.name).limit(1000)))


def _new_collection_account() -> str:
    return get_merchants_settings().stall_account_prefix + f"{secrets.randbelow(10**8):08d}"


def create_stall(
    session: Session, who: Principal, *, market_id: str, code: str, name: str, merchant_id: str
) -> Stall:
    """Open a stall in a market for a vendor (admin, finance), with an account of its own to collect on."""
    who.require(Role.ADMIN, Role.FINANCE)
    if session.get(Market, market_id) is None:
        raise MarketNotFound(f"No market {market_id}.")
    profile = session.get(MerchantProfile, merchant_id)
    if profile is None or profile.kind != MerchantKind.MARKET_VENDOR:
        raise WrongMerchantKind(f"{merchant_id} is not a market vendor.")
    code = code.upper()
    if session.scalar(select(Stall.id).where(Stall.market_id == market_id, Stall.code == code)):
        raise StallCodeTaken(f"Stall code {code} is taken in this market.")
    for _ in range(5):
        stall = Stall(
            id=new_id("stl"),
            market_id=market_id,
            code=code,
            name=name,
            merchant_id=merchant_id,
            collection_bank_bin=get_settings().vietqr_bank_bin,
            collection_account=_new_collection_account(),
            account_name=bank_holder_name(profile.payout_account_name),
        )
        try:
            with session.begin_nested():
                session.add(stall)
                session.flush()
                bank.open_collection_account(
                    session,
                    account=stall.collection_account,
                    bank_bin=stall.collection_bank_bin,
                    label=f"stall {stall.code} of {stall.market_id}",
                    merchant_id=merchant_id,
                )
            return stall
        except IntegrityError as error:
            if "uq_stall_market_id_code" in str(error.orig):
                raise StallCodeTaken(f"Stall code {code} is taken in this market.") from None
    raise RuntimeError("could not allocate a free collection account")


def get_stall(
    session: Session, who: Principal, stall_id: str, roles: frozenset[str] = frozenset(StaffRole)
) -> Stall:
    """The stall, for its vendor's staff in `roles` and for finance; 404 for anyone else."""
    stall = session.get(Stall, stall_id)
    if stall is None:
        raise StallNotFound(f"No stall {stall_id}.")
    require_staff(session, who, stall.merchant_id, roles, not_found=StallNotFound(f"No stall {stall_id}."))
    return stall


def list_stalls(
    session: Session, who: Principal, *, merchant_id: str | None, market_id: str | None
) -> list[Stall]:
    """Stalls of a vendor (its staff) or of a market or all (finance)."""
    query = select(Stall).order_by(Stall.market_id, Stall.code).limit(1000)
    if not who.is_staff:
        target = merchant_id or who.merchant_id
        if target is None:
            return []
        require_staff(session, who, target)
        merchant_id = target
    if merchant_id:
        query = query.where(Stall.merchant_id == merchant_id)
    if market_id:
        query = query.where(Stall.market_id == market_id)
    return list(session.scalars(query))


def static_payload(stall: Stall) -> str:
    """The stall's static VietQR code: its own account, no amount, no reference (the buyer types the sum)."""
    return build_payload(bank_bin=stall.collection_bank_bin, account=stall.collection_account)


def start_sale(
    session: Session, who: Principal, stall_id: str, *, amount: int, description: str | None
) -> PaymentIntent:
    """A dynamic code for one sale from the vendor's phone: a VietQR intent for the amount, with reference."""
    stall = get_stall(session, who, stall_id, SELLERS)
    return intents.create_intent(
        session,
        who,
        amount=amount,
        currency="VND",
        purpose="market_sale",
        merchant_id=stall.merchant_id,
        purpose_ref=stall.id,
        provider="vietqr",
        confirm=True,
        description=description,
        metadata={"sale": SaleKind.DYNAMIC},
    )


# The bank's side: transfers to a stall's own account ---------------------------------------------------


def claim_transfer(session: Session, txn: BankTransaction) -> bool:
    """Attribute a transfer to a stall by its account and keep it for the vendor to confirm."""
    stall = session.scalar(select(Stall).where(Stall.collection_account == txn.account))
    if stall is None:
        return False
    session.execute(
        pg_insert(StallTransfer)
        .values(
            id=new_id("stt"),
            stall_id=stall.id,
            merchant_id=stall.merchant_id,
            bank_transaction_id=txn.id,
            amount=txn.amount,
            currency=txn.currency,
            description=txn.description,
            received_at=txn.occurred_at,
            status=TransferStatus.AWAITING,
        )
        .on_conflict_do_nothing(index_elements=["bank_transaction_id"])
    )
    bank.hold_for_merchant(session, txn, stall.merchant_id, f"to stall {stall.id}, for the vendor to confirm")
    return True


COLLECTOR = bank.Collector(name="market_stalls", claim=claim_transfer)


def _transfer_for_update(session: Session, who: Principal, transfer_id: str) -> StallTransfer:
    transfer = session.get(StallTransfer, transfer_id, with_for_update=True, populate_existing=True)
    if transfer is None:
        raise StallTransferNotFound(f"No transfer {transfer_id}.")
    missing = StallTransferNotFound(f"No transfer {transfer_id}.")
    require_staff(session, who, transfer.merchant_id, SELLERS, not_found=missing)
    if transfer.status != TransferStatus.AWAITING:
        raise StallTransferDecided(f"Transfer {transfer_id} was already {transfer.status}.")
    return transfer


def confirm_transfer(session: Session, who: Principal, transfer_id: str) -> StallTransfer:
    """The vendor confirms a transfer to the stall's code as a sale: it becomes a paid market_sale intent."""
    transfer = _transfer_for_update(session, who, transfer_id)
    txn = session.get(BankTransaction, transfer.bank_transaction_id, with_for_update=True)
    assert txn is not None
    intent = intents.create_intent(
        session,
        who,
        amount=transfer.amount,
        currency=transfer.currency,
        purpose="market_sale",
        merchant_id=transfer.merchant_id,
        purpose_ref=transfer.stall_id,
        provider="vietqr",
        confirm=True,
        description=f"transfer to the stall's code: {transfer.description}"[:500],
        metadata={"sale": SaleKind.STATIC, "bank_transaction": txn.id},
    )
    bank.apply_to_intent(session, txn, intent)
    transfer.status, transfer.intent_id = TransferStatus.CONFIRMED, intent.id
    transfer.decided_by, transfer.decided_at = who.id, _now()
    session.flush()
    return transfer


def return_transfer(session: Session, who: Principal, transfer_id: str, *, reason: str) -> StallTransfer:
    """The vendor does not recognise a transfer: it goes back to the account it came from, as a payout."""
    transfer = _transfer_for_update(session, who, transfer_id)
    txn = session.get(BankTransaction, transfer.bank_transaction_id, with_for_update=True)
    assert txn is not None
    bank.return_held_transfer(session, txn, reason)
    transfer.status = TransferStatus.RETURNED
    transfer.decided_by, transfer.decided_at = who.id, _now()
    session.flush()
    return transfer


def list_transfers(
    session: Session, who: Principal, merchant_id: str, *, status: str | None
) -> list[StallTransfer]:
    """Transfers to the merchant's stall codes, newest first (awaiting confirmation, or all)."""
    require_staff(session, who, merchant_id)
    query = select(StallTransfer).where(StallTransfer.merchant_id == merchant_id)
    if status:
        query = query.where(StallTransfer.status == status)
    return list(session.scalars(query.order_by(StallTransfer.id.desc()).limit(500)))


# The purpose: market sales -------------------------------------------------------------------------------


def validate_sale(session: Session, who: Principal, intent: PaymentIntent) -> None:
    """A market sale names, in purpose_ref, a stall of the merchant it pays."""
    stall = session.get(Stall, intent.purpose_ref) if intent.purpose_ref else None
    if stall is None or stall.merchant_id != intent.merchant_id:
        raise StallNotFound(f"No stall {intent.purpose_ref} of this merchant.")


def record_sale(session: Session, intent: PaymentIntent) -> None:
    """A sale was paid: keep it for the stall's daily summary (in the payment's transaction)."""
    assert intent.purpose_ref is not None
    assert intent.merchant_id is not None
    paid_at = intent.succeeded_at or _now()
    # A wallet payment succeeds before its intent row is written, and the sale row refers to it.
    session.flush()
    session.execute(
        pg_insert(StallSale)
        .values(
            intent_id=intent.id,
            stall_id=intent.purpose_ref,
            merchant_id=intent.merchant_id,
            kind=str(intent.metadata_.get("sale", SaleKind.DYNAMIC)),
            amount=intent.amount_received,
            fee_amount=intent.fee_amount,
            refunded_amount=0,
            paid_at=paid_at,
            business_day=business_day(paid_at),
        )
        .on_conflict_do_nothing(index_elements=["intent_id"])
    )


def record_refund(session: Session, intent: PaymentIntent, refund: Refund) -> None:
    """A sale was refunded in part or whole: the summary shows it."""
    sale = session.get(StallSale, intent.id, with_for_update=True)
    if sale is not None:
        sale.refunded_amount += refund.amount


@dataclass(frozen=True)
class DailySummary:
    """What a stall took on one business day."""

    stall_id: str
    day: date
    sales: int
    gross_amount: int
    fee_amount: int
    refunded_amount: int
    net_amount: int
    dynamic_sales: int
    static_sales: int
    awaiting_count: int
    awaiting_amount: int


def daily_summary(session: Session, who: Principal, stall_id: str, day: date) -> DailySummary:
    """The stall's sales on a Hanoi business day, with transfers still waiting for the vendor."""
    stall = get_stall(session, who, stall_id)
    row = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(StallSale.amount), 0),
            func.coalesce(func.sum(StallSale.fee_amount), 0),
            func.coalesce(func.sum(StallSale.refunded_amount), 0),
            func.count().filter(StallSale.kind == SaleKind.DYNAMIC),
        ).where(StallSale.stall_id == stall.id, StallSale.business_day == day)
    ).one()
    start, end = day_bounds(day)
    waiting = session.execute(
        select(func.count(), func.coalesce(func.sum(StallTransfer.amount), 0)).where(
            StallTransfer.stall_id == stall.id,
            StallTransfer.status == TransferStatus.AWAITING,
            StallTransfer.received_at >= start,
            StallTransfer.received_at < end,
        )
    ).one()
    count, gross, fees, refunded, dynamic = (int(v) for v in row)
    return DailySummary(
        stall_id=stall.id,
        day=day,
        sales=count,
        gross_amount=gross,
        fee_amount=fees,
        refunded_amount=refunded,
        net_amount=gross - fees - refunded,
        dynamic_sales=dynamic,
        static_sales=count - dynamic,
        awaiting_count=int(waiting[0]),
        awaiting_amount=int(waiting[1]),
    )
