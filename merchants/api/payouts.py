"""Settlements, merchants' payouts and statements over HTTP."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import RoleNotAllowed
from hanoipay.db import DbSession
from hanoipay.http import errors, require_json
from hanoipay.pagination import Cursor
from merchants.exceptions import (
    MerchantNotFound,
    MerchantNotVerified,
    StaffRoleRequired,
    StatementPeriodInvalid,
)
from merchants.schemas.payouts import MerchantPayoutOut, SettlementOut, StatementOut, StatementRowOut
from merchants.service import documents, settlement, statements
from payments.exceptions import IdempotencyKeyReused
from payments.idempotency import IdempotencyHeader, run_idempotent

router = APIRouter(prefix="/v1", tags=["payouts and statements"], dependencies=[Depends(require_json)])
Start = Annotated[date, Query(alias="from", description="First business day (Hanoi), inclusive")]
End = Annotated[date, Query(alias="to", description="Last business day (Hanoi), inclusive")]


@router.post(
    "/merchants/{merchant_id}/settlements",
    response_model=SettlementOut,
    responses=errors(RoleNotAllowed, MerchantNotFound, MerchantNotVerified, IdempotencyKeyReused),
)
def run_settlement(
    merchant_id: str,
    request: Request,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Run today's settlement of a merchant now (finance); a second run the same day returns the first."""
    return run_idempotent(
        who,
        request,
        idempotency_key,
        None,
        lambda session: SettlementOut.model_validate(settlement.run_settlement(session, who, merchant_id)),
    )


@router.get("/merchants/{merchant_id}/settlements", responses=errors(MerchantNotFound, StaffRoleRequired))
def list_settlements(merchant_id: str, session: DbSession, who: Caller) -> list[SettlementOut]:
    """The merchant's daily settlement runs, newest first (owner, accountant, finance)."""
    return [SettlementOut.model_validate(s) for s in settlement.list_settlements(session, who, merchant_id)]


@router.get("/merchants/{merchant_id}/payouts", responses=errors(MerchantNotFound, StaffRoleRequired))
def list_payouts(merchant_id: str, session: DbSession, who: Caller) -> list[MerchantPayoutOut]:
    """The merchant's payouts and where each stands (owner, accountant, finance)."""
    return [
        MerchantPayoutOut.model_validate(p)
        for p in settlement.list_merchant_payouts(session, who, merchant_id)
    ]


STATEMENT_ERRORS = errors(MerchantNotFound, StaffRoleRequired, StatementPeriodInvalid)


@router.get("/merchants/{merchant_id}/statement", responses=STATEMENT_ERRORS)
def get_statement(
    merchant_id: str,
    session: DbSession,
    who: Caller,
    start: Start,
    end: End,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    starting_after: Cursor = None,
) -> StatementOut:
    """The statement for a period: opening balance, a page of movements, totals, closing balance."""
    found = statements.statement(
        session, who, merchant_id, start, end, limit=limit, starting_after=starting_after
    )
    return StatementOut(
        merchant_id=found.merchant_id,
        merchant_name=found.merchant_name,
        currency=found.currency,
        start=found.start,
        end=found.end,
        opening_balance=found.opening_balance,
        closing_balance=found.closing_balance,
        totals=found.totals,
        data=[StatementRowOut.model_validate(r, from_attributes=True) for r in found.rows],
        has_more=found.has_more,
        next_cursor=found.next_cursor,
    )


@router.get(
    "/merchants/{merchant_id}/statement.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **STATEMENT_ERRORS},
)
def statement_csv(merchant_id: str, session: DbSession, who: Caller, start: Start, end: End) -> Response:
    """The whole period's statement as CSV (columns in docs/merchants.md)."""
    found = statements.statement(session, who, merchant_id, start, end, limit=None)
    name = f"statement-{merchant_id}-{start.isoformat()}-{end.isoformat()}.csv"
    return Response(
        documents.statement_csv(found),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/merchants/{merchant_id}/statement.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, **STATEMENT_ERRORS},
)
def statement_pdf(merchant_id: str, session: DbSession, who: Caller, start: Start, end: End) -> Response:
    """The whole period's statement as PDF."""
    found = statements.statement(session, who, merchant_id, start, end, limit=None)
    return Response(documents.statement_pdf(found), media_type="application/pdf")
