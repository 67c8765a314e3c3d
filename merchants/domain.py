"""The merchants domain as the composition root sees it: its purposes, routers, jobs and pages."""

from hanoipay.domains import Domain, PeriodicJob
from merchants.api import feed, markets, onboarding, payouts, tuition


def register() -> None:
    """Register the market and tuition purposes, the stalls' bank collector and the domain's jobs."""
    import merchants.jobs  # noqa: F401  (registers the jobs by name)
    from merchants.purposes import MARKET_SALE, TUITION_INVOICE
    from merchants.service import markets
    from merchants.service.tuition import payments as tuition
    from payments.bank import register_collector
    from payments.purposes import register_purpose

    register_purpose(MARKET_SALE)
    register_purpose(TUITION_INVOICE)
    register_collector(markets.COLLECTOR)
    register_collector(tuition.COLLECTOR)


DOMAIN = Domain(
    name="merchants",
    register=register,
    routers=(onboarding.router, markets.router, feed.router, payouts.router, tuition.router, tuition.files),
    periodic_jobs=(
        # 01:00 in Hanoi: yesterday's money is paid out T+1.
        PeriodicJob("merchants.run_settlements", cron="0 18 * * *"),
        # 00:30 in Hanoi: late fees on installments overdue past their grace; 08:00: reminders.
        PeriodicJob("merchants.apply_late_fees", cron="30 17 * * *"),
        PeriodicJob("merchants.send_tuition_reminders", cron="0 1 * * *"),
    ),
)
