"""Invoices: written in bulk for a schedule's students (or from an import), their codes, and who may see
them (the student's linked guardians, the school's staff, finance). Paying is `payments.py`; late fees
and reminders are `reminders.py`."""

import re
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from hanoipay.auth.models import User
from hanoipay.auth.service import Principal
from hanoipay.ids import new_id
from hanoipay.settings import get_settings
from merchants.exceptions import (
    InvoiceNotFound,
    StudentNotFound,
)
from merchants.models import (
    Guardian,
    Installment,
    Invoice,
    InvoiceLine,
    InvoicePayment,
    InvoiceStatus,
    StaffRole,
    Student,
    StudentAdjustment,
)
from merchants.service.access import staff_role
from merchants.service.tuition.billing import (
    Adjustment,
    LateFeeRule,
    Line,
    due_now,
    invoice_lines,
    split_installments,
)
from merchants.service.tuition.schools import (
    get_schedule,
    require_school,
    schedule_items,
    schedule_shares,
)
from payments.providers.vietqr.codec import build_payload

CODE_PREFIX = "HD"
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE = re.compile(r"(?=(HD[0-9A-HJKMNP-TV-Z]{10}))")


def new_invoice_code() -> str:
    """A code parents write as the transfer's reference: HD and ten Crockford base32 characters."""
    return CODE_PREFIX + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))


def codes_in(description: str) -> list[str]:
    """Every invoice code in a transfer description, however the bank app mangled it."""
    normalised = re.sub(r"[^0-9A-Z]", "", description.upper())
    return [m.group(1) for m in _CODE.finditer(normalised)]


def status_for(total: int, paid: int) -> InvoiceStatus:
    """Paid, partly paid or unpaid."""
    if paid >= total:
        return InvoiceStatus.PAID
    return InvoiceStatus.PARTLY_PAID if paid > 0 else InvoiceStatus.UNPAID


@dataclass(frozen=True)
class NewInvoice:
    """An invoice to write: its student, lines and installments."""

    student_id: str
    lines: list[Line]
    installments: list[tuple[int, date, int]]


_INVOICE_COLUMNS = (
    "id, code, merchant_id, student_id, schedule_id, term, currency, total_amount, paid_amount, status,"
    " allow_partial, due_on, late_fee_kind, late_fee_value, late_fee_grace_days"
)
_LINE_COLUMNS = "invoice_id, kind, item_code, description, amount, reason, installment_seq"
_INSTALLMENT_COLUMNS = "invoice_id, seq, due_on, amount"


def write_invoices(
    session: Session,
    school_id: str,
    term: str,
    new: list[NewInvoice],
    *,
    schedule_id: str | None,
    allow_partial: bool,
    late_fee: LateFeeRule,
) -> int:
    """Write invoices with their lines and installments in bulk; a student's existing term invoice stays.

    Rows are copied into temporary tables (PostgreSQL's COPY) and moved with one INSERT ... SELECT each, so
    a school of 50 000 students is billed in seconds, and a concurrent run that billed a student first
    wins on the (student, term) key instead of failing.
    """
    if not new:
        return 0
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS new_invoice (LIKE invoice INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;"
        "CREATE TEMP TABLE IF NOT EXISTS new_invoice_line (ord bigserial, invoice_id text, kind text,"
        " item_code text, description text, amount bigint, reason text, installment_seq int)"
        " ON COMMIT DELETE ROWS;"
        "CREATE TEMP TABLE IF NOT EXISTS new_invoice_installment (LIKE invoice_installment)"
        " ON COMMIT DELETE ROWS;"
        "TRUNCATE new_invoice, new_invoice_line, new_invoice_installment"
    )
    with cursor.copy(f"COPY new_invoice ({_INVOICE_COLUMNS}) FROM STDIN") as invoices_in:
        ids = []
        for invoice in new:
            invoice_id = new_id("inv")
            ids.append(invoice_id)
            total = sum(line.amount for line in invoice.lines)
            invoices_in.write_row(
                (
                    invoice_id,
                    new_invoice_code(),
                    school_id,
                    invoice.student_id,
                    schedule_id,
                    term,
                    "VND",
                    total,
                    0,
                    status_for(total, 0),
                    allow_partial,
                    invoice.installments[-1][1],
                    late_fee.kind,
                    late_fee.value,
                    late_fee.grace_days,
                )
            )
    with cursor.copy(f"COPY new_invoice_line ({_LINE_COLUMNS}) FROM STDIN") as lines_in:
        for invoice_id, invoice in zip(ids, new, strict=True):
            for line in invoice.lines:
                lines_in.write_row(
                    (invoice_id, line.kind, line.item_code, line.description, line.amount, line.reason, None)
                )
    with cursor.copy(f"COPY new_invoice_installment ({_INSTALLMENT_COLUMNS}) FROM STDIN") as parts_in:
        for invoice_id, invoice in zip(ids, new, strict=True):
            for seq, due_on, amount in invoice.installments:
                parts_in.write_row((invoice_id, seq, due_on, amount))
    cursor.execute(
        f"INSERT INTO invoice ({_INVOICE_COLUMNS}) SELECT {_INVOICE_COLUMNS} FROM new_invoice"  # noqa: S608
        " ON CONFLICT (student_id, term) DO NOTHING"
    )
    written = int(cursor.rowcount)
    cursor.execute(
        f"INSERT INTO invoice_line ({_LINE_COLUMNS}) SELECT {_LINE_COLUMNS} FROM new_invoice_line n"  # noqa: S608
        " WHERE EXISTS (SELECT 1 FROM invoice i WHERE i.id = n.invoice_id) ORDER BY n.ord"
    )
    cursor.execute(
        f"INSERT INTO invoice_installment ({_INSTALLMENT_COLUMNS})"  # noqa: S608
        f" SELECT {_INSTALLMENT_COLUMNS} FROM new_invoice_installment n"
        " WHERE EXISTS (SELECT 1 FROM invoice i WHERE i.id = n.invoice_id)"
    )
    cursor.execute("TRUNCATE new_invoice, new_invoice_line, new_invoice_installment")
    return written


def generate_invoices(
    session: Session, who: Principal, school_id: str, schedule_id: str, *, class_ids: list[str] | None = None
) -> int:
    """Bill every student of the school (or of some classes) for a schedule's term; returns how many new.

    Students billed for the term already are left alone, so a second run bills only newcomers.
    """
    require_school(session, who, school_id)
    schedule = get_schedule(session, school_id, schedule_id)
    items = schedule_items(session, schedule.id)
    shares = schedule_shares(schedule)
    query = select(Student.id).where(Student.merchant_id == school_id)
    if class_ids:
        query = query.where(Student.class_id.in_(class_ids))
    billed = select(Invoice.student_id).where(Invoice.merchant_id == school_id, Invoice.term == schedule.term)
    students = list(session.scalars(query.where(Student.id.not_in(billed))))
    adjustments: dict[str, list[Adjustment]] = defaultdict(list)
    for row in session.scalars(select(StudentAdjustment).where(StudentAdjustment.schedule_id == schedule.id)):
        adjustments[row.student_id].append(
            Adjustment(row.item_code, row.kind, row.reason, row.percent_bps, row.amount)
        )
    plain = invoice_lines(items, [])
    plain_split = split_installments(sum(line.amount for line in plain), shares)
    new = []
    for student_id in students:
        if student_id in adjustments:
            lines = invoice_lines(items, adjustments[student_id])
            split = split_installments(sum(line.amount for line in lines), shares)
        else:
            lines, split = plain, plain_split
        new.append(NewInvoice(student_id, lines, split))
    rule = LateFeeRule(schedule.late_fee_kind, schedule.late_fee_value, schedule.late_fee_grace_days)
    return write_invoices(
        session,
        school_id,
        schedule.term,
        new,
        schedule_id=schedule.id,
        allow_partial=schedule.allow_partial,
        late_fee=rule,
    )


# Who sees an invoice ----------------------------------------------------------------------------------


def _is_guardian(session: Session, who: Principal, student_id: str) -> bool:
    return (
        who.kind == "user"
        and session.scalar(
            select(Guardian.id).where(Guardian.student_id == student_id, Guardian.user_id == who.id)
        )
        is not None
    )


def get_invoice(session: Session, who: Principal, invoice_id: str, *, for_update: bool = False) -> Invoice:
    """An invoice, for its student's linked guardians, the school's staff and finance; 404 for others."""
    invoice = session.get(Invoice, invoice_id, with_for_update=for_update, populate_existing=for_update)
    if invoice is None:
        raise InvoiceNotFound(f"No invoice {invoice_id}.")
    if who.is_staff or staff_role(session, who, invoice.merchant_id) is not None:
        return invoice
    if not _is_guardian(session, who, invoice.student_id):
        raise InvoiceNotFound(f"No invoice {invoice_id}.")
    return invoice


def link_guardian(
    session: Session, who: Principal, school_id: str, student_code: str, date_of_birth: date
) -> Student:
    """A parent finds their child by student code and date of birth, and links their account to the child."""
    student = session.scalar(
        select(Student).where(Student.merchant_id == school_id, Student.code == student_code)
    )
    if student is None or student.date_of_birth != date_of_birth or who.kind != "user":
        raise StudentNotFound("No student with this code and date of birth at this school.")
    if not _is_guardian(session, who, student.id):
        user = session.get(User, who.id)
        assert user is not None
        session.add(
            Guardian(
                id=new_id("gdn"),
                student_id=student.id,
                full_name=user.full_name,
                phone=None,
                email=user.email,
                user_id=user.id,
            )
        )
        session.flush()
    return student


def my_children(session: Session, who: Principal) -> list[Student]:
    """The students the caller is a linked guardian of."""
    return list(
        session.scalars(
            select(Student)
            .join(Guardian, Guardian.student_id == Student.id)
            .where(Guardian.user_id == who.id)
            .order_by(Student.full_name)
        )
    )


def invoices_of_student(session: Session, who: Principal, student_id: str) -> list[Invoice]:
    """A student's invoices, newest first, for their guardians and the school."""
    student = session.get(Student, student_id)
    if student is None:
        raise StudentNotFound(f"No student {student_id}.")
    allowed = who.is_staff or staff_role(session, who, student.merchant_id) is not None
    if not allowed and not _is_guardian(session, who, student_id):
        raise StudentNotFound(f"No student {student_id}.")
    return list(
        session.scalars(select(Invoice).where(Invoice.student_id == student_id).order_by(Invoice.id.desc()))
    )


def invoice_details(
    session: Session, invoice: Invoice
) -> tuple[list[InvoiceLine], list[Installment], list[InvoicePayment]]:
    """An invoice's lines, installments and payments."""
    lines = list(
        session.scalars(
            select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)
        )
    )
    parts = list(
        session.scalars(
            select(Installment).where(Installment.invoice_id == invoice.id).order_by(Installment.seq)
        )
    )
    paid = list(
        session.scalars(
            select(InvoicePayment)
            .where(InvoicePayment.invoice_id == invoice.id)
            .order_by(InvoicePayment.paid_at)
        )
    )
    return lines, parts, paid


def list_invoices(
    session: Session,
    who: Principal,
    school_id: str,
    *,
    status: str | None,
    limit: int,
    starting_after: str | None,
) -> tuple[list[Invoice], bool]:
    """The school's invoices, newest first, one page."""
    require_school(session, who, school_id, frozenset(StaffRole))
    query = (
        select(Invoice).where(Invoice.merchant_id == school_id).order_by(Invoice.id.desc()).limit(limit + 1)
    )
    if status:
        query = query.where(Invoice.status == status)
    if starting_after:
        query = query.where(Invoice.id < starting_after)
    rows = list(session.scalars(query))
    return rows[:limit], len(rows) > limit


def remaining(invoice: Invoice) -> int:
    """What is left to pay on an invoice."""
    return max(0, invoice.total_amount - invoice.paid_amount)


def due_now_amount(parts: list[Installment], invoice: Invoice, today: date) -> int:
    """What must be paid by today (installments due, less what was paid)."""
    return due_now([(p.due_on, p.amount) for p in parts], invoice.paid_amount, today)


def invoice_payload(invoice: Invoice) -> str:
    """A VietQR code for what is left on the invoice, with the invoice code as the transfer's reference."""
    settings = get_settings()
    return build_payload(
        bank_bin=settings.vietqr_bank_bin,
        account=settings.vietqr_account,
        amount=remaining(invoice),
        reference=invoice.code,
    )
