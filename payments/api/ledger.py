"""HTTP API of the ledger: balances, journal entries and events (merchant staff and finance)."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import Role, RoleNotAllowed
from hanoipay.db import DbSession
from hanoipay.http import errors, require_json
from hanoipay.pagination import Cursor, Limit, ListOut, paginate
from payments import accounts, balances, merchants
from payments.exceptions import (
    MerchantNotFound,
)
from payments.models import Event
from payments.schemas import (
    BalanceOut,
    EventOut,
    LedgerEntryOut,
    LedgerLineOut,
)

router = APIRouter(prefix="/v1", dependencies=[Depends(require_json)])


@router.get("/merchants/{merchant_id}/balance", tags=["ledger"], responses=errors(MerchantNotFound))
def merchant_balance(
    merchant_id: str,
    session: DbSession,
    who: Caller,
    as_of: Annotated[datetime | None, Query(description="Balance at this time, from the lines")] = None,
) -> BalanceOut:
    """What the platform owes the merchant: now, or as of a time."""
    merchant = merchants.get_own_merchant(session, who, merchant_id)
    return _balance_out(session, merchant.account_id, as_of)


@router.get("/merchants/{merchant_id}/ledger_entries", tags=["ledger"], responses=errors(MerchantNotFound))
def merchant_entries(
    merchant_id: str, session: DbSession, who: Caller, limit: Limit = 25, starting_after: Cursor = None
) -> ListOut[LedgerEntryOut]:
    """Journal entries that touched the merchant's payable account, newest first."""
    merchant = merchants.get_own_merchant(session, who, merchant_id)
    return _entries_out(session, merchant.account_id, limit, starting_after)


# Ledger (finance) ------------------------------------------------------------------------------------


def _balance_out(session: DbSession, account_id: str, as_of: datetime | None) -> BalanceOut:
    if as_of is not None:
        posted = balances.balance_as_of(session, account_id, as_of)
        currency = accounts.account_by_id(session, account_id).currency
        return BalanceOut(
            account_id=account_id, currency=currency, posted=posted, held=0, available=posted, as_of=as_of
        )
    balance = balances.balance(session, account_id)
    return BalanceOut(
        account_id=account_id,
        currency=balance.currency,
        posted=balance.posted,
        held=balance.held,
        available=balance.available,
    )


def _entry_out(view: balances.EntryView) -> LedgerEntryOut:
    return LedgerEntryOut(
        id=view.id,
        kind=view.kind,
        intent_id=view.intent_id,
        refund_id=view.refund_id,
        description=view.description,
        posted_at=view.posted_at,
        lines=[LedgerLineOut(account_id=a, amount=amt, currency=c) for a, amt, c in view.lines],
    )


def _entries_out(
    session: DbSession, account_id: str | None, limit: int, starting_after: str | None
) -> ListOut[LedgerEntryOut]:
    page = balances.list_entries(session, account_id=account_id, limit=limit, starting_after=starting_after)
    return ListOut.of(page, _entry_out)


@router.get("/ledger/accounts", tags=["ledger"], responses=errors(RoleNotAllowed))
def list_accounts(session: DbSession, who: Caller) -> list[dict[str, object]]:
    """Every ledger account with its balance (finance)."""
    who.require(Role.FINANCE, Role.ADMIN)
    return [
        {
            "id": a.id,
            "code": a.code,
            "type": a.type,
            "currency": a.currency,
            "balance_mode": a.balance_mode,
            "posted": b.posted,
            "held": b.held,
            "available": b.available,
        }
        for a, b in balances.list_accounts(session)
    ]


@router.get("/ledger/accounts/{account_id}/balance", tags=["ledger"], responses=errors(RoleNotAllowed))
def account_balance(
    account_id: str, session: DbSession, who: Caller, as_of: Annotated[datetime | None, Query()] = None
) -> BalanceOut:
    """Any account's balance, now or as of a time (finance)."""
    who.require(Role.FINANCE, Role.ADMIN)
    return _balance_out(session, account_id, as_of)


@router.get("/ledger/entries", tags=["ledger"], responses=errors(RoleNotAllowed))
def list_entries(
    session: DbSession,
    who: Caller,
    limit: Limit = 25,
    starting_after: Cursor = None,
    account_id: Annotated[str | None, Query(max_length=40)] = None,
) -> ListOut[LedgerEntryOut]:
    """All journal entries, or those of one account, newest first (finance)."""
    who.require(Role.FINANCE, Role.ADMIN)
    return _entries_out(session, account_id, limit, starting_after)


# Events ----------------------------------------------------------------------------------------------


@router.get("/events", tags=["events"], responses=errors(RoleNotAllowed))
def list_events(
    session: DbSession, who: Caller, limit: Limit = 25, starting_after: Cursor = None
) -> ListOut[EventOut]:
    """Events about the caller's merchant (all, for finance), newest first."""
    if not who.is_staff and who.merchant_id is None:
        raise RoleNotAllowed("Events are for merchants and finance.")
    query = select(Event)
    if not who.is_staff:
        query = query.where(Event.merchant_id == who.merchant_id)
    page = paginate(session, query, Event.id, limit=limit, starting_after=starting_after)
    return ListOut.of(page, EventOut.model_validate)
