"""The double-entry ledger's writes: balanced append-only entries, holds, and the platform's own accounts.

Lines are signed: a debit is positive, a credit negative, and every entry sums to zero per currency.
Balances are kept in each account's normal direction (credit-normal for liabilities and revenue).

Two kinds of account keep their cached balance differently. A `checked` account (a wallet) must never
go negative, so each posting updates its balance row with a conditional UPDATE that refuses to take it
below zero. A `deferred` account (fee revenue, provider clearing, merchant payables) takes a line from
most payments in the city; updating one row per payment would serialise them all on that row, so its
postings append a `balance_delta` row instead, and `roll_up` folds the deltas into the balance row in
batches. Reads add the pending deltas, so a balance is exact at any moment.

Accounts themselves (`AccountRef`, opening, the cache) are in `payments.accounts`; balances, the roll-up,
listing and verify in `payments.balances`.
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from hanoipay.db import execute
from hanoipay.ids import new_id
from payments.accounts import AccountRef, open_account
from payments.exceptions import InsufficientFunds, UnbalancedEntry


def fee_revenue_account(session: Session, currency: str) -> AccountRef:
    """The platform's fee revenue in `currency` (a hot account)."""
    return open_account(
        session,
        f"platform_fee_revenue:{currency}",
        name=f"Platform fee revenue ({currency})",
        type="revenue",
        currency=currency,
        balance_mode="deferred",
    )


def clearing_account(session: Session, provider: str, currency: str) -> AccountRef:
    """Money a provider owes the platform for payments it took, until it settles (a hot account)."""
    return open_account(
        session,
        f"provider_clearing:{provider}:{currency}",
        name=f"Provider clearing: {provider} ({currency})",
        type="asset",
        currency=currency,
        balance_mode="deferred",
    )


def receipts_account(session: Session, provider: str, currency: str) -> AccountRef:
    """Money a provider reported arriving that is not (yet) applied to an intent (a hot suspense account)."""
    return open_account(
        session,
        f"unapplied_receipts:{provider}:{currency}",
        name=f"Unapplied receipts: {provider} ({currency})",
        type="liability",
        currency=currency,
        balance_mode="deferred",
    )


_POST_ENTRY = """
WITH posted_before AS (
    SELECT 1 FROM journal_entry WHERE dedupe_key = %(dedupe_key)s
), checked AS (
    UPDATE account_balance b SET posted = b.posted + c.delta, updated_at = now()
    FROM unnest(%(checked_ids)s::text[], %(checked_deltas)s::bigint[]) AS c(account_id, delta)
    WHERE b.account_id = c.account_id AND b.posted - b.held + c.delta >= 0
      AND NOT EXISTS (SELECT 1 FROM posted_before)
    RETURNING b.account_id
), entry AS (
    INSERT INTO journal_entry (id, kind, dedupe_key, intent_id, refund_id, description, posted_at)
    SELECT %(id)s, %(kind)s, %(dedupe_key)s, %(intent_id)s, %(refund_id)s, %(description)s, now()
    WHERE NOT EXISTS (SELECT 1 FROM posted_before)
      AND (SELECT count(*) FROM checked) = cardinality(%(checked_ids)s::text[])
    RETURNING id
), lines AS (
    INSERT INTO journal_line (entry_id, account_id, currency, amount, posted_at)
    SELECT entry.id, l.account_id, l.currency, l.amount, now()
    FROM entry, unnest(%(line_ids)s::text[], %(line_currencies)s::text[], %(line_amounts)s::bigint[])
        AS l(account_id, currency, amount)
), deltas AS (
    INSERT INTO balance_delta (account_id, amount)
    SELECT d.account_id, d.amount
    FROM entry, unnest(%(delta_ids)s::text[], %(delta_amounts)s::bigint[]) AS d(account_id, amount)
)
SELECT EXISTS (SELECT 1 FROM posted_before), (SELECT count(*) FROM entry)
"""


def post_entry(
    session: Session,
    *,
    kind: str,
    dedupe_key: str,
    description: str,
    lines: Sequence[tuple[AccountRef, int]],
    intent_id: str | None = None,
    refund_id: str | None = None,
) -> str | None:
    """Post one balanced entry once per `dedupe_key`; returns its id, or None if it was already posted.

    One statement does it all: the checked accounts' conditional updates, the entry, its lines and the
    hot accounts' deltas. When a checked account would go below zero nothing is written and
    InsufficientFunds is raised. (An entry that debits several checked accounts, as a wallet batch does,
    may update some before another is refused; the refusal rolls the whole transaction back.)
    """
    totals: dict[str, int] = defaultdict(int)
    for account, amount in lines:
        totals[account.currency] += amount
    if any(totals.values()) or len(lines) < 2:
        raise UnbalancedEntry(f"Entry {dedupe_key} does not balance: {dict(totals)}.")
    lines = [(account, amount) for account, amount in lines if amount != 0]
    checked = sorted((a.id, a.sign * amt) for a, amt in lines if a.balance_mode == "checked")
    deferred = [(a.id, a.sign * amt) for a, amt in lines if a.balance_mode != "checked"]
    entry_id = new_id("je")
    already, inserted = execute(
        session,
        _POST_ENTRY,
        {
            "dedupe_key": dedupe_key,
            "checked_ids": [account_id for account_id, _ in checked],
            "checked_deltas": [delta for _, delta in checked],
            "id": entry_id,
            "kind": kind,
            "intent_id": intent_id,
            "refund_id": refund_id,
            "description": description,
            "line_ids": [a.id for a, _ in lines],
            "line_currencies": [a.currency for a, _ in lines],
            "line_amounts": [amt for _, amt in lines],
            "delta_ids": [account_id for account_id, _ in deferred],
            "delta_amounts": [delta for _, delta in deferred],
        },
    ).fetchone() or (False, 0)
    if already:
        return None
    if not inserted:
        raise InsufficientFunds("The wallet's available balance does not cover this payment.")
    return entry_id


_PLACE_HOLD = """
WITH reserved AS (
    UPDATE account_balance SET held = held + %(amount)s, updated_at = now()
    WHERE account_id = %(account_id)s AND posted - held >= %(amount)s
    RETURNING account_id
)
INSERT INTO hold (id, account_id, intent_id, amount, expires_at, created_at)
SELECT %(id)s, account_id, %(intent_id)s, %(amount)s, %(expires_at)s, now() FROM reserved
RETURNING id
"""

_RELEASE_HOLD = """
WITH released AS (
    UPDATE hold SET released_at = now() WHERE intent_id = %s AND released_at IS NULL
    RETURNING account_id, amount
), restored AS (
    UPDATE account_balance b SET held = b.held - r.amount, updated_at = now()
    FROM released r WHERE b.account_id = r.account_id
)
SELECT amount FROM released
"""


def place_hold(
    session: Session, account: AccountRef, *, intent_id: str, amount: int, expires_at: datetime
) -> None:
    """Reserve `amount` of a checked account's available balance for an authorized intent (one statement)."""
    params = {
        "id": new_id("hold"),
        "account_id": account.id,
        "intent_id": intent_id,
        "amount": amount,
        "expires_at": expires_at,
    }
    if execute(session, _PLACE_HOLD, params).fetchone() is None:
        raise InsufficientFunds("The wallet's available balance does not cover this authorization.")


def release_hold(session: Session, intent_id: str) -> int:
    """Release the intent's hold if it is still open; returns the amount released."""
    released = execute(session, _RELEASE_HOLD, (intent_id,)).fetchone()
    return 0 if released is None else int(released[0])
