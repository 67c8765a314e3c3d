"""The parking domain as the composition root sees it: its purposes, routers, jobs and command."""

import parking.jobs  # noqa: F401  (registers the parking jobs by name)
from hanoipay.domains import Domain, PeriodicJob
from parking import cli
from parking.api import ROUTERS
from parking.purposes import PARKING_SESSION
from payments.purposes import register_purpose


def register() -> None:
    """Register the `parking_session` purpose (importing this module registered the jobs)."""
    register_purpose(PARKING_SESSION)


DOMAIN = Domain(
    name="parking",
    register=register,
    routers=ROUTERS,
    periodic_jobs=(PeriodicJob("parking.sweep_timers", seconds=60),),
    cli=cli.app,
)
