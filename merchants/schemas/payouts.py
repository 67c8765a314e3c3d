"""Settlements, merchants' payouts and statements."""

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel

from merchants.schemas.common import Out


class SettlementOut(Out):
    id: str
    merchant_id: str
    business_day: date
    cutoff_at: datetime
    amount: int
    currency: str
    payout_id: str | None
    status: str
    created_at: datetime


class MerchantPayoutOut(Out):
    id: str
    merchant_id: str | None
    bank_bin: str
    account: str
    account_name: str | None
    amount: int
    currency: str
    reason: str
    status: str
    created_at: datetime
    exported_at: datetime | None
    paid_at: datetime | None
    failed_at: datetime | None
    failure_reason: str | None


class StatementRowOut(Out):
    posted_at: datetime
    type: str
    entry_id: str
    intent_id: str | None
    refund_id: str | None
    description: str
    amount: int
    balance: int


class StatementOut(BaseModel):
    object: Literal["statement"] = "statement"
    merchant_id: str
    merchant_name: str
    currency: str
    start: date
    end: date
    opening_balance: int
    closing_balance: int
    totals: dict[str, int]
    data: list[StatementRowOut]
    has_more: bool
    next_cursor: str | None
