"""The tickets domain as the composition root sees it: its purposes, routers, jobs and pages."""

from pathlib import Path

from hanoipay.auth.service import Role
from hanoipay.domains import Domain, PageLink, PeriodicJob
from tickets import api, web

HERE = Path(__file__).resolve().parent


def register() -> None:
    """Register the transit purposes with the core; importing the jobs module registers the jobs."""
    import tickets.jobs  # noqa: F401
    from tickets.purposes import register_purposes

    register_purposes()


DOMAIN = Domain(
    name="tickets",
    register=register,
    routers=(api.router, web.page_router),
    # Closed service days end at 04:00 in Hanoi (21:00 UTC); hourly runs also collect debts as money arrives.
    periodic_jobs=(PeriodicJob("tickets.charge_closed_days", cron="15 * * * *"),),
    templates=HERE / "templates",
    static=HERE / "static",
    locale=HERE / "locale",
    pages=(
        PageLink(
            "/transit",
            "My transit card and its live QR ticket",
            "Cards, phones, passes, trips and what each cost",
            frozenset({Role.CUSTOMER}),
        ),
        PageLink(
            "/transit/validator",
            "Ticket validator page",
            "Check riders' codes, offline if need be",
            frozenset({Role.OPERATOR, Role.ADMIN}),
        ),
    ),
)
