"""The merchants domain as the composition root sees it: its purposes, routers, jobs and pages."""

from hanoipay.domains import Domain, PeriodicJob
from merchants.api import feed, markets, onboarding, payouts


def register() -> None:
    """Register the market and tuition purposes, the stalls' bank collector and the domain's jobs."""
    import merchants.jobs  # noqa: F401  (registers the jobs by name)
    from merchants.purposes import MARKET_SALE
    from merchants.service.markets import COLLECTOR
    from payments.bank import register_collector
    from payments.purposes import register_purpose

    register_purpose(MARKET_SALE)
    register_collector(COLLECTOR)


DOMAIN = Domain(
    name="merchants",
    register=register,
    routers=(onboarding.router, markets.router, feed.router, payouts.router),
    periodic_jobs=(
        # 01:00 in Hanoi: yesterday's money is paid out T+1.
        PeriodicJob("merchants.run_settlements", cron="0 18 * * *"),
    ),
)
