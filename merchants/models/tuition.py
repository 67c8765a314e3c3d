"""Schools' classes and students, fee schedules, invoices with their lines and installments, payments."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hanoipay.db import Base, CreatedAt

Id = String(40)


class InvoiceStatus(StrEnum):
    UNPAID = "unpaid"
    PARTLY_PAID = "partly_paid"
    PAID = "paid"


class LineKind(StrEnum):
    ITEM = "item"
    DISCOUNT = "discount"
    EXEMPTION = "exemption"
    LATE_FEE = "late_fee"


class SchoolClass(CreatedAt, Base):
    """A class of a school (10A1), in a school year."""

    __tablename__ = "school_class"
    __table_args__ = (UniqueConstraint("merchant_id", "name"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"))
    name: Mapped[str] = mapped_column(String(50))


class Student(CreatedAt, Base):
    """A student of a school, found by parents with their code and date of birth."""

    __tablename__ = "student"
    __table_args__ = (UniqueConstraint("merchant_id", "code"), Index("ix_student_class_id", "class_id"))

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"))
    code: Mapped[str] = mapped_column(String(20))
    full_name: Mapped[str] = mapped_column(Text)
    class_id: Mapped[str] = mapped_column(ForeignKey("school_class.id"))
    date_of_birth: Mapped[date]


class Guardian(CreatedAt, Base):
    """A parent or guardian of a student; `user_id` once they linked their account."""

    __tablename__ = "guardian"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    student_id: Mapped[str] = mapped_column(ForeignKey("student.id"), index=True)
    full_name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("app_user.id"), index=True)


class FeeSchedule(CreatedAt, Base):
    """What a school charges for a term: items, installments, whether partial payments are taken, late fees.

    `installments` is a list of {"due_on": ISO date, "share_bps": int}, shares summing to 10 000.
    A late fee (`fixed` VND, or `percent` in basis points of the overdue amount) is charged once per
    installment still unpaid `late_fee_grace_days` after its due date.
    """

    __tablename__ = "fee_schedule"
    __table_args__ = (UniqueConstraint("merchant_id", "term"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"))
    term: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(Text)
    allow_partial: Mapped[bool] = mapped_column(Boolean)
    installments: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    late_fee_kind: Mapped[str] = mapped_column(String(16))
    late_fee_value: Mapped[int] = mapped_column(BigInteger)
    late_fee_grace_days: Mapped[int] = mapped_column(Integer)


class FeeItem(Base):
    """One item of a fee schedule (tuition, meals, boarding, insurance)."""

    __tablename__ = "fee_item"
    __table_args__ = (UniqueConstraint("schedule_id", "code"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("fee_schedule.id"))
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)


class StudentAdjustment(CreatedAt, Base):
    """A discount or exemption a policy student gets on one item of a schedule, with its reason."""

    __tablename__ = "student_adjustment"
    __table_args__ = (UniqueConstraint("student_id", "schedule_id", "item_code"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    student_id: Mapped[str] = mapped_column(ForeignKey("student.id"))
    schedule_id: Mapped[str] = mapped_column(ForeignKey("fee_schedule.id"))
    item_code: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    percent_bps: Mapped[int | None] = mapped_column(Integer)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)


class Invoice(CreatedAt, Base):
    """A student's bill for a term; `code` is what parents write as the reference of a bank transfer."""

    __tablename__ = "invoice"
    __table_args__ = (
        UniqueConstraint("student_id", "term"),
        Index("ix_invoice_merchant_id_id", "merchant_id", "id"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchant.id"))
    student_id: Mapped[str] = mapped_column(ForeignKey("student.id"))
    schedule_id: Mapped[str | None] = mapped_column(ForeignKey("fee_schedule.id"))
    term: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    total_amount: Mapped[int] = mapped_column(BigInteger)
    paid_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16))
    allow_partial: Mapped[bool] = mapped_column(Boolean)
    due_on: Mapped[date]
    late_fee_kind: Mapped[str] = mapped_column(String(16))
    late_fee_value: Mapped[int] = mapped_column(BigInteger)
    late_fee_grace_days: Mapped[int] = mapped_column(Integer)


class InvoiceLine(Base):
    """A line of an invoice: an item (positive), a discount or exemption (negative), a late fee."""

    __tablename__ = "invoice_line"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoice.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    item_code: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    installment_seq: Mapped[int | None] = mapped_column(Integer)


class Installment(Base):
    """A part of an invoice due on a date; late fees add to the installment they were charged on."""

    __tablename__ = "invoice_installment"

    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoice.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    due_on: Mapped[date]
    amount: Mapped[int] = mapped_column(BigInteger)


class InvoicePayment(Base):
    """A payment that reached an invoice (wallet, card or bank transfer), one per intent."""

    __tablename__ = "invoice_payment"

    intent_id: Mapped[str] = mapped_column(ForeignKey("payment_intent.id"), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoice.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    provider: Mapped[str] = mapped_column(String(16))
    paid_at: Mapped[datetime]
