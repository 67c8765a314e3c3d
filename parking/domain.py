"""The parking domain as the composition root sees it: its purposes, routers, jobs, pages and command."""

from pathlib import Path

import parking.jobs  # noqa: F401  (registers the parking jobs by name)
from hanoipay.auth.service import Role
from hanoipay.domains import Domain, PageLink, PeriodicJob
from parking import cli, web
from parking.api import ROUTERS
from parking.purposes import PARKING_SESSION
from payments.purposes import register_purpose

HERE = Path(__file__).resolve().parent


def register() -> None:
    """Register the `parking_session` purpose (importing this module registered the jobs)."""
    register_purpose(PARKING_SESSION)


DOMAIN = Domain(
    name="parking",
    register=register,
    routers=(*ROUTERS, web.page_router),
    periodic_jobs=(PeriodicJob("parking.sweep_timers", seconds=60),),
    templates=HERE / "templates",
    static=HERE / "static",
    locale=HERE / "locale",
    pages=(
        PageLink(
            "/parking",
            "Find parking",
            "Find a free spot near you, pay by phone, add time and get a receipt.",
            frozenset({Role.CUSTOMER}),
        ),
        PageLink(
            "/parking/attendant",
            "Plate check",
            "Look plates up in your zones, record violations, see unpaid overstays.",
            frozenset({Role.OPERATOR}),
        ),
    ),
    cli=cli.app,
)
