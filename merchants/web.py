"""The merchants domain's pages: the vendor's stall (live feed, spoken announcements, today's total, the
sign, a code per sale), the parent's children and invoices, and the school accountant's collection.

The pages render what the services give and call the JSON API from their scripts with the session
cookie; the live feed is the API's server-sent events.
"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from hanoipay.auth.service import Role
from hanoipay.db import DbSession
from hanoipay.web.pages import SignedInPage
from merchants.exceptions import WrongMerchantKind
from merchants.models import MerchantKind, MerchantProfile, TransferStatus
from merchants.service import markets, onboarding
from merchants.service.access import require_staff
from merchants.service.markets import SELLERS, business_day
from merchants.service.tuition import invoices, reports, schools
from payments import balances, wallets

page_router = APIRouter(include_in_schema=False)


def _own_merchant(page: SignedInPage, session: DbSession, roles: frozenset[str], kind: str) -> str:
    """The signed-in staff member's merchant, if it is of `kind` and they hold one of `roles` there."""
    who = page.require(Role.VENDOR, Role.OPERATOR)
    merchant_id = who.merchant_id
    assert merchant_id is not None
    require_staff(session, who, merchant_id, roles, staff_ok=False)
    profile = session.get(MerchantProfile, merchant_id)
    if profile is None or profile.kind != kind:
        raise WrongMerchantKind(page.gettext("This page is for another kind of merchant."))
    return merchant_id


@page_router.get("/vendor")
def vendor(
    page: SignedInPage,
    session: DbSession,
    stall: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """The vendor's phone at the stall: payments as they arrive, spoken; today's total; codes and sign."""
    merchant_id = _own_merchant(page, session, SELLERS, MerchantKind.MARKET_VENDOR)
    who = page.who
    assert who is not None
    stalls = markets.list_stalls(session, who, merchant_id=merchant_id, market_id=None)
    chosen = next((s for s in stalls if s.id == stall), stalls[0] if stalls else None)
    summary = (
        markets.daily_summary(session, who, chosen.id, business_day(datetime.now(UTC))) if chosen else None
    )
    waiting = [
        t
        for t in markets.list_transfers(session, who, merchant_id, status=TransferStatus.AWAITING)
        if chosen is None or t.stall_id == chosen.id
    ]
    merchant = onboarding.get_merchant_view(session, who, merchant_id).payee
    return page.render(
        "merchants/vendor.html",
        merchant=merchant,
        stalls=stalls,
        stall=chosen,
        summary=summary,
        waiting=waiting,
    )


@page_router.get("/tuition")
def parent(page: SignedInPage, session: DbSession) -> HTMLResponse:
    """A parent's children, their invoices, payment and receipts; linking a child by code and birth date."""
    who = page.require(Role.CUSTOMER)
    children = [
        (child, invoices.invoices_of_student(session, who, child.id))
        for child in invoices.my_children(session, who)
    ]
    return page.render(
        "merchants/parent.html",
        children=children,
        schools=schools.list_schools(session),
        wallets=[
            (w, balances.balance(session, w.account_id).available) for w in wallets.list_wallets(session, who)
        ],
    )


@page_router.get("/school")
def school(
    page: SignedInPage,
    session: DbSession,
    term: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """The school accountant's desk: collection by class for a term, export, and imports."""
    merchant_id = _own_merchant(page, session, schools.BILLERS, MerchantKind.SCHOOL)
    who = page.who
    assert who is not None
    terms = schools.school_terms(session, merchant_id)
    chosen = term if term in terms else (terms[0] if terms else None)
    rows = reports.collection_by_class(session, who, merchant_id, chosen) if chosen else []
    merchant = onboarding.get_merchant_view(session, who, merchant_id).payee
    return page.render("merchants/school.html", merchant=merchant, terms=terms, term=chosen, rows=rows)
