"""HTTP API of wallets: open, read, and manual top-ups recorded by finance."""

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import RoleNotAllowed
from hanoipay.db import DbSession
from hanoipay.http import errors, require_json
from payments import balances, topups, wallets
from payments.exceptions import (
    IdempotencyKeyReused,
    UnsupportedCurrency,
    UserNotFound,
    WalletExists,
    WalletNotFound,
)
from payments.idempotency import IdempotencyHeader, run_idempotent
from payments.schemas import (
    ManualTopupCreate,
    PaymentIntentOut,
    WalletCreate,
    WalletOut,
)

router = APIRouter(prefix="/v1", dependencies=[Depends(require_json)])


# Wallets ---------------------------------------------------------------------------------------------


def _wallet_out(session: DbSession, wallet: object) -> WalletOut:
    out = WalletOut.model_validate(wallet)
    balance = balances.balance(session, out.account_id)
    return out.model_copy(
        update={"posted": balance.posted, "held": balance.held, "available": balance.available}
    )


@router.post(
    "/wallets",
    status_code=201,
    tags=["wallets"],
    responses=errors(WalletExists, UnsupportedCurrency, UserNotFound),
)
def open_wallet(body: WalletCreate, session: DbSession, who: Caller) -> WalletOut:
    """Open a stored-value wallet for the caller."""
    return _wallet_out(
        session, wallets.open_wallet(session, who, currency=body.currency, owner_id=body.owner_id)
    )


@router.get("/wallets", tags=["wallets"])
def list_wallets(session: DbSession, who: Caller) -> list[WalletOut]:
    """The caller's wallets with their balances."""
    return [_wallet_out(session, w) for w in wallets.list_wallets(session, who)]


@router.get("/wallets/{wallet_id}", tags=["wallets"], responses=errors(WalletNotFound))
def get_wallet(wallet_id: str, session: DbSession, who: Caller) -> WalletOut:
    """A wallet and its posted, held and available balance."""
    return _wallet_out(session, wallets.get_wallet(session, who, wallet_id))


@router.post(
    "/wallets/{wallet_id}/manual_topups",
    status_code=201,
    tags=["wallets"],
    responses=errors(RoleNotAllowed, WalletNotFound, IdempotencyKeyReused),
)
def manual_topup(
    wallet_id: str,
    body: ManualTopupCreate,
    request: Request,
    who: Caller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Record money received outside the platform into a wallet, with a reason (finance)."""

    def work(session: Session) -> PaymentIntentOut:
        return PaymentIntentOut.model_validate(
            topups.record_manual_topup(session, who, wallet_id, amount=body.amount, reason=body.reason)
        )

    return run_idempotent(who, request, idempotency_key, body, work, status_code=201)
