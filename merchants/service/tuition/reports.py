"""What a school reads: collection by class (paid, partly paid, unpaid) as JSON and CSV, and receipts."""

import csv
import io
from dataclasses import dataclass

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from merchants.models import Invoice, InvoiceStatus, SchoolClass, StaffRole, Student
from merchants.service.documents import money, new_pdf
from merchants.service.statements import local_time
from merchants.service.tuition.invoices import invoice_details
from merchants.service.tuition.schools import require_school
from payments.merchants import get_merchant

COLLECTION_COLUMNS = (
    "class",
    "students",
    "paid",
    "partly_paid",
    "unpaid",
    "billed_amount",
    "collected_amount",
    "outstanding_amount",
)


@dataclass(frozen=True)
class ClassCollection:
    """How a class stands for a term."""

    class_id: str
    class_name: str
    invoices: int
    paid: int
    partly_paid: int
    unpaid: int
    billed_amount: int
    collected_amount: int

    @property
    def outstanding_amount(self) -> int:
        """What is still to collect."""
        return self.billed_amount - self.collected_amount


def collection_by_class(session: Session, who: Principal, school_id: str, term: str) -> list[ClassCollection]:
    """Each class's invoices for the term: how many paid, partly paid and unpaid, billed and collected."""
    require_school(session, who, school_id, frozenset(StaffRole))

    def count(status: str) -> ColumnElement[int]:
        return func.count().filter(Invoice.status == status)

    rows = session.execute(
        select(
            SchoolClass.id,
            SchoolClass.name,
            func.count(),
            count(InvoiceStatus.PAID),
            count(InvoiceStatus.PARTLY_PAID),
            count(InvoiceStatus.UNPAID),
            func.coalesce(func.sum(Invoice.total_amount), 0),
            func.coalesce(
                func.sum(
                    case(
                        (Invoice.paid_amount > Invoice.total_amount, Invoice.total_amount),
                        else_=Invoice.paid_amount,
                    )
                ),
                0,
            ),
        )
        .join(Student, Student.class_id == SchoolClass.id)
        .join(Invoice, Invoice.student_id == Student.id)
        .where(Invoice.merchant_id == school_id, Invoice.term == term)
        .group_by(SchoolClass.id, SchoolClass.name)
        .order_by(SchoolClass.name)
    ).all()
    return [ClassCollection(r[0], r[1], *(int(v) for v in r[2:])) for r in rows]


def collection_csv(rows: list[ClassCollection]) -> str:
    """Collection by class as CSV (UTF-8, one class a row, then a total)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLLECTION_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                r.class_name,
                r.invoices,
                r.paid,
                r.partly_paid,
                r.unpaid,
                r.billed_amount,
                r.collected_amount,
                r.outstanding_amount,
            ]
        )
    writer.writerow(
        [
            "TOTAL",
            sum(r.invoices for r in rows),
            sum(r.paid for r in rows),
            sum(r.partly_paid for r in rows),
            sum(r.unpaid for r in rows),
            sum(r.billed_amount for r in rows),
            sum(r.collected_amount for r in rows),
            sum(r.outstanding_amount for r in rows),
        ]
    )
    return out.getvalue()


def receipt_pdf(session: Session, invoice: Invoice) -> bytes:
    """A receipt for an invoice: school, student, items, payments, paid and remaining."""
    school = get_merchant(session, invoice.merchant_id)
    student = session.get(Student, invoice.student_id)
    assert student is not None
    school_class = session.get(SchoolClass, student.class_id)
    lines, parts, payments = invoice_details(session, invoice)
    pdf = new_pdf(f"Biên lai {invoice.code}")
    pdf.set_font("DejaVu", "B", 15)
    pdf.cell(0, 9, "Biên lai học phí / Tuition receipt", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 10)
    for label, value in (
        ("Trường / School", school.name),
        ("Học sinh / Student", f"{student.full_name} ({student.code})"),
        ("Lớp / Class", school_class.name if school_class else ""),
        ("Kỳ / Term", invoice.term),
        ("Mã hóa đơn / Invoice", invoice.code),
    ):
        pdf.cell(0, 6, f"{label}: {value}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    with pdf.table(col_widths=(110, 50), text_align=("LEFT", "RIGHT")) as table:
        table.row(["Khoản / Item", "Số tiền / Amount"])
        for line in lines:
            label = line.description + (f" ({line.reason})" if line.reason else "")
            table.row([label, money(line.amount)])
        table.row(["Tổng / Total", money(invoice.total_amount)])
    pdf.ln(3)
    if payments:
        with pdf.table(col_widths=(60, 50, 50), text_align=("LEFT", "LEFT", "RIGHT")) as table:
            table.row(["Đã thanh toán / Paid on", "Hình thức / Method", "Số tiền / Amount"])
            for payment in payments:
                table.row([local_time(payment.paid_at), payment.provider, money(payment.amount)])
    pdf.ln(3)
    pdf.set_font("DejaVu", "B", 11)
    remaining = max(0, invoice.total_amount - invoice.paid_amount)
    pdf.cell(0, 7, f"Đã trả / Paid: {money(invoice.paid_amount)}", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 7, f"Còn lại / Remaining: {money(remaining)}", new_x="LMARGIN", new_y="NEXT")
    if parts and remaining:
        pdf.set_font("DejaVu", "", 9)
        for part in parts:
            pdf.cell(
                0,
                5,
                f"Đợt {part.seq}: {money(part.amount)}, hạn {part.due_on.strftime('%d/%m/%Y')}",
                new_x="LMARGIN",
                new_y="NEXT",
            )
    return bytes(pdf.output())
