"""The tickets domain as the composition root sees it: its purposes, routers, jobs and pages."""

from hanoipay.domains import Domain, PeriodicJob
from tickets import api


def register() -> None:
    """Register the transit purposes with the core; importing the jobs module registers the jobs."""
    import tickets.jobs  # noqa: F401
    from tickets.purposes import register_purposes

    register_purposes()


DOMAIN = Domain(
    name="tickets",
    register=register,
    routers=(api.router,),
    # Closed service days end at 04:00 in Hanoi (21:00 UTC); hourly runs also collect debts as money arrives.
    periodic_jobs=(PeriodicJob("tickets.charge_closed_days", cron="15 * * * *"),),
)
