"""Merchants, their bank account, terms, verification and staff."""

from datetime import datetime
from typing import Literal

from pydantic import EmailStr, Field, StrictInt

from merchants.schemas.common import Name, Out, Strict

Kind = Literal["parking_operator", "transit_operator", "market_vendor", "school"]
Role = Literal["owner", "cashier", "accountant"]


class MerchantCreate(Strict):
    name: Name
    kind: Kind
    fee_plan: Literal["standard", "market_stall", "school", "transport", "custom"] | None = None
    fee_bps: StrictInt | None = Field(
        default=None, ge=0, le=10_000, description="With fee_plan custom (or none)"
    )
    currency: str = Field(default="VND", pattern=r"^[A-Z]{3}$")
    payout_bank_bin: str = Field(pattern=r"^\d{6}$")
    payout_account: str = Field(min_length=1, max_length=19)
    payout_account_name: Name
    overpayment_policy: Literal["refund", "credit_wallet"] = "refund"
    settlement_delay_days: StrictInt = Field(default=1, ge=0, le=30)


class PayoutAccountChange(Strict):
    bank_bin: str = Field(pattern=r"^\d{6}$")
    account: str = Field(min_length=1, max_length=19)
    account_name: Name


class TermsChange(Strict):
    fee_plan: Literal["standard", "market_stall", "school", "transport", "custom"] | None = None
    fee_bps: StrictInt | None = Field(default=None, ge=0, le=10_000)
    overpayment_policy: Literal["refund", "credit_wallet"] | None = None
    settlement_delay_days: StrictInt | None = Field(default=None, ge=0, le=30)


class VerificationChange(Strict):
    status: Literal["unverified", "verified", "suspended"]


class MerchantOut(Out):
    id: str
    name: str
    kind: str
    fee_plan: str
    fee_bps: int
    currency: str
    payout_bank_bin: str
    payout_bank: str | None
    payout_account: str
    payout_account_name: str
    overpayment_policy: str
    verification: str
    verified_at: datetime | None
    settlement_delay_days: int
    account_id: str
    created_at: datetime


class InvitationCreate(Strict):
    email: EmailStr
    role: Role


class InvitationOut(Out):
    id: str
    merchant_id: str
    email: str
    role: str
    expires_at: datetime
    accepted_at: datetime | None


class InvitationCreated(InvitationOut):
    token: str = Field(description="Give this to the invitee; shown only in this response")


class InvitationAccept(Strict):
    token: str = Field(min_length=10, max_length=100)


class MemberOut(Out):
    id: str
    merchant_id: str
    user_id: str
    email: str
    full_name: str
    role: str
    created_at: datetime


class Joined(MemberOut):
    access_token: str = Field(description="A new token that acts for the merchant")
    expires_in: int
