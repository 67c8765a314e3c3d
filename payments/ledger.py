"""The double-entry ledger: accounts, balanced append-only entries, balances, holds, roll-up and verify.

Lines are signed: a debit is positive, a credit negative, and every entry sums to zero per currency.
Balances are kept in each account's normal direction (credit-normal for liabilities and revenue).

Two kinds of account keep their cached balance differently. A `checked` account (a wallet) must never
go negative, so each posting updates its balance row with a conditional UPDATE that refuses to take it
below zero. A `deferred` account (fee revenue, provider clearing, merchant payables) takes a line from
most payments in the city; updating one row per payment would serialise them all on that row, so its
postings append a `balance_delta` row instead, and `roll_up` folds the deltas into the balance row in
batches. Reads add the pending deltas, so a balance is exact at any moment.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from hanoipay.db import execute
from hanoipay.ids import new_id
from hanoipay.pagination import Page, paginate
from payments.exceptions import AccountNotFound, InsufficientFunds, UnbalancedEntry
from payments.models import AccountBalance, BalanceDelta, JournalEntry, JournalLine, LedgerAccount

AccountType = Literal["asset", "liability", "revenue", "expense", "equity"]
DEBIT_NORMAL = frozenset({"asset", "expense"})


@dataclass(frozen=True)
class AccountRef:
    """What a posting needs to know of an account; cached, since an account never changes these."""

    id: str
    code: str
    type: str
    currency: str
    balance_mode: str

    @property
    def sign(self) -> int:
        """+1 when a debit raises the balance, -1 when a credit does."""
        return 1 if self.type in DEBIT_NORMAL else -1


@dataclass(frozen=True)
class Balance:
    """An account's balance: posted, held by open authorizations, and what is available."""

    account_id: str
    currency: str
    posted: int
    held: int

    @property
    def available(self) -> int:
        """Posted minus pending holds."""
        return self.posted - self.held


_cache: dict[str, AccountRef] = {}


def clear_account_cache() -> None:
    """Forget cached accounts, after the database was reset underneath the process (restores, tests)."""
    _cache.clear()


def _ref(account: LedgerAccount) -> AccountRef:
    return AccountRef(account.id, account.code, account.type, account.currency, account.balance_mode)


def open_account(
    session: Session,
    code: str,
    *,
    name: str,
    type: AccountType,
    currency: str,
    balance_mode: Literal["checked", "deferred"],
    merchant_id: str | None = None,
) -> AccountRef:
    """The account with this code, opened (with its balance row) if it does not exist yet."""
    if (cached := _cache.get(code)) is not None:
        return cached
    account_id = session.execute(
        pg_insert(LedgerAccount)
        .values(
            id=new_id("acct"),
            code=code,
            name=name,
            type=type,
            currency=currency,
            balance_mode=balance_mode,
            merchant_id=merchant_id,
        )
        .on_conflict_do_nothing(index_elements=["code"])
        .returning(LedgerAccount.id)
    ).scalar()
    if account_id is not None:
        session.execute(
            insert(AccountBalance).values(
                account_id=account_id, non_negative=balance_mode == "checked", updated_at=func.now()
            )
        )
        # Not cached yet: the transaction that opened it may still roll back.
        return AccountRef(account_id, code, type, currency, balance_mode)
    ref = _ref(session.scalars(select(LedgerAccount).where(LedgerAccount.code == code)).one())
    _cache[code] = ref
    return ref


def account_by_id(session: Session, account_id: str) -> AccountRef:
    """The account with this id."""
    account = session.get(LedgerAccount, account_id)
    if account is None:
        raise AccountNotFound(f"No ledger account {account_id}.")
    return _ref(account)


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


def balance(session: Session, account_id: str) -> Balance:
    """The account's balance now: the balance row plus deltas not yet rolled up."""
    row = session.execute(
        select(
            LedgerAccount.currency,
            AccountBalance.posted,
            AccountBalance.held,
            select(func.coalesce(func.sum(BalanceDelta.amount), 0))
            .where(BalanceDelta.account_id == account_id)
            .scalar_subquery(),
        )
        .join(AccountBalance, AccountBalance.account_id == LedgerAccount.id)
        .where(LedgerAccount.id == account_id)
    ).first()
    if row is None:
        raise AccountNotFound(f"No ledger account {account_id}.")
    currency, posted, held, pending = row
    return Balance(account_id, currency, int(posted) + int(pending), int(held))


def balance_as_of(session: Session, account_id: str, at: datetime) -> int:
    """The posted balance at time `at`, summed from the lines."""
    account = account_by_id(session, account_id)
    total = session.scalar(
        select(func.coalesce(func.sum(JournalLine.amount), 0)).where(
            JournalLine.account_id == account_id, JournalLine.posted_at <= at
        )
    )
    return account.sign * int(total or 0)


def roll_up(session: Session, *, batch: int = 50_000) -> int:
    """Fold pending deltas into the balance rows of deferred accounts; returns how many were folded."""
    result = session.execute(
        text(
            """
            WITH moved AS (
                DELETE FROM balance_delta WHERE id IN (
                    SELECT id FROM balance_delta ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED
                ) RETURNING account_id, amount
            ), totals AS (
                SELECT account_id, sum(amount) AS total, count(*) AS n FROM moved GROUP BY account_id
            ), applied AS (
                UPDATE account_balance b SET posted = b.posted + t.total, updated_at = now()
                FROM totals t WHERE b.account_id = t.account_id RETURNING t.n
            )
            SELECT coalesce(sum(n), 0) FROM applied
            """
        ),
        {"batch": batch},
    ).scalar()
    return int(result or 0)


@dataclass
class VerifyReport:
    """What `verify` found: empty lists mean the ledger is sound."""

    entries: int
    lines: int
    accounts: int
    unbalanced_entries: list[tuple[str, str, int]]
    balance_mismatches: list[tuple[str, int, int]]
    hold_mismatches: list[tuple[str, int, int]]
    negative_checked: list[tuple[str, int]]

    @property
    def ok(self) -> bool:
        """True when every entry balances and every cached figure matches the lines."""
        return not (
            self.unbalanced_entries
            or self.balance_mismatches
            or self.hold_mismatches
            or self.negative_checked
        )


def verify(session: Session) -> VerifyReport:
    """Recompute every balance from the lines and check that every entry balances per currency."""
    counts = session.execute(
        text(
            "SELECT (SELECT count(*) FROM journal_entry), (SELECT count(*) FROM journal_line), "
            "(SELECT count(*) FROM ledger_account)"
        )
    ).one()
    unbalanced = session.execute(
        text(
            """
            SELECT e.id, coalesce(l.currency, '-'), coalesce(sum(l.amount), 0)
            FROM journal_entry e LEFT JOIN journal_line l ON l.entry_id = e.id
            GROUP BY e.id, l.currency HAVING coalesce(sum(l.amount), 0) <> 0 OR count(l.id) < 1
            UNION ALL
            SELECT e.id, 'lines', count(l.id) FROM journal_entry e JOIN journal_line l ON l.entry_id = e.id
            GROUP BY e.id HAVING count(l.id) < 2
            """
        )
    ).all()
    mismatches = session.execute(
        text(
            """
            WITH line_sums AS (
                SELECT account_id, sum(amount) AS total FROM journal_line GROUP BY account_id
            ), deltas AS (
                SELECT account_id, sum(amount) AS total FROM balance_delta GROUP BY account_id
            )
            SELECT a.id,
                   CASE WHEN a.type IN ('asset', 'expense') THEN 1 ELSE -1 END * coalesce(ls.total, 0),
                   b.posted + coalesce(d.total, 0)
            FROM ledger_account a
            JOIN account_balance b ON b.account_id = a.id
            LEFT JOIN line_sums ls ON ls.account_id = a.id
            LEFT JOIN deltas d ON d.account_id = a.id
            WHERE CASE WHEN a.type IN ('asset', 'expense') THEN 1 ELSE -1 END * coalesce(ls.total, 0)
                  <> b.posted + coalesce(d.total, 0)
            """
        )
    ).all()
    holds = session.execute(
        text(
            """
            SELECT b.account_id, coalesce(h.total, 0), b.held
            FROM account_balance b
            LEFT JOIN (SELECT account_id, sum(amount) AS total FROM hold WHERE released_at IS NULL
                       GROUP BY account_id) h ON h.account_id = b.account_id
            WHERE coalesce(h.total, 0) <> b.held
            """
        )
    ).all()
    negative = session.execute(
        text("SELECT account_id, posted - held FROM account_balance WHERE non_negative AND posted - held < 0")
    ).all()
    return VerifyReport(
        entries=int(counts[0]),
        lines=int(counts[1]),
        accounts=int(counts[2]),
        unbalanced_entries=[(r[0], r[1], int(r[2])) for r in unbalanced],
        balance_mismatches=[(r[0], int(r[1]), int(r[2])) for r in mismatches],
        hold_mismatches=[(r[0], int(r[1]), int(r[2])) for r in holds],
        negative_checked=[(r[0], int(r[1])) for r in negative],
    )


@dataclass(frozen=True)
class EntryView:
    """An entry with its lines, for reading."""

    id: str
    kind: str
    intent_id: str | None
    refund_id: str | None
    description: str
    posted_at: datetime
    lines: list[tuple[str, int, str]]


def list_entries(
    session: Session, *, account_id: str | None, limit: int, starting_after: str | None
) -> Page[EntryView]:
    """Entries newest first (those touching `account_id` if given), one page after the cursor."""
    query = select(JournalEntry)
    if account_id is not None:
        query = query.where(
            JournalEntry.id.in_(select(JournalLine.entry_id).where(JournalLine.account_id == account_id))
        )
    entries = paginate(session, query, JournalEntry.id, limit=limit, starting_after=starting_after)
    lines: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
    for line in session.scalars(
        select(JournalLine)
        .where(JournalLine.entry_id.in_([e.id for e in entries.items]))
        .order_by(JournalLine.id)
    ):
        lines[line.entry_id].append((line.account_id, line.amount, line.currency))
    views = [
        EntryView(e.id, e.kind, e.intent_id, e.refund_id, e.description, e.posted_at, lines[e.id])
        for e in entries.items
    ]
    return Page(views, entries.has_more, lambda view: view.id)


def list_accounts(session: Session) -> list[tuple[LedgerAccount, Balance]]:
    """Every account with its balance now."""
    rows = session.execute(
        text(
            """
            SELECT a.id, b.posted + coalesce(d.total, 0), b.held
            FROM ledger_account a JOIN account_balance b ON b.account_id = a.id
            LEFT JOIN (SELECT account_id, sum(amount) AS total FROM balance_delta GROUP BY account_id) d
                   ON d.account_id = a.id
            """
        )
    ).all()
    figures = {r[0]: (int(r[1]), int(r[2])) for r in rows}
    accounts = session.scalars(select(LedgerAccount).order_by(LedgerAccount.code)).all()
    return [(a, Balance(a.id, a.currency, *figures[a.id])) for a in accounts]
