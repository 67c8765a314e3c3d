"""Transit network and fares, rider cards and devices, validators, taps, trips and the day's charges."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hanoipay.db import Base, CreatedAt

Id = String(40)
FeedRef = String(64)


class CardStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class PassStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    CANCELED = "canceled"


class ChargeKind(StrEnum):
    CHARGE = "charge"
    ADJUSTMENT = "adjustment"
    REFUND = "refund"
    DEBT_PAYMENT = "debt_payment"


class TransitFeed(CreatedAt, Base):
    """An imported GTFS feed with its GTFS-Fares v2 tables; the active one prices every trip."""

    __tablename__ = "transit_feed"
    __table_args__ = (
        Index("uq_transit_feed_active", "active", unique=True, postgresql_where=text("active")),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"))
    currency: Mapped[str] = mapped_column(String(3))
    active: Mapped[bool]
    # Fare media, leg and transfer rules, timeframes, networks, areas and the platform's caps, as read.
    fares: Mapped[dict[str, Any]] = mapped_column(JSONB)


class TransitAgency(Base):
    __tablename__ = "transit_agency"

    feed_id: Mapped[str] = mapped_column(ForeignKey("transit_feed.id", ondelete="CASCADE"), primary_key=True)
    agency_id: Mapped[str] = mapped_column(FeedRef, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64))


class TransitRoute(Base):
    __tablename__ = "transit_route"

    feed_id: Mapped[str] = mapped_column(ForeignKey("transit_feed.id", ondelete="CASCADE"), primary_key=True)
    route_id: Mapped[str] = mapped_column(FeedRef, primary_key=True)
    agency_id: Mapped[str] = mapped_column(FeedRef)
    short_name: Mapped[str] = mapped_column(Text)
    long_name: Mapped[str] = mapped_column(Text)
    route_type: Mapped[int] = mapped_column(SmallInteger)
    network_id: Mapped[str | None] = mapped_column(FeedRef)


class TransitStop(Base):
    __tablename__ = "transit_stop"

    feed_id: Mapped[str] = mapped_column(ForeignKey("transit_feed.id", ondelete="CASCADE"), primary_key=True)
    stop_id: Mapped[str] = mapped_column(FeedRef, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    lat: Mapped[float | None]
    lon: Mapped[float | None]


class TransitRiderCategory(Base):
    """A GTFS-Fares v2 rider category; `code` is the byte that stands for it in a credential."""

    __tablename__ = "transit_rider_category"

    feed_id: Mapped[str] = mapped_column(ForeignKey("transit_feed.id", ondelete="CASCADE"), primary_key=True)
    category_id: Mapped[str] = mapped_column(FeedRef, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    code: Mapped[int] = mapped_column(SmallInteger)
    is_default: Mapped[bool]
    eligibility_url: Mapped[str | None] = mapped_column(Text)


class TransitFareProduct(Base):
    """One price of a fare product for one rider category ('' when the row names none)."""

    __tablename__ = "transit_fare_product"

    feed_id: Mapped[str] = mapped_column(ForeignKey("transit_feed.id", ondelete="CASCADE"), primary_key=True)
    product_id: Mapped[str] = mapped_column(FeedRef, primary_key=True)
    category_id: Mapped[str] = mapped_column(FeedRef, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    fare_media_id: Mapped[str | None] = mapped_column(FeedRef)


class TransitCard(CreatedAt, Base):
    """A rider's virtual card, paid from the rider's wallet; revoked cards are on the deny list."""

    __tablename__ = "transit_card"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("app_user.id"), index=True)
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallet.id"))
    category_id: Mapped[str] = mapped_column(FeedRef)
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    revoked_at: Mapped[datetime | None]


class TransitDevice(CreatedAt, Base):
    """A phone bound to a card by its Ed25519 public key, with the credential the issuer signed for it."""

    __tablename__ = "transit_device"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    card_id: Mapped[str] = mapped_column(ForeignKey("transit_card.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    public_key: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    status: Mapped[str] = mapped_column(String(16))
    credential: Mapped[bytes] = mapped_column(LargeBinary)
    credential_kid: Mapped[str] = mapped_column(String(8))
    credential_valid_until: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class TransitPass(CreatedAt, Base):
    """A pass (monthly, daily) bought for a card through the payment core, valid from one day to another."""

    __tablename__ = "transit_pass"
    __table_args__ = (Index("ix_transit_pass_card_days", "card_id", "starts_on", "ends_on"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    card_id: Mapped[str] = mapped_column(ForeignKey("transit_card.id"))
    product_id: Mapped[str] = mapped_column(FeedRef)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    intent_id: Mapped[str] = mapped_column(ForeignKey("payment_intent.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16))


class TransitValidator(CreatedAt, Base):
    """A validator device on a vehicle or a gate; it signs in with its id and a secret stored hashed."""

    __tablename__ = "transit_validator"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    vehicle_id: Mapped[str] = mapped_column(FeedRef)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(Id)
    revoked_at: Mapped[datetime | None]


class TransitTap(Base):
    """One validator decision, uploaded later: its id is the validator's, so an upload applies once."""

    __tablename__ = "transit_tap"
    __table_args__ = (Index("ix_transit_tap_card_day", "card_id", "service_day"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    validator_id: Mapped[str] = mapped_column(Id)
    vehicle_id: Mapped[str] = mapped_column(FeedRef)
    route_id: Mapped[str] = mapped_column(FeedRef)
    stop_id: Mapped[str | None] = mapped_column(FeedRef)
    direction: Mapped[str] = mapped_column(String(3))
    tapped_at: Mapped[datetime]
    service_day: Mapped[date] = mapped_column(Date)
    card_id: Mapped[str | None] = mapped_column(Id)
    slot: Mapped[int | None] = mapped_column(BigInteger)
    counter: Mapped[int | None] = mapped_column(BigInteger)
    result: Mapped[str] = mapped_column(String(32))
    flag: Mapped[str | None] = mapped_column(String(32))
    uploaded_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class TransitTrip(Base):
    """A priced leg: which taps, which product, what it cost and why (pass, transfer, cap)."""

    __tablename__ = "transit_trip"
    __table_args__ = (Index("ix_transit_trip_card_day", "card_id", "service_day"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    card_id: Mapped[str] = mapped_column(Id)
    service_day: Mapped[date] = mapped_column(Date)
    tap_id: Mapped[str] = mapped_column(String(64))
    exit_tap_id: Mapped[str | None] = mapped_column(String(64))
    route_id: Mapped[str] = mapped_column(FeedRef)
    from_stop_id: Mapped[str | None] = mapped_column(FeedRef)
    to_stop_id: Mapped[str | None] = mapped_column(FeedRef)
    started_at: Mapped[datetime]
    product_id: Mapped[str | None] = mapped_column(FeedRef)
    base_amount: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)


class FareDay(Base):
    """A card's service day: the total after capping, what was charged, and the caps' state at its end."""

    __tablename__ = "transit_fare_day"
    __table_args__ = (
        Index(
            "ix_transit_fare_day_due",
            "card_id",
            "service_day",
            postgresql_where=text("total_amount <> charged_amount"),
        ),
        CheckConstraint("total_amount >= 0", name="total_non_negative"),
    )

    card_id: Mapped[str] = mapped_column(ForeignKey("transit_card.id"), primary_key=True)
    service_day: Mapped[date] = mapped_column(Date, primary_key=True)
    trips: Mapped[int] = mapped_column(Integer)
    total_amount: Mapped[int] = mapped_column(BigInteger)
    charged_amount: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    currency: Mapped[str] = mapped_column(String(3))
    # Spent towards each cap by the end of the day: {"month": {product: amount}, "day": {product: amount}}.
    caps: Mapped[dict[str, dict[str, int]]] = mapped_column(JSONB)
    closed: Mapped[bool] = mapped_column(server_default=text("false"))
    priced_at: Mapped[datetime]
    charged_at: Mapped[datetime | None]


class FareCharge(CreatedAt, Base):
    """Money moved for a card's day: the first charge, adjustments, refunds and debt payments."""

    __tablename__ = "transit_fare_charge"
    __table_args__ = (Index("ix_transit_fare_charge_card_day", "card_id", "service_day"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    card_id: Mapped[str] = mapped_column(Id)
    service_day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    intent_id: Mapped[str | None] = mapped_column(String(40))
    refund_id: Mapped[str | None] = mapped_column(String(40))
