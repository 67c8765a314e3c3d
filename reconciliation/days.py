"""Business days of reconciliation: a day in Hanoi, its UTC window, and the days a run may cover."""

from datetime import UTC, date, datetime, timedelta

from hanoipay.localtime import HANOI
from reconciliation.exceptions import BusinessDayOutOfRange


def day_window(day: date) -> tuple[datetime, datetime]:
    """The UTC instants a business day in Hanoi starts and ends."""
    start = datetime(day.year, day.month, day.day, tzinfo=HANOI).astimezone(UTC)
    return start, start + timedelta(days=1)


def business_day_of(at: datetime) -> date:
    """The business day (Asia/Ho_Chi_Minh) an instant falls on."""
    return at.astimezone(HANOI).date()


def check_day(day: date, now: datetime) -> None:
    """Refuse a business day that has not begun in Hanoi yet or is more than 400 days ago."""
    today = business_day_of(now)
    if day > today:
        raise BusinessDayOutOfRange(f"{day} has not begun in Hanoi yet (today is {today}).")
    if day < today - timedelta(days=400):
        raise BusinessDayOutOfRange(f"{day} is more than 400 days ago.")
