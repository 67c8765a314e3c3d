"""The merchants domain's jobs: thin, idempotent, each in its own session."""

import logging
from datetime import UTC, datetime

from hanoipay.db import job_session
from hanoipay.jobs import enqueue, job
from merchants.exceptions import MerchantNotVerified
from merchants.service import feed, settlement
from merchants.service.markets import business_day
from merchants.service.tuition import reminders
from merchants.settings import get_merchants_settings

log = logging.getLogger(__name__)


@job("merchants.announce_member_removed")
def announce_member_removed(merchant_id: str, user_id: str) -> None:
    """Close a removed staff member's open live feeds."""
    feed.announce_member_removed(merchant_id, user_id)


@job("merchants.run_settlements")
def run_settlements() -> int:
    """Queue today's settlement of every verified merchant (the daily run); returns how many."""
    with job_session() as session:
        merchant_ids = settlement.merchants_to_settle(session)
    day = business_day(datetime.now(UTC)).isoformat()
    for merchant_id in merchant_ids:
        enqueue("merchants.settle_merchant", job_id=f"settle-{merchant_id}-{day}", merchant_id=merchant_id)
    return len(merchant_ids)


@job("merchants.settle_merchant")
def settle_merchant(merchant_id: str) -> str | None:
    """Pay out a merchant's matured balance, once per business day; an unverified merchant is skipped."""
    try:
        with job_session() as session:
            return settlement.settle(session, merchant_id).id
    except MerchantNotVerified:
        log.info("merchant %s is not verified; not settled", merchant_id)
        return None


@job("merchants.apply_late_fees")
def apply_late_fees() -> int:
    """Charge late fees on installments overdue past their grace days, once each."""
    with job_session() as session:
        return reminders.apply_late_fees(session)


@job("merchants.send_tuition_reminders")
def send_tuition_reminders() -> int:
    """Remind guardians of installments falling due soon, once each."""
    with job_session() as session:
        return reminders.send_reminders(session, days_ahead=get_merchants_settings().tuition_reminder_days)
