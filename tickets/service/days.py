"""Service days: a transit day runs from 04:00 to 03:59 the next morning, Asia/Ho_Chi_Minh.

A ride at 00:30 belongs to the day before, like the last buses of the night, so daily caps and
transfers run across midnight; a month's caps ('earn the pass') count service days of that month.
"""

from datetime import date, datetime, time, timedelta

from hanoipay.localtime import HANOI

DAY_STARTS = timedelta(hours=4)


def service_day_of(moment: datetime) -> date:
    """The service day a moment (timezone-aware) belongs to."""
    return (moment.astimezone(HANOI) - DAY_STARTS).date()


def local_time_of(moment: datetime) -> time:
    """The wall-clock time in Hanoi of a moment, for timeframes."""
    return moment.astimezone(HANOI).time()


def day_start(day: date) -> datetime:
    """The moment a service day starts."""
    return datetime.combine(day, time(), HANOI) + DAY_STARTS


def month_start(day: date) -> date:
    """The first day of the day's month."""
    return day.replace(day=1)


def month_end(day: date) -> date:
    """The last day of the day's month."""
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def current_service_day(now: datetime) -> date:
    """Today's service day: days before it are closed and can be charged."""
    return service_day_of(now)
