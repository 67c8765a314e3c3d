"""The finance page: the day's close at a glance, runs and their progress, statement uploads, charts, and
the cases to work, each with the lines on both sides.

Pages call the same services as the API, for finance only. The run's progress is polled by a little
script from the JSON API (with the session cookie); everything else is a server-rendered form.
"""

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from hanoipay.auth.service import Principal, Role, full_names
from hanoipay.db import DbSession
from hanoipay.errors import HanoiPayError
from hanoipay.localtime import HANOI
from hanoipay.web.pages import PageContext, SignedInPage
from reconciliation import cases, charts, reports, run_reads, runs, statements
from reconciliation.models import Case, CaseStatus, Provider

BASE = "/finance/reconciliation"
page_router = APIRouter(include_in_schema=False)
Day = Annotated[date | None, Form()]


def _day(value: date | None) -> date:
    return value or datetime.now(HANOI).date()


def _labels(page: PageContext) -> dict[str, Any]:
    _ = page.gettext
    return {
        "daily_title": _("Matched and unmatched amounts per day"),
        "daily_description": _("Green bars: matched; red bars: not matched, for the last seven days."),
        "ages_title": _("Open cases by age"),
        "ages_description": _("How many cases have been open for how long."),
        "age_labels": [_("under 1 day"), _("1 to 3 days"), _("3 to 7 days"), _("over 7 days")],
    }


def _close_page(
    page: PageContext,
    session: DbSession,
    who: Principal,
    day: date,
    *,
    notice: str | None = None,
    error: HanoiPayError | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    close = reports.daily_close(session, who, day)
    day_runs = run_reads.list_runs(
        session, who, provider=None, business_day=day, limit=10, starting_after=None
    )
    open_cases = session.scalars(
        select(Case).where(Case.status != CaseStatus.RESOLVED).order_by(Case.id.desc()).limit(100)
    ).all()
    return page.render(
        "reconciliation/finance.html",
        status_code=status_code,
        day=day,
        previous_day=day - timedelta(days=1),
        next_day=day + timedelta(days=1),
        close=close,
        runs=[(run, run_reads.progress(session, run)) for run in day_runs.items],
        files=statements.list_statements(session, who, limit=5, starting_after=None).items,
        cases=open_cases,
        providers=list(Provider),
        formats=list(statements.FORMATS),
        notice=notice,
        error=error,
        **charts.chart_context(session, day, datetime.now(UTC), _labels(page)),
    )


@page_router.get(BASE)
def finance_page(
    page: SignedInPage, session: DbSession, day: date | None = None, notice: str | None = None
) -> HTMLResponse:
    """The day's close, its runs, the statement upload, the charts and the open cases."""
    who = page.require(Role.FINANCE)
    return _close_page(page, session, who, _day(day), notice=notice)


@page_router.post(BASE + "/runs", response_model=None)
def start_run(
    page: SignedInPage,
    session: DbSession,
    provider: Annotated[Provider, Form()],
    business_day: Day = None,
) -> HTMLResponse | RedirectResponse:
    """Queue a run of the day for a provider, then show the page where its progress runs."""
    who = page.require(Role.FINANCE)
    day = _day(business_day)
    try:
        runs.create_run(session, who, provider=provider, business_day=day)
    except HanoiPayError as error:
        return _close_page(page, session, who, day, error=error, status_code=error.status)
    return page.redirect(f"{BASE}?day={day.isoformat()}&notice=run_queued")


@page_router.post(BASE + "/statements", response_model=None)
def upload_statement(
    page: SignedInPage,
    session: DbSession,
    file: Annotated[UploadFile, File()],
    format: Annotated[str, Form(max_length=32)],
    business_day: Day = None,
) -> HTMLResponse | RedirectResponse:
    """Load a statement file; a bad file is refused whole, with the lines that are wrong."""
    who = page.require(Role.FINANCE)
    day = _day(business_day)
    if format not in statements.FORMATS:
        format = "bank_csv"
    data = file.file.read(statements.MAX_BYTES + 1)
    try:
        stored = statements.upload_statement(
            session, who, format=format, filename=(file.filename or "statement")[:255], data=data
        )
    except HanoiPayError as error:
        session.rollback()
        return _close_page(page, session, who, day, error=error, status_code=error.status)
    notice = "duplicate_file" if stored.duplicate else "file_loaded"
    return page.redirect(f"{BASE}?day={day.isoformat()}&notice={notice}")


@page_router.get(BASE + "/cases/{case_id}")
def case_page(page: SignedInPage, session: DbSession, case_id: str) -> HTMLResponse:
    """One case: why, the lines on each side, its trail, and what finance can do with it."""
    who = page.require(Role.FINANCE)
    return _case(page, session, who, case_id)


def _case(
    page: PageContext,
    session: DbSession,
    who: Principal,
    case_id: str,
    *,
    error: HanoiPayError | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    case = cases.get_case(session, who, case_id)
    lines = cases.case_lines(session, case)
    events = cases.case_events(session, case.id)
    return page.render(
        "reconciliation/case.html",
        status_code=status_code,
        case=case,
        provider_line=lines["provider_line"],
        ledger_entry=lines["ledger_entry"],
        events=events,
        names=full_names(session, [case.resolved_by, *(event.actor_id for event in events)]),
        error=error,
    )


@page_router.post(BASE + "/cases/{case_id}/{action}", response_model=None)
def act_on_case(
    page: SignedInPage,
    session: DbSession,
    case_id: str,
    action: str,
    note: Annotated[str, Form(max_length=2000)] = "",
    resolution: Annotated[str, Form(max_length=16)] = "",
) -> HTMLResponse | RedirectResponse:
    """Acknowledge, comment on or resolve a case from its page."""
    who = page.require(Role.FINANCE)
    note = note.strip()
    try:
        if action == "acknowledge":
            cases.acknowledge(session, who, case_id, note or None)
        elif action == "comment" and note:
            cases.comment(session, who, case_id, note)
        elif action == "resolve" and note and resolution in ("write_off", "manual_match", "refund"):
            cases.resolve(session, who, case_id, resolution, note)
        else:
            raise cases.NoteRequired(page.gettext("Write a note and choose what to do."))
    except HanoiPayError as error:
        session.rollback()
        return _case(page, session, who, case_id, error=error, status_code=error.status)
    return page.redirect(f"{BASE}/cases/{case_id}")
