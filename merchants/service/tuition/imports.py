"""Bulk imports from CSV (UTF-8, Vietnamese names): students, and invoices. All or nothing: every bad row is
reported with its line number (the header is line 1) and nothing is written unless the whole file is good.

Students: `student_code,full_name,class,date_of_birth,guardian_name,guardian_phone,guardian_email`
(date_of_birth as YYYY-MM-DD; guardian columns may be empty).

Invoices, one line item a row, grouped into one invoice per student and term:
`student_code,term,due_on,item_code,item_name,amount,adjustment_kind,adjustment_value,adjustment_reason`
(adjustment_kind empty, `discount` or `exemption`; adjustment_value `10%` or an amount in VND).
"""

import csv
import io
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from hanoipay.ids import new_id
from merchants.exceptions import (
    AdjustmentTooLarge,
    CsvBadColumns,
    CsvBadEncoding,
    CsvInvalid,
    CsvTooLarge,
    ScheduleInvalid,
)
from merchants.models import Guardian, Invoice, SchoolClass, Student
from merchants.service.tuition.billing import Adjustment, Item, LateFeeRule, invoice_lines
from merchants.service.tuition.invoices import NewInvoice, write_invoices
from merchants.service.tuition.schools import require_school
from payments.money import MAX_AMOUNT

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 100_000
STUDENT_COLUMNS = (
    "student_code",
    "full_name",
    "class",
    "date_of_birth",
    "guardian_name",
    "guardian_phone",
    "guardian_email",
)
INVOICE_COLUMNS = (
    "student_code",
    "term",
    "due_on",
    "item_code",
    "item_name",
    "amount",
    "adjustment_kind",
    "adjustment_value",
    "adjustment_reason",
)
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$")
_PHONE = re.compile(r"^\+?[0-9]{8,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Report:
    """What an import found: its bad rows (line, column, message), or how many it wrote."""

    errors: list[dict[str, Any]] = field(default_factory=list)

    def bad(self, line: int, column: str, code: str, message: str, **params: Any) -> None:
        """Note a bad value: where, a stable code (pages translate it with `params`), and why in English."""
        self.errors.append({"line": line, "column": column, "code": code, "message": message, **params})


def read_rows(data: bytes, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """The rows of a UTF-8 CSV file with exactly `columns`, each with its line number."""
    if len(data) > MAX_BYTES:
        raise CsvTooLarge(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it.")
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CsvBadEncoding(
            f"The file is not UTF-8 (byte {error.start}); save it as 'CSV UTF-8' and send it again."
        ) from None
    if "\x00" in content:
        raise CsvBadEncoding("The file contains NUL characters; it is not a text CSV file.")
    reader = csv.reader(io.StringIO(content, newline=""))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != columns:
        raise CsvBadColumns(
            f"The columns must be exactly: {','.join(columns)} (found: {','.join(header or [])})."
        )
    rows: list[tuple[int, dict[str, str]]] = []
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(rows) >= MAX_ROWS:
            raise CsvTooLarge(f"The file has more than {MAX_ROWS} rows; split it.")
        if len(values) != len(columns):
            rows.append((line, {"__width__": str(len(values))}))
            continue
        rows.append(
            (line, {c: unicodedata.normalize("NFC", v.strip()) for c, v in zip(columns, values, strict=True)})
        )
    return rows


def _date(report: Report, line: int, column: str, value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        report.bad(line, column, "not_a_date", f"{value!r} is not a date (YYYY-MM-DD)", value=value)
        return None


def _text(
    report: Report, line: int, column: str, value: str, limit: int, *, required: bool = True
) -> str | None:
    if not value:
        if required:
            report.bad(line, column, "empty", "is empty")
        return None
    if len(value) > limit:
        report.bad(line, column, "too_long", f"is longer than {limit} characters", limit=limit)
        return None
    return value


def _width_ok(report: Report, line: int, row: dict[str, str], columns: tuple[str, ...]) -> bool:
    if "__width__" in row:
        report.bad(
            line,
            "*",
            "wrong_width",
            f"has {row['__width__']} values, not {len(columns)}",
            found=int(row["__width__"]),
            expected=len(columns),
        )
        return False
    return True


def import_students(session: Session, who: Principal, school_id: str, data: bytes) -> int:
    """Enrol every student of the file (classes created as named), or none; returns how many."""
    require_school(session, who, school_id)
    report = Report()
    existing = set(session.scalars(select(Student.code).where(Student.merchant_id == school_id)))
    seen: dict[str, int] = {}
    good: list[dict[str, Any]] = []
    for line, row in read_rows(data, STUDENT_COLUMNS):
        if not _width_ok(report, line, row, STUDENT_COLUMNS):
            continue
        code = row["student_code"]
        if not _CODE.fullmatch(code):
            report.bad(
                line,
                "student_code",
                "bad_code",
                f"{code!r} is not 1 to 20 letters, digits, - or _",
                value=code,
            )
        elif code in seen:
            report.bad(
                line,
                "student_code",
                "duplicate",
                f"{code} is also on line {seen[code]}",
                value=code,
                other_line=seen[code],
            )
        elif code in existing:
            report.bad(
                line,
                "student_code",
                "already_enrolled",
                f"{code} is already a student of this school",
                value=code,
            )
        else:
            seen[code] = line
        name = _text(report, line, "full_name", row["full_name"], 200)
        class_name = _text(report, line, "class", row["class"], 50)
        born = _date(report, line, "date_of_birth", row["date_of_birth"])
        guardian = _text(report, line, "guardian_name", row["guardian_name"], 200, required=False)
        phone, email = row["guardian_phone"] or None, row["guardian_email"] or None
        if phone and not _PHONE.fullmatch(phone):
            report.bad(line, "guardian_phone", "bad_phone", f"{phone!r} is not a phone number", value=phone)
        if email and not _EMAIL.fullmatch(email):
            report.bad(line, "guardian_email", "bad_email", f"{email!r} is not an email address", value=email)
        if (phone or email) and not guardian:
            report.bad(line, "guardian_name", "guardian_missing", "is empty, but a phone or email is given")
        good.append(
            {
                "code": code,
                "name": name,
                "class": class_name,
                "born": born,
                "guardian": guardian,
                "phone": phone,
                "email": email,
            }
        )
    if report.errors:
        raise CsvInvalid(f"{len(report.errors)} problems in the file; nothing was imported.", report.errors)
    classes = {
        c.name: c.id for c in session.scalars(select(SchoolClass).where(SchoolClass.merchant_id == school_id))
    }
    for name in sorted({g["class"] for g in good} - set(classes)):
        classes[name] = new_id("cls")
        session.execute(insert(SchoolClass).values(id=classes[name], merchant_id=school_id, name=name))
    students, guardians = [], []
    for g in good:
        student_id = new_id("stu")
        students.append(
            {
                "id": student_id,
                "merchant_id": school_id,
                "code": g["code"],
                "full_name": g["name"],
                "class_id": classes[g["class"]],
                "date_of_birth": g["born"],
            }
        )
        if g["guardian"]:
            guardians.append(
                {
                    "id": new_id("gdn"),
                    "student_id": student_id,
                    "full_name": g["guardian"],
                    "phone": g["phone"],
                    "email": g["email"],
                    "user_id": None,
                }
            )
    if students:
        session.execute(insert(Student), students)
    if guardians:
        session.execute(insert(Guardian), guardians)
    return len(students)


def _adjustment(report: Report, line: int, row: dict[str, str]) -> Adjustment | None:
    kind, value, reason = row["adjustment_kind"], row["adjustment_value"], row["adjustment_reason"]
    if not kind:
        if value or reason:
            report.bad(line, "adjustment_kind", "kind_missing", "is empty, but a value or reason is given")
        return None
    if kind not in ("discount", "exemption"):
        report.bad(line, "adjustment_kind", "bad_kind", f"{kind!r} is not discount or exemption", value=kind)
        return None
    if not reason:
        report.bad(line, "adjustment_reason", "reason_missing", "a discount or exemption needs its reason")
        return None
    percent = re.fullmatch(r"(\d{1,3})(?:\.(\d{1,2}))?%", value)
    if percent:
        bps = int(percent.group(1)) * 100 + int((percent.group(2) or "0").ljust(2, "0"))
        if bps > 10_000:
            report.bad(line, "adjustment_value", "percent_over_100", "a percentage is at most 100%")
            return None
        return Adjustment(row["item_code"], kind, reason, percent_bps=bps)
    if value.isdigit() and 0 < int(value) <= MAX_AMOUNT:
        return Adjustment(row["item_code"], kind, reason, amount=int(value))
    report.bad(
        line,
        "adjustment_value",
        "bad_value",
        f"{value!r} is not a percentage (10%) or an amount in VND",
        value=value,
    )
    return None


def import_invoices(
    session: Session, who: Principal, school_id: str, data: bytes, *, allow_partial: bool
) -> int:
    """Bill every invoice of the file (one per student and term), or none; returns how many."""
    require_school(session, who, school_id)
    report = Report()
    students = {
        row[0]: row[1]
        for row in session.execute(select(Student.code, Student.id).where(Student.merchant_id == school_id))
    }
    groups: dict[tuple[str, str], list[tuple[int, dict[str, str]]]] = defaultdict(list)
    for line, row in read_rows(data, INVOICE_COLUMNS):
        if not _width_ok(report, line, row, INVOICE_COLUMNS):
            continue
        if row["student_code"] not in students:
            report.bad(
                line,
                "student_code",
                "unknown_student",
                f"{row['student_code']!r} is not a student of this school",
                value=row["student_code"],
            )
            continue
        if not _text(report, line, "term", row["term"], 40):
            continue
        groups[(row["student_code"], row["term"])].append((line, row))
    billed = {
        (row[0], row[1])
        for row in session.execute(
            select(Student.code, Invoice.term)
            .join(Invoice, Invoice.student_id == Student.id)
            .where(Invoice.merchant_id == school_id)
        )
    }
    by_term: dict[str, list[NewInvoice]] = defaultdict(list)
    for (code, term), rows in groups.items():
        first = rows[0][0]
        if (code, term) in billed:
            report.bad(
                first,
                "term",
                "already_billed",
                f"{code} already has an invoice for {term}",
                value=code,
                term=term,
            )
            continue
        due_dates = {row["due_on"] for _, row in rows}
        if len(due_dates) != 1:
            report.bad(
                first,
                "due_on",
                "due_dates_differ",
                f"the rows of {code} for {term} name different due dates",
                value=code,
            )
            continue
        due_on = _date(report, first, "due_on", due_dates.pop())
        items, adjustments, codes = [], [], set()
        for line, row in rows:
            item_code = row["item_code"]
            if not _CODE.fullmatch(item_code):
                report.bad(
                    line,
                    "item_code",
                    "bad_code",
                    f"{item_code!r} is not 1 to 20 letters, digits, - or _",
                    value=item_code,
                )
                continue
            if item_code in codes:
                report.bad(
                    line,
                    "item_code",
                    "duplicate_item",
                    f"{item_code} appears twice on the invoice of {code} for {term}",
                    value=item_code,
                )
                continue
            codes.add(item_code)
            amount = row["amount"]
            if not re.fullmatch(r"-?\d{1,13}", amount):
                report.bad(
                    line, "amount", "not_an_amount", f"{amount!r} is not an amount in VND", value=amount
                )
                continue
            if int(amount) < 0:
                report.bad(line, "amount", "negative_amount", "a fee item cannot be negative")
                continue
            name = _text(report, line, "item_name", row["item_name"], 200)
            items.append(Item(item_code, name or item_code, int(amount)))
            adjustment = _adjustment(report, line, row)
            if adjustment is not None:
                try:
                    invoice_lines([items[-1]], [adjustment])
                    adjustments.append(adjustment)
                except AdjustmentTooLarge as error:
                    report.bad(line, "adjustment_value", "adjustment_too_large", error.detail)
        if due_on is None or not items:
            continue
        try:
            lines = invoice_lines(items, adjustments)
        except ScheduleInvalid as error:
            report.bad(first, "item_code", "item_invalid", error.detail)
            continue
        total = sum(line.amount for line in lines)
        by_term[term].append(NewInvoice(students[code], lines, [(1, due_on, total)]))
    if report.errors:
        report.errors.sort(key=lambda e: e["line"])
        raise CsvInvalid(f"{len(report.errors)} problems in the file; nothing was imported.", report.errors)
    return sum(
        write_invoices(
            session,
            school_id,
            term,
            new,
            schedule_id=None,
            allow_partial=allow_partial,
            late_fee=LateFeeRule(),
        )
        for term, new in by_term.items()
    )
