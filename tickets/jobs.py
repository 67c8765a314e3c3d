"""The tickets domain's jobs: thin, idempotent, each in its own session."""

from datetime import date

from hanoipay.db import job_session
from hanoipay.jobs import job
from tickets.service.charging import charge_closed_days
from tickets.service.pricing import price_card_days


@job("tickets.price_card_days")
def price_days(keys: list[list[str]]) -> int:
    """Price again the (card, service day) pairs that new taps or a new pass touched."""
    with job_session() as session:
        return price_card_days(session, [(card, date.fromisoformat(day)) for card, day in keys])


@job("tickets.charge_closed_days")
def charge_days() -> int:
    """Charge closed service days in batches until none is due; returns how many days were settled."""
    total, after = 0, None
    while True:
        with job_session() as session:
            run = charge_closed_days(session, after=after)
        total += run.days
        if run.last is None:
            return total
        after = run.last
