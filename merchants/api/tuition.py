"""Tuition over HTTP: the school's students, schedules, invoices and reports; the parent's children,
invoices, payments and receipts."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from hanoipay.auth.deps import Caller
from hanoipay.db import DbSession
from hanoipay.http import errors, raw_body, require_json
from hanoipay.pagination import Cursor, Limit
from hanoipay.settings import get_settings
from merchants.exceptions import (
    AdjustmentTooLarge,
    AmountExceedsBalance,
    CsvBadColumns,
    CsvBadEncoding,
    CsvInvalid,
    CsvTooLarge,
    InvoiceNotFound,
    InvoicePaid,
    MerchantNotFound,
    PartialPaymentNotAllowed,
    ScheduleInvalid,
    ScheduleNotFound,
    StaffRoleRequired,
    StudentCodeTaken,
    StudentNotFound,
    TermTaken,
    WrongMerchantKind,
)
from merchants.models import Invoice
from merchants.schemas.tuition import (
    AdjustmentCreate,
    AdjustmentOut,
    ClassCollectionOut,
    ClassOut,
    Generated,
    GenerateInvoices,
    GuardianLink,
    Imported,
    InstallmentOut,
    InvoiceDetail,
    InvoiceLineOut,
    InvoiceList,
    InvoiceOut,
    InvoicePay,
    InvoicePaymentOut,
    InvoiceQr,
    ScheduleCreate,
    ScheduleOut,
    StudentCreate,
    StudentOut,
)
from merchants.service.markets import business_day
from merchants.service.tuition import imports, invoices, reports, schools
from merchants.service.tuition.billing import Adjustment, Item, LateFeeRule, Share
from merchants.service.tuition.payments import pay_invoice
from payments.exceptions import IdempotencyKeyReused, InsufficientFunds, PaymentFailed, WalletNotFound
from payments.idempotency import IdempotencyHeader, run_idempotent
from payments.providers.vietqr.image import render_png
from payments.schemas import PaymentIntentOut

router = APIRouter(prefix="/v1", tags=["tuition"], dependencies=[Depends(require_json)])
files = APIRouter(prefix="/v1", tags=["tuition"])
SCHOOL = errors(MerchantNotFound, StaffRoleRequired, WrongMerchantKind)
CSV_ERRORS = errors(
    MerchantNotFound, StaffRoleRequired, CsvInvalid, CsvBadColumns, CsvBadEncoding, CsvTooLarge
)
PDF: dict[int | str, dict[str, Any]] = {200: {"content": {"application/pdf": {}}}}


@router.get("/schools/{school_id}/classes", responses=SCHOOL)
def list_classes(school_id: str, session: DbSession, who: Caller) -> list[ClassOut]:
    """The school's classes."""
    return [ClassOut.model_validate(c) for c in schools.list_classes(session, who, school_id)]


@router.get("/schools/{school_id}/students", responses=SCHOOL)
def find_students(
    school_id: str,
    session: DbSession,
    who: Caller,
    code: Annotated[str | None, Query(max_length=20)] = None,
    class_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[StudentOut]:
    """The school's students, found by code or class (the school's staff)."""
    rows = schools.find_students(session, who, school_id, code=code, class_id=class_id, limit=limit)
    return [StudentOut.model_validate(s) for s in rows]


@router.post("/schools/{school_id}/students", status_code=201, responses=errors(StudentCodeTaken) | SCHOOL)
def add_student(school_id: str, body: StudentCreate, session: DbSession, who: Caller) -> StudentOut:
    """Enrol a student with their guardians (owner, accountant)."""
    student = schools.add_student(
        session,
        who,
        school_id,
        code=body.code,
        full_name=body.full_name,
        class_name=body.class_name,
        date_of_birth=body.date_of_birth,
        guardians=[g.model_dump() for g in body.guardians],
    )
    return StudentOut.model_validate(student)


@router.post(
    "/schools/{school_id}/fee_schedules",
    status_code=201,
    responses=errors(ScheduleInvalid, TermTaken) | SCHOOL,
)
def create_schedule(school_id: str, body: ScheduleCreate, session: DbSession, who: Caller) -> ScheduleOut:
    """A fee schedule for a term: items, installments, partial payments, late-fee rule (owner, accountant)."""
    schedule = schools.create_schedule(
        session,
        who,
        school_id,
        term=body.term,
        name=body.name,
        items=[Item(i.code, i.name, i.amount) for i in body.items],
        installments=[Share(i.due_on, i.share_bps) for i in body.installments],
        allow_partial=body.allow_partial,
        late_fee=LateFeeRule(body.late_fee.kind, body.late_fee.value, body.late_fee.grace_days),
    )
    return ScheduleOut.model_validate(schedule)


@router.post(
    "/schools/{school_id}/students/{student_id}/adjustments",
    status_code=201,
    responses=errors(StudentNotFound, ScheduleNotFound, ScheduleInvalid, AdjustmentTooLarge) | SCHOOL,
)
def add_adjustment(
    school_id: str, student_id: str, body: AdjustmentCreate, session: DbSession, who: Caller
) -> AdjustmentOut:
    """A discount or exemption for a policy student on one item of a schedule, with its reason."""
    adjustment = Adjustment(body.item_code, body.kind, body.reason, body.percent_bps, body.amount)
    row = schools.add_adjustment(session, who, school_id, student_id, body.schedule_id, adjustment)
    return AdjustmentOut.model_validate(row)


@router.post(
    "/schools/{school_id}/fee_schedules/{schedule_id}/invoices",
    response_model=Generated,
    responses=errors(ScheduleNotFound, AdjustmentTooLarge, IdempotencyKeyReused) | SCHOOL,
)
def generate_invoices(
    school_id: str,
    schedule_id: str,
    request: Request,
    who: Caller,
    body: GenerateInvoices | None = None,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Bill the schedule's term to every student (or some classes) not billed for it yet."""
    body = body or GenerateInvoices()
    return run_idempotent(
        who,
        request,
        idempotency_key,
        body,
        lambda session: Generated(
            created=invoices.generate_invoices(session, who, school_id, schedule_id, class_ids=body.class_ids)
        ),
    )


@router.get("/schools/{school_id}/invoices", responses=SCHOOL)
def list_invoices(
    school_id: str,
    session: DbSession,
    who: Caller,
    status: Annotated[str | None, Query(max_length=16)] = None,
    limit: Limit = 25,
    starting_after: Cursor = None,
) -> InvoiceList:
    """The school's invoices, newest first."""
    rows, has_more = invoices.list_invoices(
        session, who, school_id, status=status, limit=limit, starting_after=starting_after
    )
    return InvoiceList(
        data=[InvoiceOut.model_validate(i) for i in rows],
        has_more=has_more,
        next_cursor=rows[-1].id if has_more else None,
    )


@router.get("/schools/{school_id}/collection", responses=SCHOOL)
def collection(
    school_id: str, session: DbSession, who: Caller, term: Annotated[str, Query(min_length=1, max_length=40)]
) -> list[ClassCollectionOut]:
    """Collection by class for a term: paid, partly paid, unpaid; billed and collected."""
    rows = reports.collection_by_class(session, who, school_id, term)
    return [ClassCollectionOut.model_validate(r, from_attributes=True) for r in rows]


@router.get(
    "/schools/{school_id}/collection.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **SCHOOL},
)
def collection_csv(
    school_id: str, session: DbSession, who: Caller, term: Annotated[str, Query(min_length=1, max_length=40)]
) -> Response:
    """Collection by class as CSV (columns in docs/merchants.md)."""
    content = reports.collection_csv(reports.collection_by_class(session, who, school_id, term))
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="collection.csv"'},
    )


@files.post("/schools/{school_id}/imports/students", responses=CSV_ERRORS)
def import_students(
    school_id: str, body: Annotated[bytes, Depends(raw_body)], session: DbSession, who: Caller
) -> Imported:
    """Enrol students from a UTF-8 CSV file (text/csv body): every bad row reported, or all enrolled."""
    return Imported(imported=imports.import_students(session, who, school_id, body))


@files.post("/schools/{school_id}/imports/invoices", responses=CSV_ERRORS)
def import_invoices(
    school_id: str,
    body: Annotated[bytes, Depends(raw_body)],
    session: DbSession,
    who: Caller,
    allow_partial: bool = False,
) -> Imported:
    """Bill invoices from a UTF-8 CSV file; every bad row is reported, or all are billed."""
    return Imported(
        imported=imports.import_invoices(session, who, school_id, body, allow_partial=allow_partial)
    )


# Parents -----------------------------------------------------------------------------------------------


@router.post("/schools/{school_id}/guardian_links", responses=errors(StudentNotFound))
def link_child(school_id: str, body: GuardianLink, session: DbSession, who: Caller) -> StudentOut:
    """A parent links their account to their child with the student code and date of birth."""
    return StudentOut.model_validate(
        invoices.link_guardian(session, who, school_id, body.student_code, body.date_of_birth)
    )


@router.get("/children")
def my_children(session: DbSession, who: Caller) -> list[StudentOut]:
    """The students the caller is a linked guardian of."""
    return [StudentOut.model_validate(s) for s in invoices.my_children(session, who)]


@router.get("/students/{student_id}/invoices", responses=errors(StudentNotFound))
def student_invoices(student_id: str, session: DbSession, who: Caller) -> list[InvoiceOut]:
    """A student's invoices, for their guardians and the school."""
    return [InvoiceOut.model_validate(i) for i in invoices.invoices_of_student(session, who, student_id)]


def _detail(session: DbSession, invoice: Invoice) -> InvoiceDetail:
    lines, parts, paid = invoices.invoice_details(session, invoice)
    return InvoiceDetail(
        **InvoiceOut.model_validate(invoice).model_dump(),
        remaining_amount=invoices.remaining(invoice),
        due_now_amount=invoices.due_now_amount(parts, invoice, business_day(datetime.now(UTC))),
        lines=[InvoiceLineOut.model_validate(x) for x in lines],
        installments=[InstallmentOut.model_validate(x) for x in parts],
        payments=[InvoicePaymentOut.model_validate(x) for x in paid],
        receipt_pdf_url=f"/v1/invoices/{invoice.id}/receipt.pdf",
        vietqr_png_url=f"/v1/invoices/{invoice.id}/vietqr.png",
    )


@router.get("/invoices/{invoice_id}", responses=errors(InvoiceNotFound))
def get_invoice(invoice_id: str, session: DbSession, who: Caller) -> InvoiceDetail:
    """An invoice with its lines, installments, payments and what is left."""
    return _detail(session, invoices.get_invoice(session, who, invoice_id))


@router.post(
    "/invoices/{invoice_id}/payments",
    status_code=201,
    response_model=PaymentIntentOut,
    responses=errors(
        InvoiceNotFound,
        InvoicePaid,
        AmountExceedsBalance,
        PartialPaymentNotAllowed,
        InsufficientFunds,
        PaymentFailed,
        WalletNotFound,
        IdempotencyKeyReused,
    ),
)
def pay(
    invoice_id: str,
    body: InvoicePay,
    request: Request,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Pay an invoice by wallet (at once), VietQR (a code to scan) or card; all that is left by default."""
    return run_idempotent(
        who,
        request,
        idempotency_key,
        body,
        lambda session: PaymentIntentOut.model_validate(
            pay_invoice(
                session,
                who,
                invoice_id,
                amount=body.amount,
                provider=body.provider,
                wallet_id=body.wallet_id,
                payment_method=body.payment_method,
            )
        ),
        status_code=201,
        keep_on=PaymentFailed,
    )


@router.get("/invoices/{invoice_id}/vietqr", responses=errors(InvoiceNotFound, InvoicePaid))
def invoice_qr(invoice_id: str, session: DbSession, who: Caller) -> InvoiceQr:
    """A VietQR code for what is left, with the invoice code as the reference (for any bank app)."""
    invoice = invoices.get_invoice(session, who, invoice_id)
    if invoices.remaining(invoice) == 0:
        raise InvoicePaid(f"Invoice {invoice.code} is paid in full.")
    settings = get_settings()
    return InvoiceQr(
        payload=invoices.invoice_payload(invoice),
        reference=invoice.code,
        amount=invoices.remaining(invoice),
        account=settings.vietqr_account,
        account_name=settings.vietqr_account_name,
        bank_bin=settings.vietqr_bank_bin,
    )


@router.get(
    "/invoices/{invoice_id}/vietqr.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **errors(InvoiceNotFound, InvoicePaid)},
)
def invoice_qr_png(invoice_id: str, session: DbSession, who: Caller) -> Response:
    """The invoice's VietQR code as an image, captioned with the amount and reference."""
    qr = invoice_qr(invoice_id, session, who)
    png = render_png(
        qr.payload,
        bank_short_name="",
        account_holder=qr.account_name,
        amount=qr.amount,
        reference=qr.reference,
    )
    return Response(png, media_type="image/png")


@router.get(
    "/invoices/{invoice_id}/receipt.pdf",
    response_class=Response,
    responses={**PDF, **errors(InvoiceNotFound)},
)
def receipt(invoice_id: str, session: DbSession, who: Caller) -> Response:
    """The invoice's receipt: school, student, items, payments, paid and remaining."""
    invoice = invoices.get_invoice(session, who, invoice_id)
    return Response(
        reports.receipt_pdf(session, invoice),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="receipt-{invoice.code}.pdf"'},
    )
