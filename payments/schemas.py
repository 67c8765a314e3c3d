"""Request and response models of the payment core's API."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from payments.models import CaptureMethod, IntentStatus, RefundStatus
from payments.money import Amount

Currency = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. VND")

# Stripe's limits for metadata: at most 50 keys, names up to 40 characters, values up to 500, strings only.
MAX_METADATA_KEYS = 50
MetadataKey = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=40)]
MetadataValue = Annotated[str, StringConstraints(strict=True, max_length=500)]
Metadata = Annotated[
    dict[MetadataKey, MetadataValue],
    Field(
        max_length=MAX_METADATA_KEYS,
        description="Your own key-value pairs: at most 50 keys, names up to 40 characters, "
        "string values up to 500 characters",
    ),
]


class Strict(BaseModel):
    """Requests refuse unknown fields, so a typo is an error, not a silently ignored option."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """Responses are read from ORM objects."""

    model_config = ConfigDict(from_attributes=True, populate_by_name=True)


class MerchantCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["parking_operator", "transit_operator", "market_vendor", "school"]
    fee_bps: StrictInt = Field(ge=0, le=10_000, description="Platform fee in basis points (100 = 1%)")
    currency: str = Field(default="VND", pattern=r"^[A-Z]{3}$")
    payout_bank_bin: str = Field(pattern=r"^\d{6}$")
    payout_account: str = Field(pattern=r"^[0-9A-Za-z]{1,19}$")
    payout_account_name: str = Field(min_length=1, max_length=100)
    overpayment_policy: Literal["refund", "credit_wallet"] = Field(
        default="refund",
        description="The excess of a bank transfer: refunded by payout, or credited to the payer's wallet",
    )


class MerchantOut(Out):
    id: str
    name: str
    kind: str
    fee_bps: int
    currency: str
    payout_bank_bin: str
    payout_account: str
    payout_account_name: str
    overpayment_policy: str
    account_id: str
    created_at: datetime


class WalletCreate(Strict):
    currency: str = Field(default="VND", pattern=r"^[A-Z]{3}$")
    owner_id: str | None = Field(default=None, max_length=40, description="Staff only: open it for this user")


class WalletOut(Out):
    id: str
    owner_id: str
    currency: str
    account_id: str
    posted: int = 0
    held: int = 0
    available: int = 0
    created_at: datetime


class ManualTopupCreate(Strict):
    amount: Amount
    reason: str = Field(min_length=3, max_length=500)


class PaymentIntentCreate(Strict):
    amount: Amount
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    purpose: str = Field(min_length=1, max_length=32)
    merchant_id: str | None = Field(default=None, max_length=40)
    purpose_ref: str | None = Field(default=None, max_length=200)
    capture_method: CaptureMethod = CaptureMethod.AUTOMATIC
    provider: str | None = Field(default=None, max_length=16)
    wallet_id: str | None = Field(default=None, max_length=40)
    payment_method: str | None = Field(
        default=None, max_length=100, description="A provider's token, e.g. pm_..."
    )
    return_url: str | None = Field(default=None, max_length=500)
    confirm: StrictBool = False
    description: str | None = Field(default=None, max_length=500)
    metadata: Metadata = Field(default_factory=dict)


class PaymentIntentConfirm(Strict):
    provider: str | None = Field(default=None, max_length=16)
    wallet_id: str | None = Field(default=None, max_length=40)
    payment_method: str | None = Field(default=None, max_length=100)
    return_url: str | None = Field(default=None, max_length=500)


class PaymentIntentCapture(Strict):
    amount_to_capture: Amount | None = None


class PaymentIntentCancel(Strict):
    cancellation_reason: Literal["duplicate", "fraudulent", "requested_by_customer", "abandoned"] | None = (
        None
    )


class PaymentErrorOut(BaseModel):
    type: str = Field(description="card_error, wallet_error or payment_error")
    code: str = Field(description="card_declined, insufficient_funds, ...")
    decline_code: str | None = Field(default=None, description="The card issuer's reason, for card errors")
    message: str


class PaymentIntentOut(Out):
    id: str
    object: Literal["payment_intent"] = "payment_intent"
    merchant_id: str | None
    payer_id: str | None
    purpose: str
    purpose_ref: str | None
    amount: int
    currency: str
    status: IntentStatus
    capture_method: CaptureMethod
    provider: str | None
    wallet_id: str | None
    amount_capturable: int
    amount_received: int
    amount_refunded: int
    fee_amount: int
    capture_before: datetime | None
    succeeded_at: datetime | None
    canceled_at: datetime | None
    cancellation_reason: str | None
    last_payment_error: PaymentErrorOut | None = Field(
        description="Why the last payment attempt failed; cleared by the next attempt"
    )
    next_action: dict[str, Any] | None
    expires_at: datetime | None
    amount_collected: int
    description: str | None
    metadata: dict[str, Any] = Field(validation_alias="metadata_")
    created_at: datetime


class RefundCreate(Strict):
    payment_intent: str = Field(min_length=1, max_length=40)
    amount: Amount | None = None
    reason: str | None = Field(default=None, max_length=500)


class RefundOut(Out):
    id: str
    object: Literal["refund"] = "refund"
    intent_id: str
    amount: int
    currency: str
    fee_refunded: int
    status: RefundStatus
    reason: str | None
    created_at: datetime


class BalanceOut(BaseModel):
    account_id: str
    currency: str
    posted: int
    held: int
    available: int
    as_of: datetime | None = None


class LedgerLineOut(BaseModel):
    account_id: str
    amount: int = Field(description="Positive = debit, negative = credit, in minor units")
    currency: str


class LedgerEntryOut(BaseModel):
    id: str
    kind: str
    intent_id: str | None
    refund_id: str | None
    description: str
    posted_at: datetime
    lines: list[LedgerLineOut]


class EventOut(Out):
    id: str
    type: str
    merchant_id: str | None
    object_id: str
    data: dict[str, Any]
    created_at: datetime
    delivered_at: datetime | None
