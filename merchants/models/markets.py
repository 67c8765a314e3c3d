"""Markets, their stalls, the transfers made to a stall's own account, and stall sales."""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hanoipay.db import Base, CreatedAt

Id = String(40)


class TransferStatus(StrEnum):
    AWAITING = "awaiting_confirmation"
    CONFIRMED = "confirmed"
    RETURNED = "returned"


class SaleKind(StrEnum):
    DYNAMIC = "dynamic"
    STATIC = "static"


class Market(CreatedAt, Base):
    """A market (Chợ Sấu, Chợ Đồng Xuân) whose stalls take VietQR payments."""

    __tablename__ = "market"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(Text)


class Stall(CreatedAt, Base):
    """A stall: its code in the market, its vendor (a merchant), and the account its static QR collects on."""

    __tablename__ = "stall"
    __table_args__ = (UniqueConstraint("market_id", "code"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    market_id: Mapped[str] = mapped_column(ForeignKey("market.id"))
    code: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"), index=True)
    collection_bank_bin: Mapped[str] = mapped_column(String(8))
    collection_account: Mapped[str] = mapped_column(String(32), unique=True)
    # What a buyer's bank app shows for the collection account: ASCII upper case, as banks print it.
    account_name: Mapped[str] = mapped_column(String(50))


class StallTransfer(CreatedAt, Base):
    """A transfer to a stall's static code: no reference, so it waits for the vendor to confirm it."""

    __tablename__ = "stall_transfer"
    __table_args__ = (Index("ix_stall_transfer_merchant_id_status", "merchant_id", "status"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    stall_id: Mapped[str] = mapped_column(ForeignKey("stall.id"), index=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"))
    bank_transaction_id: Mapped[str] = mapped_column(ForeignKey("bank_transaction.id"), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(24))
    intent_id: Mapped[str | None] = mapped_column(ForeignKey("payment_intent.id"))
    decided_by: Mapped[str | None] = mapped_column(Id)
    decided_at: Mapped[datetime | None]


class StallSale(Base):
    """A paid sale at a stall (a dynamic code, or a confirmed static transfer), for the daily summary."""

    __tablename__ = "stall_sale"
    __table_args__ = (Index("ix_stall_sale_stall_id_business_day", "stall_id", "business_day"),)

    intent_id: Mapped[str] = mapped_column(ForeignKey("payment_intent.id"), primary_key=True)
    stall_id: Mapped[str] = mapped_column(ForeignKey("stall.id"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    fee_amount: Mapped[int] = mapped_column(BigInteger)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_at: Mapped[datetime]
    business_day: Mapped[date]
