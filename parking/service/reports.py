"""Operator reports: occupancy and revenue per zone per day (Asia/Ho_Chi_Minh).

Revenue comes from the ledger, read through the core's `balances.list_entries` on the operator's payable
account: each entry names its intent, and a parking intent's metadata names its zone. So the report
adds up what was really posted (captures, overstay charges, less refunds), not what sessions say.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from hanoipay.localtime import HANOI
from parking.exceptions import InvalidSearch
from parking.models import Zone
from parking.service.catalog import require_operator
from parking.service.payments import PURPOSE
from payments import balances, ledger
from payments.merchants import get_merchant
from payments.models import PaymentIntent

MAX_DAYS = 62


@dataclass
class ZoneDay:
    """One zone's day: sessions started, occupied spot-minutes against capacity, and revenue."""

    zone_code: str
    day: date
    spots: int
    sessions: int = 0
    occupied_minutes: int = 0
    gross_amount: int = 0
    net_amount: int = 0

    @property
    def occupancy(self) -> float:
        """Share of the day's spot-minutes taken by sessions, 0 to 1."""
        return self.occupied_minutes / (self.spots * 24 * 60) if self.spots else 0.0


_OCCUPANCY = text(
    """
    SELECT s.zone_id, d.day,
           count(*) FILTER (WHERE s.started_at >= d.start AND s.started_at < d.start + interval '1 day'),
           coalesce(sum(extract(epoch FROM least(coalesce(s.ended_at, :now), d.start + interval '1 day')
                                          - greatest(s.started_at, d.start)) / 60), 0)
    FROM (SELECT g::date AS day, (g::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh') AS start
          FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') g) d
    JOIN parking_session s ON s.started_at < d.start + interval '1 day'
                          AND coalesce(s.ended_at, :now) > d.start
    WHERE s.merchant_id = :merchant_id
    GROUP BY s.zone_id, d.day
    """
)


def daily_report(
    session: Session, who: Principal, merchant_id: str, first: date, last: date, *, now: datetime
) -> list[ZoneDay]:
    """Each of the operator's zones on each day from `first` to `last` (local dates, inclusive)."""
    if not who.is_staff:
        require_operator(who, merchant_id)
    if last < first or (last - first).days >= MAX_DAYS:
        raise InvalidSearch(f"Report from 1 to {MAX_DAYS} days, `from` not after `to`.")
    zones = session.execute(select(Zone.id, Zone.code).where(Zone.merchant_id == merchant_id)).all()
    capacity: dict[str, int] = dict(
        session.execute(
            text("SELECT zone_id, count(*) FROM parking_spot WHERE zone_id = ANY(:ids) GROUP BY zone_id"),
            {"ids": [z.id for z in zones]},
        ).all()
    )
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    report = {(z.id, d): ZoneDay(z.code, d, int(capacity.get(z.id, 0))) for z in zones for d in days}
    for zone_id, day, started, minutes in session.execute(
        _OCCUPANCY, {"first": first, "last": last, "now": now, "merchant_id": merchant_id}
    ).all():
        if (zone_id, day) in report:
            report[zone_id, day].sessions = int(started)
            report[zone_id, day].occupied_minutes = round(float(minutes))
    _add_revenue(session, merchant_id, first, last, report)
    return sorted(report.values(), key=lambda r: (r.day, r.zone_code))


def _add_revenue(
    session: Session, merchant_id: str, first: date, last: date, report: dict[tuple[str, date], ZoneDay]
) -> None:
    merchant = get_merchant(session, merchant_id)
    fee_account = ledger.fee_revenue_account(session, merchant.currency).id
    start = datetime.combine(first, time(), tzinfo=HANOI)
    end = datetime.combine(last + timedelta(days=1), time(), tzinfo=HANOI)
    lines: list[tuple[str, date, int, int]] = []
    cursor: str | None = None
    while True:
        page = balances.list_entries(
            session, account_id=merchant.account_id, limit=100, starting_after=cursor
        )
        entries, more = page.items, page.has_more
        for entry in entries:
            if start <= entry.posted_at < end and entry.intent_id is not None:
                net = -sum(a for account, a, _ in entry.lines if account == merchant.account_id)
                fee = -sum(a for account, a, _ in entry.lines if account == fee_account)
                lines.append((entry.intent_id, entry.posted_at.astimezone(HANOI).date(), net + fee, net))
        if not more or not entries or entries[-1].posted_at < start:
            break
        cursor = entries[-1].id
    zone_of: dict[str, str] = dict(
        session.execute(
            select(PaymentIntent.id, PaymentIntent.metadata_["zone_id"].astext).where(
                PaymentIntent.id.in_({line[0] for line in lines}), PaymentIntent.purpose == PURPOSE
            )
        ).all()
    )
    totals: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])
    for intent_id, day, gross, net in lines:
        if intent_id in zone_of:
            totals[zone_of[intent_id], day][0] += gross
            totals[zone_of[intent_id], day][1] += net
    for key, (gross, net) in totals.items():
        if key in report:
            report[key].gross_amount, report[key].net_amount = gross, net
