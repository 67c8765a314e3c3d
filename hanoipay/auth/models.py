"""Users and API keys."""

from datetime import datetime

from sqlalchemy import ARRAY, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hanoipay.db import Base, CreatedAt


class User(CreatedAt, Base):
    """A person who signs in: a driver, rider, parent, vendor staff, finance staff or an admin."""

    __tablename__ = "app_user"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(Text, unique=True)
    full_name: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    roles: Mapped[list[str]] = mapped_column(ARRAY(Text))
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchant.id"), index=True)
    disabled_at: Mapped[datetime | None]


class ApiKey(CreatedAt, Base):
    """A merchant system's key: shown once, stored as a SHA-256 of its secret, revocable."""

    __tablename__ = "api_key"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    secret_hash: Mapped[str] = mapped_column(String(64))
    last4: Mapped[str] = mapped_column(String(4))
    created_by: Mapped[str] = mapped_column(String(40))
    revoked_at: Mapped[datetime | None]
