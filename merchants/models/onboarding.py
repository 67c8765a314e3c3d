"""Merchants as the domain knows them: kind, bank account, fee plan, verification, staff, invitations."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from hanoipay.db import Base, CreatedAt

Id = String(40)


class MerchantKind(StrEnum):
    PARKING_OPERATOR = "parking_operator"
    TRANSIT_OPERATOR = "transit_operator"
    MARKET_VENDOR = "market_vendor"
    SCHOOL = "school"


class Verification(StrEnum):
    UNVERIFIED = "unverified"
    VERIFIED = "verified"
    SUSPENDED = "suspended"


class StaffRole(StrEnum):
    OWNER = "owner"
    CASHIER = "cashier"
    ACCOUNTANT = "accountant"


class MerchantProfile(CreatedAt, Base):
    """Who a payee is: its kind, where its money is paid out, its fee plan and whether it is verified."""

    __tablename__ = "merchant_profile"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    payout_bank_bin: Mapped[str] = mapped_column(String(8))
    payout_account: Mapped[str] = mapped_column(String(32))
    payout_account_name: Mapped[str] = mapped_column(Text)
    fee_plan: Mapped[str] = mapped_column(String(32))
    verification: Mapped[str] = mapped_column(String(16))
    verified_at: Mapped[datetime | None]
    verified_by: Mapped[str | None] = mapped_column(Id)
    settlement_delay_days: Mapped[int] = mapped_column(Integer, server_default=text("1"), default=1)
    updated_at: Mapped[datetime]


class MerchantMember(CreatedAt, Base):
    """A person's role at a merchant; removing it ends their access at once."""

    __tablename__ = "merchant_member"
    __table_args__ = (
        Index("ix_merchant_member_merchant_id", "merchant_id"),
        Index(
            "uq_merchant_member_active_user",
            "user_id",
            unique=True,
            postgresql_where=text("removed_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("app_user.id"))
    role: Mapped[str] = mapped_column(String(16))
    added_by: Mapped[str] = mapped_column(Id)
    removed_at: Mapped[datetime | None]
    removed_by: Mapped[str | None] = mapped_column(Id)


class StaffInvitation(CreatedAt, Base):
    """An invitation to join a merchant in a role; its token is shown once and stored hashed."""

    __tablename__ = "staff_invitation"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"), index=True)
    email: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(Id)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    accepted_by: Mapped[str | None] = mapped_column(Id)
    revoked_at: Mapped[datetime | None]
