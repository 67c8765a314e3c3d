"""Schools, students, fee schedules, invoices, payments, collection reports."""

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, EmailStr, Field, StrictBool, StrictInt, model_validator

from merchants.schemas.common import Code, Id, LongText, Name, Out, ShortText, Strict
from payments.money import MAX_AMOUNT, Amount


class GuardianIn(Strict):
    full_name: Name
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9]{8,15}$")
    email: EmailStr | None = None


class StudentCreate(Strict):
    code: Code
    full_name: Name
    class_name: ShortText
    date_of_birth: date
    guardians: list[GuardianIn] = Field(default_factory=list, max_length=4)


class StudentOut(Out):
    id: str
    merchant_id: str
    code: str
    full_name: str
    class_id: str
    date_of_birth: date


class ClassOut(Out):
    id: str
    name: str


class ItemIn(Strict):
    code: Code
    name: Name
    amount: StrictInt = Field(ge=0, le=MAX_AMOUNT, description="VND; a negative fee item is refused")


class InstallmentIn(Strict):
    due_on: date
    share_bps: StrictInt = Field(gt=0, le=10_000, description="Share of the total in basis points")


class LateFeeIn(Strict):
    kind: Literal["none", "fixed", "percent"] = "none"
    value: StrictInt = Field(
        default=0, ge=0, le=MAX_AMOUNT, description="VND (fixed) or basis points (percent)"
    )
    grace_days: StrictInt = Field(default=0, ge=0, le=365)

    @model_validator(mode="after")
    def _percent_at_most_whole(self) -> "LateFeeIn":
        if self.kind == "percent" and self.value > 10_000:
            raise ValueError("a percent late fee is at most 10 000 basis points")
        return self


class ScheduleCreate(Strict):
    term: ShortText
    name: Name
    items: list[ItemIn] = Field(min_length=1, max_length=50)
    installments: list[InstallmentIn] = Field(min_length=1, max_length=12)
    allow_partial: StrictBool = False
    late_fee: LateFeeIn = Field(default_factory=LateFeeIn)


class ScheduleOut(Out):
    id: str
    merchant_id: str
    term: str
    name: str
    allow_partial: bool
    late_fee_kind: str
    late_fee_value: int
    late_fee_grace_days: int


class AdjustmentCreate(Strict):
    schedule_id: Id
    item_code: Code
    kind: Literal["discount", "exemption"]
    percent_bps: StrictInt | None = Field(default=None, gt=0, le=10_000)
    amount: Amount | None = None
    reason: LongText

    @model_validator(mode="after")
    def _one_of(self) -> "AdjustmentCreate":
        if (self.percent_bps is None) == (self.amount is None):
            raise ValueError("give either percent_bps or amount")
        return self


class AdjustmentOut(Out):
    id: str
    student_id: str
    schedule_id: str
    item_code: str
    kind: str
    percent_bps: int | None
    amount: int | None
    reason: str


class GenerateInvoices(Strict):
    class_ids: list[Id] | None = Field(default=None, max_length=500)


class Generated(BaseModel):
    created: int


class Imported(BaseModel):
    imported: int


class GuardianLink(Strict):
    student_code: Code
    date_of_birth: date


class InvoiceLineOut(Out):
    kind: str
    item_code: str
    description: str
    amount: int
    reason: str | None


class InstallmentOut(Out):
    seq: int
    due_on: date
    amount: int


class InvoicePaymentOut(Out):
    intent_id: str
    amount: int
    provider: str
    paid_at: datetime


class InvoiceOut(Out):
    id: str
    code: str
    merchant_id: str
    student_id: str
    term: str
    currency: str
    total_amount: int
    paid_amount: int
    status: str
    allow_partial: bool
    due_on: date
    created_at: datetime


class InvoiceDetail(InvoiceOut):
    remaining_amount: int
    due_now_amount: int
    lines: list[InvoiceLineOut]
    installments: list[InstallmentOut]
    payments: list[InvoicePaymentOut]
    receipt_pdf_url: str
    vietqr_png_url: str


class InvoiceList(BaseModel):
    object: Literal["list"] = "list"
    data: list[InvoiceOut]
    has_more: bool
    next_cursor: str | None


class InvoicePay(Strict):
    amount: Amount | None = Field(default=None, description="All that is left if omitted")
    provider: Literal["wallet", "vietqr", "stripe"]
    wallet_id: Id | None = None
    payment_method: str | None = Field(default=None, max_length=100)


class InvoiceQr(BaseModel):
    payload: str
    reference: str
    amount: int
    account: str
    account_name: str
    bank_bin: str


class ClassCollectionOut(Out):
    class_id: str
    class_name: str
    invoices: int
    paid: int
    partly_paid: int
    unpaid: int
    billed_amount: int
    collected_amount: int
    outstanding_amount: int
