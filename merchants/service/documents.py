"""Files people keep: statements as CSV and PDF (receipts live beside tuition invoices)."""

import csv
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fpdf import FPDF  # here, not at the top: fpdf and fontTools add 0.4 s to a worker's start

from hanoipay.fonts import font_path
from merchants.service.statements import Statement, local_time

STATEMENT_COLUMNS = (
    "posted_at",
    "type",
    "entry_id",
    "payment_intent",
    "refund",
    "description",
    "amount",
    "balance",
)


def money(amount: int, currency: str = "VND") -> str:
    """An amount as Vietnamese write it: 1.250.000 ₫ (VND has no minor unit)."""
    if currency != "VND":
        return f"{amount / 100:,.2f} {currency}"
    return f"{amount:,}".replace(",", ".") + " ₫"


def statement_csv(statement: Statement) -> str:
    """The statement as CSV (UTF-8): an opening row, one row per movement, a closing row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(STATEMENT_COLUMNS)
    writer.writerow(
        ["", "opening_balance", "", "", "", statement.start.isoformat(), "", statement.opening_balance]
    )
    for row in statement.rows:
        writer.writerow(
            [
                local_time(row.posted_at),
                row.type,
                row.entry_id,
                row.intent_id or "",
                row.refund_id or "",
                row.description,
                row.amount,
                row.balance,
            ]
        )
    writer.writerow(
        ["", "closing_balance", "", "", "", statement.end.isoformat(), "", statement.closing_balance]
    )
    return out.getvalue()


def new_pdf(title: str) -> "FPDF":
    """An A4 PDF with DejaVu Sans loaded (regular as "DejaVu", bold as style "B")."""
    from fpdf import FPDF  # here, not at the top: fpdf and fontTools add 0.4 s to a worker's start

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.add_font("DejaVu", "", str(font_path()))
    pdf.add_font("DejaVu", "B", str(font_path(bold=True)))
    pdf.set_title(title)
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    return pdf


def statement_pdf(statement: Statement) -> bytes:
    """The statement as a PDF: header, opening balance, the rows in a table, totals, closing balance."""
    pdf = new_pdf(f"Sao kê {statement.merchant_name}")
    cur = statement.currency
    pdf.set_font("DejaVu", "B", 15)
    pdf.cell(0, 9, "Sao kê tài khoản / Merchant statement", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 10)
    pdf.cell(0, 6, f"{statement.merchant_name} ({statement.merchant_id})", new_x="LMARGIN", new_y="NEXT")
    period = f"Kỳ / Period: {statement.start.isoformat()} – {statement.end.isoformat()} (Asia/Ho_Chi_Minh)"
    pdf.cell(0, 6, period, new_x="LMARGIN", new_y="NEXT")
    pdf.cell(
        0,
        6,
        f"Số dư đầu kỳ / Opening balance: {money(statement.opening_balance, cur)}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    pdf.set_font("DejaVu", "", 8)
    with pdf.table(
        col_widths=(30, 22, 70, 34, 34), text_align=("LEFT", "LEFT", "LEFT", "RIGHT", "RIGHT")
    ) as table:
        table.row(
            [
                "Thời gian / Time",
                "Loại / Type",
                "Diễn giải / Description",
                "Số tiền / Amount",
                "Số dư / Balance",
            ]
        )
        for row in statement.rows:
            table.row(
                [
                    local_time(row.posted_at),
                    row.type,
                    (row.intent_id or row.description)[:60],
                    money(row.amount, cur),
                    money(row.balance, cur),
                ]
            )
    pdf.ln(3)
    pdf.set_font("DejaVu", "", 10)
    for name, total in sorted(statement.totals.items()):
        pdf.cell(0, 6, f"{name}: {money(total, cur)}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "B", 11)
    pdf.cell(
        0,
        8,
        f"Số dư cuối kỳ / Closing balance: {money(statement.closing_balance, cur)}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    return bytes(pdf.output())
