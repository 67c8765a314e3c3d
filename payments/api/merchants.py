"""HTTP API of the payees the core knows: registering and reading merchants."""

from fastapi import APIRouter, Depends, Request, Response

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import RoleNotAllowed
from hanoipay.db import DbSession
from hanoipay.http import errors, require_json
from payments import merchants
from payments.exceptions import (
    IdempotencyKeyReused,
    MerchantNotFound,
    UnknownBank,
    UnsupportedCurrency,
)
from payments.idempotency import IdempotencyHeader, run_idempotent
from payments.schemas import (
    MerchantCreate,
    MerchantOut,
)

router = APIRouter(prefix="/v1", dependencies=[Depends(require_json)])


@router.post(
    "/merchants",
    status_code=201,
    tags=["merchants"],
    response_model=MerchantOut,
    responses=errors(RoleNotAllowed, UnsupportedCurrency, UnknownBank, IdempotencyKeyReused),
)
def create_merchant(
    body: MerchantCreate,
    request: Request,
    session: DbSession,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Register a merchant (admin); with an Idempotency-Key a retry never registers it twice."""
    return run_idempotent(
        session,
        who,
        request,
        idempotency_key,
        body,
        lambda: MerchantOut.model_validate(merchants.create_merchant(session, who, **body.model_dump())),
        status_code=201,
    )


@router.get("/merchants", tags=["merchants"])
def list_merchants(session: DbSession, who: Caller) -> list[MerchantOut]:
    """Merchants the caller may see: all for finance and admin, its own for merchant staff."""
    return [MerchantOut.model_validate(m) for m in merchants.list_merchants(session, who)]


@router.get("/merchants/{merchant_id}", tags=["merchants"], responses=errors(MerchantNotFound))
def get_merchant(merchant_id: str, session: DbSession, who: Caller) -> MerchantOut:
    """One merchant, for its staff and for finance."""
    return MerchantOut.model_validate(merchants.get_own_merchant(session, who, merchant_id))
