"""Request and response models of the parking API."""

from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt

from parking.models import SpotState, VehicleType

ZoneCode = Field(pattern=r"^[A-Z0-9][A-Z0-9\-_]{0,31}$", description="A zone's code, e.g. HK-LTK-01")
PlateText = Field(min_length=1, max_length=20, description="A Vietnamese plate, e.g. 30A-123.45")
IdText = Field(min_length=1, max_length=40)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PriceOut(BaseModel):
    amount: int
    currency: str = "VND"
    tariff_version_id: str
    decision: str
    sample: bool
    pieces: list[dict[str, Any]]
    capped_days: list[date]


class ZoneBrief(BaseModel):
    id: str
    code: str
    name: str
    street: str
    district: str
    address: str
    lat: float
    lon: float


class SearchHitOut(BaseModel):
    zone: ZoneBrief
    distance_m: float | None
    free_spots: int
    vehicle_type: str
    duration_minutes: int
    arrival: datetime
    quote: PriceOut = Field(description="The price now; POST /v1/parking/quotes binds it for 10 minutes")


class SearchOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[SearchHitOut]


class QuoteCreate(Strict):
    zone_code: str = ZoneCode
    vehicle_type: VehicleType
    duration_minutes: StrictInt | None = Field(
        default=None, ge=1, le=24 * 60, description="Prepaid minutes; leave out for an open-ended stay"
    )
    spot_id: str | None = Field(default=None, max_length=40)


class QuoteOut(Out):
    id: str
    object: Literal["parking_quote"] = "parking_quote"
    zone_code: str
    spot_id: str | None
    vehicle_type: str
    duration_minutes: int | None
    open_ended: bool
    amount: int
    currency: str
    starts_at: datetime
    expires_at: datetime
    price: PriceOut


class SessionCreate(Strict):
    quote_id: str = IdText
    plate: str = PlateText
    provider: Literal["wallet", "stripe", "vietqr"]
    wallet_id: str | None = Field(default=None, max_length=40)
    payment_method: str | None = Field(default=None, max_length=100, description="A card, pm_... (stripe)")


class SessionExtend(Strict):
    minutes: StrictInt = Field(ge=1, le=24 * 60)


class PaymentOut(BaseModel):
    intent_id: str
    kind: str
    amount: int
    status: str
    provider: str | None
    amount_received: int
    amount_refunded: int
    next_action: dict[str, Any] | None


class SessionOut(BaseModel):
    id: str
    object: Literal["parking_session"] = "parking_session"
    status: str
    plate: str
    vehicle_type: str
    zone_code: str
    spot_code: str
    spot_id: str
    open_ended: bool
    provider: str
    started_at: datetime | None
    covered_until: datetime | None
    ended_at: datetime | None
    prepaid_minutes: int
    prepaid_amount: int
    charged_amount: int | None
    overstay_minutes: int
    unpaid_amount: int
    currency: str
    tariff_version_id: str
    payments: list[PaymentOut]
    created_at: datetime


class SessionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[SessionOut]
    has_more: bool
    next_cursor: str | None


class ReceiptOut(BaseModel):
    object: Literal["parking_receipt"] = "parking_receipt"
    session_id: str
    status: str
    plate: str
    vehicle_type: str
    zone: ZoneBrief
    spot_code: str
    operator_id: str
    started_at: datetime | None
    ended_at: datetime | None
    minutes_parked: int | None
    prepaid_minutes: int
    overstay_minutes: int
    tariff: dict[str, Any]
    charged_amount: int | None
    paid_amount: int
    unpaid_amount: int
    currency: str
    payments: list[PaymentOut]


class SpotStateChange(Strict):
    state: SpotState
    source: Literal["sensor", "attendant"]
    observed_at: AwareDatetime | None = None


class SpotOut(Out):
    id: str
    zone_id: str
    code: str
    vehicle_type: str
    lat: float
    lon: float
    state: str
    state_source: str
    state_changed_at: datetime
    open_session_id: str | None = None


class ZoneOut(BaseModel):
    id: str
    code: str
    name: str
    kind: str
    street: str
    district: str
    address: str
    lat: float
    lon: float
    geometry: dict[str, Any]
    max_duration_minutes: int
    grace_minutes: int
    reminder_minutes: int
    unused_time_rule: str
    sample: bool
    free_spots: dict[str, int]
    total_spots: dict[str, int]


class LoadOut(BaseModel):
    merchant_id: str
    tariffs: int
    versions_added: int
    zones: int
    spots_added: int


class LookupOut(BaseModel):
    plate: str
    status: Literal["paid", "expired", "payment_pending", "unpaid_overstay", "no_session"]
    session_id: str | None = None
    zone_code: str | None = None
    spot_code: str | None = None
    paid_until: datetime | None = None
    expired_since: datetime | None = None
    open_ended: bool | None = None
    unpaid_amount: int | None = None


class ViolationCreate(Strict):
    plate: str = PlateText
    zone_code: str = ZoneCode
    kind: Literal["no_session", "expired", "wrong_spot", "no_parking", "other"]
    photo_ref: str = Field(
        min_length=1, max_length=500, description="Where the photo is kept (an object key)"
    )
    note: str | None = Field(default=None, max_length=1000)
    spot_id: str | None = Field(default=None, max_length=40)


class ViolationOut(Out):
    id: str
    object: Literal["parking_violation"] = "parking_violation"
    plate: str
    zone_id: str
    spot_id: str | None
    session_id: str | None
    kind: str
    photo_ref: str
    note: str | None
    recorded_by: str
    observed_at: datetime


class ViolationList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ViolationOut]
    has_more: bool
    next_cursor: str | None


class OverstayOut(BaseModel):
    session_id: str
    plate: str
    zone_code: str
    spot_code: str
    status: str
    covered_until: datetime | None
    ended_at: datetime | None
    unpaid_amount: int


class ReportRow(BaseModel):
    zone_code: str
    day: date
    spots: int
    sessions: int
    occupied_minutes: int
    occupancy: float
    gross_amount: int
    net_amount: int
    currency: str = "VND"


class ReportOut(BaseModel):
    merchant_id: str
    first: date
    last: date
    data: list[ReportRow]
