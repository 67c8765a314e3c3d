"""Late fees on overdue installments and reminders before installments fall due: the daily jobs' work."""

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hanoipay.notifications import notify
from merchants.models import Guardian, Installment, Invoice, InvoiceLine, InvoiceStatus, Student
from merchants.service.markets import business_day
from merchants.service.tuition.billing import LateFeeRule, late_fees
from merchants.service.tuition.invoices import status_for


def apply_late_fees(session: Session, *, today: date | None = None, limit: int = 5_000) -> int:
    """Charge each overdue installment's late fee once (the rule copied on the invoice); returns how many."""
    day = today or business_day(datetime.now(UTC))
    invoices = session.scalars(
        select(Invoice)
        .where(Invoice.status != InvoiceStatus.PAID, Invoice.late_fee_kind != "none")
        .where(Invoice.id.in_(select(Installment.invoice_id).where(Installment.due_on < day)))
        .order_by(Invoice.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    charged_count = 0
    for invoice in invoices:
        parts = session.scalars(
            select(Installment).where(Installment.invoice_id == invoice.id).order_by(Installment.seq)
        ).all()
        charged = frozenset(
            seq
            for seq in session.scalars(
                select(InvoiceLine.installment_seq).where(
                    InvoiceLine.invoice_id == invoice.id, InvoiceLine.kind == "late_fee"
                )
            ).all()
            if seq is not None
        )
        rule = LateFeeRule(invoice.late_fee_kind, invoice.late_fee_value, invoice.late_fee_grace_days)
        for seq, fee in late_fees(
            [(p.seq, p.due_on, p.amount) for p in parts], invoice.paid_amount, day, rule, charged
        ):
            session.add(
                InvoiceLine(
                    invoice_id=invoice.id,
                    kind="late_fee",
                    item_code="late_fee",
                    description=f"Phí trễ hạn đợt {seq}",
                    amount=fee,
                    reason=f"installment {seq} overdue",
                    installment_seq=seq,
                )
            )
            session.execute(
                update(Installment)
                .where(Installment.invoice_id == invoice.id, Installment.seq == seq)
                .values(amount=Installment.amount + fee)
            )
            invoice.total_amount += fee
            charged_count += 1
        invoice.status = status_for(invoice.total_amount, invoice.paid_amount)
    session.flush()
    return charged_count


def send_reminders(session: Session, *, today: date | None = None, days_ahead: int = 3) -> int:
    """Remind guardians, once each, of installments due within `days_ahead` days and not yet covered."""
    day = today or business_day(datetime.now(UTC))
    rows = session.execute(
        select(Invoice, Installment, Student)
        .join(Installment, Installment.invoice_id == Invoice.id)
        .join(Student, Student.id == Invoice.student_id)
        .where(
            Invoice.status != InvoiceStatus.PAID,
            Installment.due_on >= day,
            Installment.due_on <= day + timedelta(days=days_ahead),
        )
        .order_by(Invoice.id, Installment.seq)
    ).all()
    sent = 0
    for invoice, part, student in rows:
        covered_before = sum(
            p.amount
            for p in session.scalars(
                select(Installment).where(Installment.invoice_id == invoice.id, Installment.seq < part.seq)
            )
        )
        owed = min(part.amount, part.amount + covered_before - invoice.paid_amount)
        if owed <= 0:
            continue
        for guardian in session.scalars(select(Guardian).where(Guardian.student_id == student.id)):
            text = (
                f"Nhắc học phí: {student.full_name} còn {owed:,} đồng của hóa đơn {invoice.code}, "
                f"hạn {part.due_on.strftime('%d/%m/%Y')}."
            ).replace(",", ".")
            delivered = notify(
                session,
                recipient_id=guardian.user_id or guardian.id,
                kind="tuition_reminder",
                text=text,
                data={
                    "invoice_id": invoice.id,
                    "code": invoice.code,
                    "amount": owed,
                    "due_on": part.due_on.isoformat(),
                    "phone": guardian.phone,
                },
                dedupe_key=f"tuition_reminder:{invoice.id}:{part.seq}:{guardian.id}",
            )
            sent += delivered is not None
    return sent
