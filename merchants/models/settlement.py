"""Settlements (a merchant's balance turned into a payout) and cached daily closing balances."""

from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hanoipay.db import Base, CreatedAt

Id = String(40)


class Settlement(CreatedAt, Base):
    """One run of settlement for a merchant and business day: what was due and the payout it became."""

    __tablename__ = "settlement"
    __table_args__ = (UniqueConstraint("merchant_id", "business_day"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"))
    business_day: Mapped[date]
    cutoff_at: Mapped[datetime]
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payout_id: Mapped[str | None] = mapped_column(ForeignKey("payout.id"))
    status: Mapped[str] = mapped_column(String(16))


class BalanceCheckpoint(Base):
    """An account's closing balance at the end of a past business day (lines are append-only)."""

    __tablename__ = "balance_checkpoint"

    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_account.id"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    closing: Mapped[int] = mapped_column(BigInteger)


class StatementDay(Base):
    """What moved an account on one past business day, by entry kind (net, and the fee taken with it).

    A row with an empty kind marks the day as summed, so a day with no movement is not summed again.
    """

    __tablename__ = "statement_day"

    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_account.id"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    net: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger)
