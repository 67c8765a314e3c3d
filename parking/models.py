"""Zones, spots, tariffs and their versions, quotes, parking sessions, violations.

A session's payments are the core's intents for purpose `parking_session` whose `purpose_ref` is the
session's id (their metadata says what each paid for); parking keeps no copy of them.
"""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hanoipay.db import Base, CreatedAt

Id = String(40)
OPEN_STATUSES = ("pending_payment", "active", "expired")
_OPEN = "status IN ('pending_payment', 'active', 'expired')"


class VehicleType(StrEnum):
    CAR = "car"
    MOTORBIKE = "motorbike"


class SpotState(StrEnum):
    FREE = "free"
    OCCUPIED = "occupied"
    OUT_OF_SERVICE = "out_of_service"


class SessionStatus(StrEnum):
    """pending_payment (waiting for a bank transfer) → active → expired (overstaying) → ended; or canceled."""

    PENDING_PAYMENT = "pending_payment"
    ACTIVE = "active"
    EXPIRED = "expired"
    ENDED = "ended"
    CANCELED = "canceled"


class UnusedTimeRule(StrEnum):
    """What ending early does with prepaid time: charge only the blocks used, or keep the prepayment."""

    RELEASE = "release"
    KEEP = "keep"


class PaymentKind(StrEnum):
    """What a session's payment intent paid for (kept in the intent's metadata as `kind`)."""

    PREPAID = "prepaid"
    EXTENSION = "extension"
    OVERSTAY = "overstay"


class Zone(CreatedAt, Base):
    """A street segment or a lot an operator runs: where it is, its shape, and its rules."""

    __tablename__ = "parking_zone"
    __table_args__ = (
        Index("ix_parking_zone_lat_lon", "lat", "lon"),
        CheckConstraint("lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180", name="position"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    street: Mapped[str] = mapped_column(Text)
    street_key: Mapped[str] = mapped_column(Text)
    district: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(Text)
    lat: Mapped[float] = mapped_column(Double)
    lon: Mapped[float] = mapped_column(Double)
    geometry: Mapped[dict[str, Any]] = mapped_column(JSONB)
    max_duration_minutes: Mapped[int] = mapped_column(Integer)
    grace_minutes: Mapped[int] = mapped_column(Integer)
    reminder_minutes: Mapped[int] = mapped_column(Integer)
    unused_time_rule: Mapped[str] = mapped_column(String(16))
    sample: Mapped[bool] = mapped_column(Boolean)


class Spot(Base):
    """One space in a zone, for one vehicle type, free, occupied or out of service."""

    __tablename__ = "parking_spot"
    __table_args__ = (
        UniqueConstraint("zone_id", "code"),
        Index("ix_parking_spot_free", "zone_id", "vehicle_type", postgresql_where=text("state = 'free'")),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    zone_id: Mapped[str] = mapped_column(ForeignKey("parking_zone.id"))
    code: Mapped[str] = mapped_column(String(32))
    vehicle_type: Mapped[str] = mapped_column(String(16))
    lat: Mapped[float] = mapped_column(Double)
    lon: Mapped[float] = mapped_column(Double)
    state: Mapped[str] = mapped_column(String(16))
    state_source: Mapped[str] = mapped_column(String(16))
    state_changed_at: Mapped[datetime]


class Tariff(CreatedAt, Base):
    """A named price list of an operator for one vehicle type; its versions carry the prices."""

    __tablename__ = "parking_tariff"
    __table_args__ = (UniqueConstraint("merchant_id", "code"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    vehicle_type: Mapped[str] = mapped_column(String(16))


class TariffVersion(CreatedAt, Base):
    """The prices a decision set, in force from one date to another (inclusive; open-ended if no end)."""

    __tablename__ = "parking_tariff_version"
    __table_args__ = (
        UniqueConstraint("tariff_id", "effective_from"),
        CheckConstraint("effective_to IS NULL OR effective_to >= effective_from", name="dates"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    tariff_id: Mapped[str] = mapped_column(ForeignKey("parking_tariff.id"))
    decision_ref: Mapped[str] = mapped_column(Text)
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    rules: Mapped[dict[str, Any]] = mapped_column(JSONB)
    sample: Mapped[bool] = mapped_column(Boolean)


class ZoneTariff(Base):
    """Which tariff a zone charges each vehicle type."""

    __tablename__ = "parking_zone_tariff"

    zone_id: Mapped[str] = mapped_column(ForeignKey("parking_zone.id"), primary_key=True)
    vehicle_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    tariff_id: Mapped[str] = mapped_column(ForeignKey("parking_tariff.id"))


class Quote(CreatedAt, Base):
    """A binding price for a stay, which a session start must present before it expires."""

    __tablename__ = "parking_quote"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    driver_id: Mapped[str] = mapped_column(String(40))
    # The terms it binds, as they stood when it was given: whose zone, how long, when to remind.
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"))
    zone_id: Mapped[str] = mapped_column(ForeignKey("parking_zone.id"))
    zone_code: Mapped[str] = mapped_column(String(32))
    spot_id: Mapped[str | None] = mapped_column(ForeignKey("parking_spot.id"))
    vehicle_type: Mapped[str] = mapped_column(String(16))
    tariff_version_id: Mapped[str] = mapped_column(ForeignKey("parking_tariff_version.id"))
    starts_at: Mapped[datetime]
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    minutes: Mapped[int] = mapped_column(Integer)
    reminder_minutes: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ParkingSession(CreatedAt, Base):
    """A vehicle parked in a zone (on a spot), prepaid for a duration or open-ended, paid through the core."""

    __tablename__ = "parking_session"
    __table_args__ = (
        # One plate never holds two open sessions, and one spot never carries two.
        Index("uq_parking_session_open_plate", "plate", unique=True, postgresql_where=text(_OPEN)),
        Index("uq_parking_session_open_spot", "spot_id", unique=True, postgresql_where=text(_OPEN)),
        Index("ix_parking_session_driver_id_id", "driver_id", "id"),
        Index("ix_parking_session_zone_id_started_at", "zone_id", "started_at"),
        Index("ix_parking_session_plate_id", "plate", "id"),
        Index("ix_parking_session_covered_until", "covered_until", postgresql_where=text(_OPEN)),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    driver_id: Mapped[str] = mapped_column(String(40))
    # The operator, zone and tariff version are the quote's, copied by the statement that writes the
    # session and never changed: the quote's foreign keys hold them, so they are not checked again here.
    merchant_id: Mapped[str] = mapped_column(Id)
    zone_id: Mapped[str] = mapped_column(Id)
    zone_code: Mapped[str] = mapped_column(String(32))
    spot_id: Mapped[str] = mapped_column(ForeignKey("parking_spot.id"))
    quote_id: Mapped[str] = mapped_column(ForeignKey("parking_quote.id"), unique=True)
    tariff_version_id: Mapped[str] = mapped_column(Id)
    plate: Mapped[str] = mapped_column(String(16))
    vehicle_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(16))
    wallet_id: Mapped[str | None] = mapped_column(String(40))
    payment_method: Mapped[str | None] = mapped_column(String(100))
    open_ended: Mapped[bool] = mapped_column(Boolean)
    # Priced as if it began here (the quote's time), so the quote binds.
    priced_from: Mapped[datetime]
    prepaid_minutes: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime | None]
    covered_until: Mapped[datetime | None]
    remind_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    prepaid_amount: Mapped[int] = mapped_column(BigInteger)
    charged_amount: Mapped[int | None] = mapped_column(BigInteger)
    overstay_minutes: Mapped[int] = mapped_column(Integer, default=0)
    unpaid_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class Violation(CreatedAt, Base):
    """What an attendant recorded against a plate in a zone, with a reference to the photo taken."""

    __tablename__ = "parking_violation"
    __table_args__ = (Index("ix_parking_violation_merchant_id_id", "merchant_id", "id"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"))
    zone_id: Mapped[str] = mapped_column(ForeignKey("parking_zone.id"))
    spot_id: Mapped[str | None] = mapped_column(ForeignKey("parking_spot.id"))
    session_id: Mapped[str | None] = mapped_column(ForeignKey("parking_session.id"))
    plate: Mapped[str] = mapped_column(String(16), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    photo_ref: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(40))
    observed_at: Mapped[datetime]
