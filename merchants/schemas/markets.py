"""Markets, stalls, sales by dynamic code, transfers to static codes, daily summaries."""

from datetime import date, datetime

from pydantic import Field

from merchants.schemas.common import Code, Id, LongText, Name, Out, Strict
from payments.money import Amount


class MarketCreate(Strict):
    name: Name
    address: LongText


class MarketOut(Out):
    id: str
    name: str
    address: str
    created_at: datetime


class StallCreate(Strict):
    market_id: Id
    code: Code
    name: Name
    merchant_id: Id


class StallOut(Out):
    id: str
    market_id: str
    code: str
    name: str
    merchant_id: str
    collection_bank_bin: str
    collection_account: str
    account_name: str
    static_payload: str
    sign_png_url: str
    sign_pdf_url: str


class SaleCreate(Strict):
    amount: Amount
    description: LongText | None = None


class SaleOut(Strict):
    payment_intent: str
    status: str
    amount: int
    currency: str
    reference: str
    payload: str
    qr_png_url: str
    expires_at: datetime


class TransferOut(Out):
    id: str
    stall_id: str
    merchant_id: str
    amount: int
    currency: str
    description: str
    received_at: datetime
    status: str
    intent_id: str | None
    decided_at: datetime | None


class TransferReturn(Strict):
    reason: LongText = Field(description="Why the vendor sends it back")


class DailySummaryOut(Out):
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
