"""Request and response models of the transit API."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

_SAFE = r"^[\x21-\x7e]+$"


def _storable(value: str) -> str:
    """Refuse text PostgreSQL cannot store: NUL and lone surrogates."""
    if "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValueError("contains a NUL or a lone surrogate")
    return value


Text = Annotated[str, AfterValidator(_storable)]
FeedId = Annotated[str, Field(min_length=1, max_length=64, pattern=_SAFE)]


class Strict(BaseModel):
    """Requests refuse unknown fields."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """Responses read from ORM objects."""

    model_config = ConfigDict(from_attributes=True)


class IssuerKeyOut(BaseModel):
    kid: str
    public_key: str = Field(description="Ed25519 public key, 32 bytes, base64url")
    active: bool


class KeysOut(BaseModel):
    keys: list[IssuerKeyOut]
    slot_seconds: int
    clock_skew_seconds: int


class SampleFeedIn(Strict):
    merchant_id: str = Field(max_length=40, pattern=_SAFE)
    name: Text = Field(default="Hà Nội (sample feed)", min_length=1, max_length=200)


class FeedOut(BaseModel):
    id: str
    name: str
    merchant_id: str
    currency: str
    active: bool
    created_at: datetime
    counts: dict[str, int]


class ProductOut(BaseModel):
    product_id: str
    name: str
    amount: int
    currency: str
    pass_validity: Literal["day", "month"] | None
    caps: bool


class CardIn(Strict):
    wallet_id: str = Field(max_length=40, pattern=_SAFE)
    category_id: FeedId | None = None
    name: Text = Field(default="", max_length=100)


class CardCategoryIn(Strict):
    category_id: FeedId


class CardOut(Out):
    id: str
    owner_id: str
    wallet_id: str
    category_id: str
    name: str
    status: str
    revoked_at: datetime | None
    created_at: datetime
    debt: int = 0


class DeviceIn(Strict):
    public_key: str = Field(min_length=40, max_length=48, description="Ed25519 public key, base64url")
    name: Text = Field(default="", max_length=100)


class DeviceOut(BaseModel):
    id: str
    card_id: str
    name: str
    public_key: str
    status: str
    credential: str = Field(description="The issuer-signed credential, base64url; see docs/transit-qr.md")
    credential_kid: str
    credential_valid_until: datetime
    revoked_at: datetime | None
    created_at: datetime


class PassIn(Strict):
    product_id: FeedId
    starts_on: date | None = None


class PassOut(Out):
    id: str
    card_id: str
    product_id: str
    starts_on: date
    ends_on: date
    amount: int
    currency: str
    intent_id: str
    status: str
    created_at: datetime


class TripOut(Out):
    id: str
    card_id: str
    service_day: date
    tap_id: str
    exit_tap_id: str | None
    route_id: str
    from_stop_id: str | None
    to_stop_id: str | None
    started_at: datetime
    product_id: str | None
    base_amount: int
    amount: int
    currency: str
    reasons: list[dict[str, Any]]


class FareDayOut(Out):
    card_id: str
    service_day: date
    trips: int
    total_amount: int
    charged_amount: int
    currency: str
    closed: bool
    pending: int = Field(default=0, description="Priced but not charged yet (the day is still open)")
    owed: int = Field(default=0, description="Charged less than the total on a closed day: a debt")
    priced_at: datetime
    charged_at: datetime | None


class CapProgressOut(BaseModel):
    product_id: str
    name: str
    period: Literal["day", "month"]
    cap_amount: int
    spent: int
    remaining: int
    reached: bool


class ChargeRunOut(BaseModel):
    days: int
    charged: int
    refunded: int


class ValidatorIn(Strict):
    name: Text = Field(min_length=1, max_length=100)
    vehicle_id: FeedId


class ValidatorOut(Out):
    id: str
    name: str
    vehicle_id: str
    revoked_at: datetime | None
    created_at: datetime


class ValidatorCreatedOut(ValidatorOut):
    secret: str = Field(description="Send as `Authorization: Bearer <secret>`; shown only once")


class DenyListOut(BaseModel):
    version: str
    generated_at: datetime
    revoked_cards: list[str]
    cards_in_debt: list[str]
    revoked_devices: list[str] = Field(description="Ed25519 public keys, base64url")


class ValidateIn(Strict):
    payload: str = Field(min_length=1, max_length=1_000, description="The scanned code, base64url")
    route_id: FeedId
    stop_id: FeedId | None = None
    direction: Literal["in", "out"] = "in"


class DecisionOut(BaseModel):
    accepted: bool
    reason: str
    card_id: str | None
    flag: str | None
    tap_id: str | None


class TapIn(Strict):
    """One tap as a validator uploads it (checked one by one, so a bad tap spoils only itself)."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    vehicle_id: FeedId | None = None
    route_id: FeedId
    stop_id: FeedId | None = None
    direction: Literal["in", "out"] = "in"
    tapped_at: AwareDatetime
    payload: str = Field(min_length=1, max_length=1_000)
    result: Literal[
        "accepted",
        "malformed",
        "truncated",
        "oversized",
        "unsupported_version",
        "unknown_key",
        "bad_credential_signature",
        "credential_not_yet_valid",
        "credential_expired",
        "bad_signature",
        "code_expired",
        "code_from_future",
        "card_revoked",
        "card_in_debt",
        "device_revoked",
        "already_scanned",
    ]


class TapBatchIn(Strict):
    taps: list[Any] = Field(min_length=1, max_length=1_000)


class TapErrorOut(BaseModel):
    index: int
    code: str
    detail: str


class TapBatchOut(BaseModel):
    applied: int
    duplicates: int
    errors: list[TapErrorOut]
