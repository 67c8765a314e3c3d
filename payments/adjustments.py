"""Adjusting entries: corrections finance posts to the ledger with a reason, never an edit of what was posted.

Reconciliation resolves a break between the ledger and a provider (a fee the ledger never booked, a
payment the provider never received, a difference in amount) by posting one balanced entry of kind
`adjustment` that moves the difference between the provider's clearing account and a write-off account.
Like every posting it happens once per `dedupe_key`, so a retried resolution posts nothing twice.
"""

from collections.abc import Sequence

from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from payments import accounts, ledger
from payments.accounts import AccountRef


def writeoff_account(session: Session, currency: str) -> AccountRef:
    """Where differences finance writes off land: an expense account per currency (a hot account)."""
    return accounts.open_account(
        session,
        f"reconciliation_writeoff:{currency}",
        name=f"Reconciliation write-offs ({currency})",
        type="expense",
        currency=currency,
        balance_mode="deferred",
    )


def post_adjustment(
    session: Session,
    who: Principal,
    *,
    dedupe_key: str,
    description: str,
    lines: Sequence[tuple[AccountRef, int]],
    intent_id: str | None = None,
) -> str | None:
    """Post a balanced correcting entry for finance, once per `dedupe_key`; its id, or None if posted before.

    Lines are signed as everywhere in the ledger (debit positive). Only finance and admin may adjust.
    """
    who.require(Role.FINANCE, Role.ADMIN)
    return ledger.post_entry(
        session,
        kind="adjustment",
        dedupe_key=f"adjustment:{dedupe_key}",
        description=description,
        lines=lines,
        intent_id=intent_id,
    )
