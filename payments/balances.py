"""Ledger balances: read now or as of a time, rolled up from deferred deltas, listed, and verified.

A deferred account's postings append `balance_delta` rows (see `payments.ledger`); `roll_up` folds them
into the balance row in batches, and every read here adds the deltas not yet folded, so a balance is
exact at any moment. `list_entries` and `list_accounts` read the journal and the accounts; `verify`
recomputes every cached figure from the journal lines.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from hanoipay.pagination import Page, paginate
from payments.accounts import account_by_id
from payments.exceptions import AccountNotFound
from payments.models import AccountBalance, BalanceDelta, JournalEntry, JournalLine, LedgerAccount


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
