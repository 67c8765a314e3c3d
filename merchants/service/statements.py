"""Merchant statements: the payable account's lines over a period, read from the ledger itself.

A statement covers whole business days in Hanoi, `start` to `end` inclusive. Its opening balance is the
payable's balance when `start` began, each row is one effect of a journal entry on the payable (a payment
shows as its gross amount and its fee as a row of its own; refunds, payouts and returned payouts as they
were posted), and the closing balance is opening plus the rows: equal, by construction and by test, to
the balance the ledger gives for the end of the period.

Opening balances come from cached daily closing balances (`balance_checkpoint`) and period totals from
cached per-day sums (`statement_day`), kept for days that ended more than `SETTLED_AFTER` ago: journal
lines are append-only, so a past day's figures never change. A page of rows is read by keyset from the
lines themselves, so a page costs the same on the first day of the period as deep into it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from hanoipay.localtime import HANOI
from merchants.exceptions import StatementPeriodInvalid
from merchants.models import BalanceCheckpoint, StaffRole, StatementDay
from merchants.service.access import require_staff
from merchants.service.markets import day_bounds
from payments import ledger
from payments.merchants import get_merchant
from payments.models import JournalLine

READERS = frozenset({StaffRole.OWNER, StaffRole.ACCOUNTANT})
MAX_DAYS = 366
# A transaction posts its lines at its start time; one still open at midnight commits a little later.
SETTLED_AFTER = timedelta(minutes=10)
ROW_TYPES = {
    "payment": "payment",
    "refund": "refund",
    "payout": "payout",
    "payout_returned": "payout_returned",
}


@dataclass(frozen=True)
class StatementRow:
    """One line of a statement: what moved the merchant's balance, and the balance after it."""

    line_id: int
    posted_at: datetime
    type: str
    entry_id: str
    intent_id: str | None
    refund_id: str | None
    description: str
    amount: int
    balance: int


@dataclass(frozen=True)
class Statement:
    """A period's opening and closing balances, totals by type, and one page of rows."""

    merchant_id: str
    merchant_name: str
    currency: str
    start: date
    end: date
    opening_balance: int
    closing_balance: int
    totals: dict[str, int]
    rows: list[StatementRow]
    has_more: bool

    @property
    def next_cursor(self) -> str | None:
        """What to pass as `starting_after` for the next page."""
        return str(self.rows[-1].line_id) if self.has_more and self.rows else None


def _sum_lines(session: Session, account_id: str, start: datetime | None, end: datetime) -> int:
    query = select(func.coalesce(func.sum(JournalLine.amount), 0)).where(
        JournalLine.account_id == account_id, JournalLine.posted_at < end
    )
    if start is not None:
        query = query.where(JournalLine.posted_at >= start)
    # Liabilities grow with credits (negative amounts).
    return -int(session.scalar(query) or 0)


def balance_at_start_of(session: Session, account_id: str, day: date, *, now: datetime | None = None) -> int:
    """The payable's balance when a Hanoi business day began, from the nearest cached day before it."""
    moment = now or datetime.now(UTC)
    previous = session.execute(
        select(BalanceCheckpoint.day, BalanceCheckpoint.closing)
        .where(BalanceCheckpoint.account_id == account_id, BalanceCheckpoint.day < day)
        .order_by(BalanceCheckpoint.day.desc())
        .limit(1)
    ).first()
    start = day_bounds(day)[0]
    if previous is None:
        balance = _sum_lines(session, account_id, None, start)
    else:
        balance = int(previous.closing) + _sum_lines(session, account_id, day_bounds(previous.day)[1], start)
    yesterday = day - timedelta(days=1)
    if start + SETTLED_AFTER < moment and (previous is None or previous.day != yesterday):
        session.execute(
            pg_insert(BalanceCheckpoint)
            .values(account_id=account_id, day=yesterday, closing=balance)
            .on_conflict_do_nothing()
        )
    return balance


_BY_DAY = text(
    """
    SELECT (l.posted_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS day, e.kind, -sum(l.amount) AS net,
           coalesce(-sum(f.amount), 0) AS fee
    FROM journal_line l
    JOIN journal_entry e ON e.id = l.entry_id
    LEFT JOIN journal_line f ON f.entry_id = l.entry_id AND f.account_id = :fee_account
    WHERE l.account_id = :account AND l.posted_at >= :start AND l.posted_at < :end
    GROUP BY 1, 2
    """
)


def _period_by_kind(
    session: Session, account: str, fee_account: str, start: date, end: date, *, now: datetime | None
) -> dict[str, tuple[int, int]]:
    """(net, fee) by entry kind over whole days `start`..`end`: past days from the per-day cache (summed
    and stored the first time they are asked for), the days still open summed from the lines."""
    moment = now or datetime.now(UTC)
    settled = start
    while settled <= end and day_bounds(settled)[1] + SETTLED_AFTER < moment:
        settled += timedelta(days=1)
    last_settled = settled - timedelta(days=1)
    totals: dict[str, list[int]] = {}

    def add(kind: str, net: int, fee: int) -> None:
        if kind:
            pair = totals.setdefault(kind, [0, 0])
            pair[0] += net
            pair[1] += fee

    if last_settled >= start:
        cached = session.execute(
            select(StatementDay.day, StatementDay.kind, StatementDay.net, StatementDay.fee).where(
                StatementDay.account_id == account,
                StatementDay.day >= start,
                StatementDay.day <= last_settled,
            )
        ).all()
        done = {row.day for row in cached if row.kind == ""}
        missing = [start + timedelta(days=n) for n in range((last_settled - start).days + 1)]
        missing = [d for d in missing if d not in done]
        for row in cached:
            add(row.kind, int(row.net), int(row.fee))
        if missing:
            first, last = missing[0], missing[-1]
            fresh = session.execute(
                _BY_DAY,
                {
                    "account": account,
                    "fee_account": fee_account,
                    "start": day_bounds(first)[0],
                    "end": day_bounds(last)[1],
                },
            ).all()
            wanted = set(missing)
            rows = [
                {"account_id": account, "day": r.day, "kind": r.kind, "net": int(r.net), "fee": int(r.fee)}
                for r in fresh
                if r.day in wanted
            ]
            rows += [{"account_id": account, "day": d, "kind": "", "net": 0, "fee": 0} for d in missing]
            session.execute(pg_insert(StatementDay).on_conflict_do_nothing(), rows)
            for new in rows:
                add(new["kind"], new["net"], new["fee"])
    if settled <= end:
        live = session.execute(
            _BY_DAY,
            {
                "account": account,
                "fee_account": fee_account,
                "start": day_bounds(settled)[0],
                "end": day_bounds(end)[1],
            },
        ).all()
        for row in live:
            add(row.kind, int(row.net), int(row.fee))
    return {kind: (pair[0], pair[1]) for kind, pair in totals.items()}


def _check_period(start: date, end: date) -> None:
    if end < start:
        raise StatementPeriodInvalid("The period ends before it starts.")
    if (end - start).days >= MAX_DAYS:
        raise StatementPeriodInvalid(f"A statement covers at most {MAX_DAYS} days.")


_ROWS = text(
    """
    SELECT l.id, l.posted_at, e.kind, e.id AS entry_id, e.intent_id, e.refund_id, e.description,
           -l.amount AS net,
           coalesce((SELECT -sum(f.amount) FROM journal_line f
                     WHERE f.entry_id = l.entry_id AND f.account_id = :fee_account), 0) AS fee
    FROM journal_line l JOIN journal_entry e ON e.id = l.entry_id
    WHERE l.account_id = :account AND l.posted_at >= :start AND l.posted_at < :end
      AND (l.posted_at, l.id) > (:after_at, :after_id)
    ORDER BY l.posted_at, l.id
    LIMIT :limit
    """
)


def _rows_of(raw: Sequence[Row[Any]], running: int) -> list[StatementRow]:
    rows = []
    for r in raw:
        net, fee = int(r.net), int(r.fee)
        kind = str(ROW_TYPES.get(r.kind, r.kind))
        parts = [(kind, net + fee), ("fee", -fee)] if fee else [(kind, net)]
        for row_type, amount in parts:
            running += amount
            rows.append(
                StatementRow(
                    line_id=int(r.id),
                    posted_at=r.posted_at,
                    type=row_type,
                    entry_id=str(r.entry_id),
                    intent_id=r.intent_id,
                    refund_id=r.refund_id,
                    description=str(r.description),
                    amount=amount,
                    balance=running,
                )
            )
    return rows


def statement(
    session: Session,
    who: Principal,
    merchant_id: str,
    start: date,
    end: date,
    *,
    limit: int | None = 100,
    starting_after: str | None = None,
    now: datetime | None = None,
) -> Statement:
    """The merchant's statement for whole days `start`..`end` (owner, accountant, finance); one page of rows.

    `limit` None returns every row of the period (the CSV and PDF files).
    """
    require_staff(session, who, merchant_id, READERS)
    _check_period(start, end)
    payee = get_merchant(session, merchant_id)
    account = payee.account_id
    start_at, end_at = day_bounds(start)[0], day_bounds(end)[1]
    opening = balance_at_start_of(session, account, start, now=now)
    by_kind = _period_by_kind(session, account, _fee_account(session, payee.currency), start, end, now=now)
    period_net = sum(net for net, _ in by_kind.values())
    totals: dict[str, int] = {}
    for kind, (net, fee) in by_kind.items():
        name = ROW_TYPES.get(kind, kind)
        totals[name] = totals.get(name, 0) + net + fee
        if fee:
            totals["fee"] = totals.get("fee", 0) - fee
    after_at, after_id, running = datetime(1970, 1, 1, tzinfo=UTC), 0, opening
    if starting_after:
        cursor = session.get(JournalLine, int(starting_after)) if starting_after.isdigit() else None
        if cursor is None or cursor.account_id != account:
            raise StatementPeriodInvalid("starting_after is not a row of this statement.")
        after_at, after_id = cursor.posted_at, cursor.id
        running = opening + -int(
            session.scalar(
                select(func.coalesce(func.sum(JournalLine.amount), 0)).where(
                    JournalLine.account_id == account,
                    JournalLine.posted_at >= start_at,
                    tuple_(JournalLine.posted_at, JournalLine.id) <= tuple_(after_at, after_id),
                )
            )
            or 0
        )
    raw = session.execute(
        _ROWS,
        {
            "account": account,
            "fee_account": _fee_account(session, payee.currency),
            "start": start_at,
            "end": end_at,
            "after_at": after_at,
            "after_id": after_id,
            "limit": (limit + 1) if limit is not None else 10**9,
        },
    ).all()
    page = raw[:limit] if limit is not None else raw
    return Statement(
        merchant_id=merchant_id,
        merchant_name=payee.name,
        currency=payee.currency,
        start=start,
        end=end,
        opening_balance=opening,
        closing_balance=opening + period_net,
        totals=totals,
        rows=_rows_of(page, running),
        has_more=limit is not None and len(raw) > limit,
    )


def _fee_account(session: Session, currency: str) -> str:
    return ledger.fee_revenue_account(session, currency).id


def local_time(moment: datetime) -> str:
    """A timestamp as Hanoi reads it, to the second."""
    return moment.astimezone(HANOI).strftime("%Y-%m-%d %H:%M:%S")
