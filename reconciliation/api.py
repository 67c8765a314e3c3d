"""The finance API of reconciliation: runs, statements, results, cases, the daily close, CSV exports.

Finance role only: anyone else is refused with 403 `role_not_allowed`.
"""

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import select

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import Role, RoleNotAllowed
from hanoipay.db import DbSession
from hanoipay.http import errors, require_json
from hanoipay.pagination import Cursor, Limit
from payments.exceptions import IdempotencyKeyReused
from payments.idempotency import IdempotencyHeader, run_idempotent
from reconciliation import cases, reports, run_reads, runs, statements
from reconciliation.exceptions import (
    BusinessDayOutOfRange,
    CaseNotFound,
    CaseResolved,
    MalformedStatement,
    ResolutionNotApplicable,
    RunInProgress,
    RunNotFound,
    StatementTooLarge,
    UnsupportedStatementCurrency,
)
from reconciliation.models import Case, ResultLine, Run
from reconciliation.schemas import (
    CaseAssign,
    CaseComment,
    CaseDetail,
    CaseEventOut,
    CaseList,
    CaseNote,
    CaseOut,
    CaseResolve,
    DailyCloseOut,
    DryRunOut,
    ProgressOut,
    ProviderLineOut,
    ResultList,
    ResultOut,
    RunCreate,
    RunList,
    RunOut,
    StatementList,
    StatementOut,
)

router = APIRouter(prefix="/v1/reconciliation", tags=["reconciliation"])
json_router = APIRouter(
    prefix="/v1/reconciliation", tags=["reconciliation"], dependencies=[Depends(require_json)]
)


def run_out(session: DbSession, run: Run) -> RunOut:
    """A run with its progress."""
    progress = run_reads.progress(session, run)
    return RunOut.model_validate(run).model_copy(update={"progress": ProgressOut(**progress.__dict__)})


@json_router.post(
    "/runs",
    status_code=202,
    response_model=RunOut | DryRunOut,
    responses=errors(RoleNotAllowed, RunInProgress, BusinessDayOutOfRange),
)
def create_run(body: RunCreate, session: DbSession, who: Caller) -> Response:
    """Queue a run of a provider's business day, or with `dry_run` show at once what it would find."""
    if body.dry_run:
        found = run_reads.dry_run(
            session, who, provider=body.provider, business_day=body.business_day, rules=body.rules
        )
        return JSONResponse(DryRunOut.model_validate(found).model_dump(mode="json"), status_code=200)
    run = runs.create_run(
        session,
        who,
        provider=body.provider,
        business_day=body.business_day,
        rules=body.rules,
        parallelism=body.parallelism,
    )
    session.flush()
    session.refresh(run)
    return JSONResponse(run_out(session, run).model_dump(mode="json"), status_code=202)


@router.get("/runs", responses=errors(RoleNotAllowed))
def list_runs(
    session: DbSession,
    who: Caller,
    limit: Limit = 25,
    starting_after: Cursor = None,
    provider: Literal["stripe", "vietqr"] | None = None,
    business_day: date | None = None,
) -> RunList:
    """Runs, newest first."""
    page = run_reads.list_runs(
        session, who, provider=provider, business_day=business_day, limit=limit, starting_after=starting_after
    )
    return RunList(
        data=[run_out(session, r) for r in page.items], has_more=page.has_more, next_cursor=page.next_cursor
    )


@router.get("/runs/{run_id}", responses=errors(RoleNotAllowed, RunNotFound))
def get_run(run_id: str, session: DbSession, who: Caller) -> RunOut:
    """A run: its status, its progress while it runs, and its summary (counts and amounts per result)."""
    return run_out(session, run_reads.get_run(session, who, run_id))


@router.get("/runs/{run_id}/results", responses=errors(RoleNotAllowed, RunNotFound))
def list_results(
    run_id: str,
    session: DbSession,
    who: Caller,
    limit: Limit = 25,
    starting_after: Annotated[int | None, Query(ge=0)] = None,
    result: Annotated[str | None, Query(max_length=24)] = None,
) -> ResultList:
    """How each line of the run ended, in order, optionally of one result."""
    run = run_reads.get_run(session, who, run_id)
    query = select(ResultLine).where(ResultLine.run_id == run.id).order_by(ResultLine.id).limit(limit + 1)
    if result:
        query = query.where(ResultLine.result == result)
    if starting_after is not None:
        query = query.where(ResultLine.id > starting_after)
    rows = list(session.scalars(query))
    page = rows[:limit]
    return ResultList(
        data=[ResultOut.model_validate(r) for r in page],
        has_more=len(rows) > limit,
        next_cursor=str(page[-1].id) if len(rows) > limit else None,
    )


@router.get(
    "/runs/{run_id}/lines.csv",
    response_class=StreamingResponse,
    responses={**errors(RoleNotAllowed, RunNotFound), 200: {"content": {"text/csv": {}}}},
)
def export_lines(run_id: str, session: DbSession, who: Caller) -> StreamingResponse:
    """Every line of a run with its result and reason, as CSV."""
    run = run_reads.get_run(session, who, run_id)
    return StreamingResponse(
        reports.stream_csv(reports.LINES_CSV, (run.id,)),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{run.id}-lines.csv"'},
    )


@router.post(
    "/statements",
    status_code=201,
    responses=errors(RoleNotAllowed, MalformedStatement, UnsupportedStatementCurrency, StatementTooLarge),
)
def upload_statement(
    session: DbSession,
    who: Caller,
    file: Annotated[UploadFile, File(description="The statement file")],
    format: Annotated[Literal["stripe_balance_csv", "bank_csv", "camt053"], Form()],
) -> Response:
    """Upload a statement (multipart `file` and `format`); the same file again changes nothing."""
    who.require(Role.FINANCE)
    data = file.file.read(statements.MAX_BYTES + 1)
    name = (file.filename or "statement")[:255].replace("\x00", "")
    stored = statements.upload_statement(session, who, format=format, filename=name, data=data)
    out = StatementOut.model_validate(stored.file, from_attributes=True).model_copy(
        update={"duplicate": stored.duplicate, "new_lines": stored.new_lines}
    )
    return JSONResponse(out.model_dump(mode="json"), status_code=200 if stored.duplicate else 201)


@router.get("/statements", responses=errors(RoleNotAllowed))
def list_statements(
    session: DbSession, who: Caller, limit: Limit = 25, starting_after: Cursor = None
) -> StatementList:
    """Uploaded statement files, newest first."""
    page = statements.list_statements(session, who, limit=limit, starting_after=starting_after)
    return StatementList(
        data=[StatementOut.model_validate(f, from_attributes=True) for f in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor,
    )


@router.get("/cases", responses=errors(RoleNotAllowed))
def list_cases(
    session: DbSession,
    who: Caller,
    limit: Limit = 25,
    starting_after: Cursor = None,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    provider: Literal["stripe", "vietqr"] | None = None,
    business_day: date | None = None,
) -> CaseList:
    """Cases, newest first, by status, provider and day."""
    page = cases.list_cases(
        session,
        who,
        status=status,
        provider=provider,
        business_day=business_day,
        limit=limit,
        starting_after=starting_after,
    )
    return CaseList(
        data=[CaseOut.model_validate(c) for c in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor,
    )


@router.get(
    "/cases.csv",
    response_class=StreamingResponse,
    responses={**errors(RoleNotAllowed), 200: {"content": {"text/csv": {}}}},
)
def export_cases(
    session: DbSession,
    who: Caller,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    business_day: date | None = None,
) -> StreamingResponse:
    """Cases as CSV, by day and status."""
    who.require(Role.FINANCE)
    return StreamingResponse(
        reports.stream_csv(reports.CASES_CSV, (business_day, business_day, status, status)),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="cases.csv"'},
    )


def case_detail(session: DbSession, case: Case) -> CaseDetail:
    """A case with the lines on each side and its trail."""
    lines = cases.case_lines(session, case)
    line = lines["provider_line"]
    return CaseDetail.model_validate(case).model_copy(
        update={
            "provider_line": ProviderLineOut.model_validate(line) if line is not None else None,
            "ledger_entry": lines["ledger_entry"],
            "events": [CaseEventOut.model_validate(e) for e in cases.case_events(session, case.id)],
        }
    )


@router.get("/cases/{case_id}", responses=errors(RoleNotAllowed, CaseNotFound))
def get_case(case_id: str, session: DbSession, who: Caller) -> CaseDetail:
    """A case: why, the exact lines on each side, and who did what."""
    return case_detail(session, cases.get_case(session, who, case_id))


CASE_ERRORS = (RoleNotAllowed, CaseNotFound, CaseResolved)


@json_router.post("/cases/{case_id}/assign", responses=errors(*CASE_ERRORS, cases.AssigneeNotFinance))
def assign_case(case_id: str, body: CaseAssign, session: DbSession, who: Caller) -> CaseDetail:
    """Give the case to a member of finance staff."""
    return case_detail(session, cases.assign(session, who, case_id, body.assignee_id, body.note))


@json_router.post("/cases/{case_id}/acknowledge", responses=errors(*CASE_ERRORS))
def acknowledge_case(
    case_id: str, session: DbSession, who: Caller, body: CaseNote | None = None
) -> CaseDetail:
    """Say the case is seen and being worked on."""
    return case_detail(session, cases.acknowledge(session, who, case_id, body.note if body else None))


@json_router.post("/cases/{case_id}/comments", responses=errors(*CASE_ERRORS))
def comment_case(case_id: str, body: CaseComment, session: DbSession, who: Caller) -> CaseDetail:
    """Add a comment to the case's trail."""
    return case_detail(session, cases.comment(session, who, case_id, body.note))


@json_router.post(
    "/cases/{case_id}/resolve",
    response_model=CaseDetail,
    responses=errors(*CASE_ERRORS, ResolutionNotApplicable, IdempotencyKeyReused),
)
def resolve_case(
    case_id: str,
    body: CaseResolve,
    request: Request,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Resolve the case once, posting the correcting ledger entries its resolution calls for."""
    return run_idempotent(
        who,
        request,
        idempotency_key,
        body,
        lambda session: case_detail(
            session, cases.resolve(session, who, case_id, body.resolution, body.note)
        ),
    )


@router.get("/close", responses=errors(RoleNotAllowed))
def daily_close(session: DbSession, who: Caller, business_day: date) -> DailyCloseOut:
    """The daily close: every provider reconciled for the day or not, open cases and their amounts."""
    return DailyCloseOut.model_validate(reports.daily_close(session, who, business_day))
