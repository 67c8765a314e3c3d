"""Markets and stalls over HTTP: signs, sales by dynamic code, transfers to static codes, summaries."""

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import RoleNotAllowed
from hanoipay.db import DbSession
from hanoipay.http import errors, require_json
from merchants.exceptions import (
    MarketNotFound,
    MerchantNotFound,
    StaffRoleRequired,
    StallCodeTaken,
    StallNotFound,
    StallTransferDecided,
    StallTransferNotFound,
    WrongMerchantKind,
)
from merchants.models import Market, Stall
from merchants.schemas.markets import (
    DailySummaryOut,
    MarketCreate,
    MarketOut,
    SaleCreate,
    SaleOut,
    StallCreate,
    StallOut,
    TransferOut,
    TransferReturn,
)
from merchants.service import markets, signs
from payments.exceptions import IdempotencyKeyReused
from payments.idempotency import IdempotencyHeader, run_idempotent

router = APIRouter(prefix="/v1", tags=["markets"], dependencies=[Depends(require_json)])
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}}}
PDF: dict[int | str, dict[str, Any]] = {200: {"content": {"application/pdf": {}}}}


def _stall_out(stall: Stall) -> StallOut:
    return StallOut(
        id=stall.id,
        market_id=stall.market_id,
        code=stall.code,
        name=stall.name,
        merchant_id=stall.merchant_id,
        collection_bank_bin=stall.collection_bank_bin,
        collection_account=stall.collection_account,
        account_name=stall.account_name,
        static_payload=markets.static_payload(stall),
        sign_png_url=f"/v1/stalls/{stall.id}/sign.png",
        sign_pdf_url=f"/v1/stalls/{stall.id}/sign.pdf",
    )


@router.post("/markets", status_code=201, responses=errors(RoleNotAllowed))
def create_market(body: MarketCreate, session: DbSession, who: Caller) -> MarketOut:
    """Open a market (admin, finance)."""
    return MarketOut.model_validate(markets.create_market(session, who, name=body.name, address=body.address))


@router.get("/markets")
def list_markets(session: DbSession, who: Caller) -> list[MarketOut]:
    """Every market."""
    return [MarketOut.model_validate(m) for m in markets.list_markets(session)]


@router.post(
    "/stalls",
    status_code=201,
    responses=errors(RoleNotAllowed, MarketNotFound, WrongMerchantKind, StallCodeTaken),
)
def create_stall(body: StallCreate, session: DbSession, who: Caller) -> StallOut:
    """Open a stall for a market vendor (admin, finance), with its own account for its static code."""
    return _stall_out(markets.create_stall(session, who, **body.model_dump()))


@router.get("/stalls", responses=errors(MerchantNotFound))
def list_stalls(
    session: DbSession,
    who: Caller,
    merchant_id: Annotated[str | None, Query(max_length=40)] = None,
    market_id: Annotated[str | None, Query(max_length=40)] = None,
) -> list[StallOut]:
    """A vendor's stalls (its staff), or a market's (finance)."""
    rows = markets.list_stalls(session, who, merchant_id=merchant_id, market_id=market_id)
    return [_stall_out(s) for s in rows]


@router.get("/stalls/{stall_id}", responses=errors(StallNotFound))
def get_stall(stall_id: str, session: DbSession, who: Caller) -> StallOut:
    """One stall, for its vendor's staff and finance."""
    return _stall_out(markets.get_stall(session, who, stall_id))


def _sign_parts(session: DbSession, who: Caller, stall_id: str) -> tuple[Stall, Market]:
    stall = markets.get_stall(session, who, stall_id)
    market = session.get(Market, stall.market_id)
    assert market is not None
    return stall, market


@router.get(
    "/stalls/{stall_id}/sign.png", response_class=Response, responses={**PNG, **errors(StallNotFound)}
)
def stall_sign_png(stall_id: str, session: DbSession, who: Caller) -> Response:
    """The printable sign (A6, 300 dpi): static VietQR, stall, market, the holder as banks show it."""
    png = signs.render_sign_png(*_sign_parts(session, who, stall_id))
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})


@router.get(
    "/stalls/{stall_id}/sign.pdf", response_class=Response, responses={**PDF, **errors(StallNotFound)}
)
def stall_sign_pdf(stall_id: str, session: DbSession, who: Caller) -> Response:
    """The printable sign as a one-page A6 PDF."""
    stall, market = _sign_parts(session, who, stall_id)
    pdf = signs.render_sign_pdf(stall, market)
    disposition = f'inline; filename="stall-{stall.code}.pdf"'
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": disposition})


@router.post(
    "/stalls/{stall_id}/sales",
    status_code=201,
    response_model=SaleOut,
    responses=errors(StallNotFound, StaffRoleRequired, IdempotencyKeyReused),
)
def start_sale(
    stall_id: str,
    body: SaleCreate,
    request: Request,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """A dynamic VietQR code for one sale (owner, cashier): the bank app fills amount and reference."""

    def work(session: Session) -> SaleOut:
        intent = markets.start_sale(session, who, stall_id, amount=body.amount, description=body.description)
        action = intent.next_action or {}
        assert intent.reference is not None
        assert intent.expires_at is not None
        return SaleOut(
            payment_intent=intent.id,
            status=intent.status,
            amount=intent.amount,
            currency=intent.currency,
            reference=intent.reference,
            payload=str(action.get("payload")),
            qr_png_url=str(action.get("qr_png_url")),
            expires_at=intent.expires_at,
        )

    return run_idempotent(who, request, idempotency_key, body, work, status_code=201)


@router.get("/stalls/{stall_id}/summary", responses=errors(StallNotFound))
def daily_summary(
    stall_id: str,
    session: DbSession,
    who: Caller,
    day: Annotated[date | None, Query(description="A business day in Hanoi; today if omitted")] = None,
) -> DailySummaryOut:
    """What the stall took on a business day, and transfers still waiting for the vendor."""
    on = day or markets.business_day(datetime.now(UTC))
    return DailySummaryOut.model_validate(markets.daily_summary(session, who, stall_id, on))


@router.get("/merchants/{merchant_id}/stall_transfers", responses=errors(MerchantNotFound))
def list_transfers(
    merchant_id: str,
    session: DbSession,
    who: Caller,
    status: Annotated[str | None, Query(max_length=24)] = None,
) -> list[TransferOut]:
    """Transfers to the vendor's stall codes, newest first."""
    rows = markets.list_transfers(session, who, merchant_id, status=status)
    return [TransferOut.model_validate(t) for t in rows]


@router.post(
    "/stall_transfers/{transfer_id}/confirm",
    response_model=TransferOut,
    responses=errors(StallTransferNotFound, StallTransferDecided, StaffRoleRequired, IdempotencyKeyReused),
)
def confirm_transfer(
    transfer_id: str,
    request: Request,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """The vendor confirms a transfer to the stall's code as a sale (owner, cashier); it is paid to them."""
    return run_idempotent(
        who,
        request,
        idempotency_key,
        None,
        lambda session: TransferOut.model_validate(markets.confirm_transfer(session, who, transfer_id)),
    )


@router.post(
    "/stall_transfers/{transfer_id}/return",
    response_model=TransferOut,
    responses=errors(StallTransferNotFound, StallTransferDecided, StaffRoleRequired, IdempotencyKeyReused),
)
def return_transfer(
    transfer_id: str,
    body: TransferReturn,
    request: Request,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """The vendor sends a transfer it does not recognise back to the payer (owner, cashier)."""
    return run_idempotent(
        who,
        request,
        idempotency_key,
        body,
        lambda session: TransferOut.model_validate(
            markets.return_transfer(session, who, transfer_id, reason=body.reason)
        ),
    )
