"""Every domain of the city, in the order their routers are included and their hooks registered."""

from hanoipay.domains import Domain, PeriodicJob
from merchants.domain import DOMAIN as MERCHANTS
from parking.domain import DOMAIN as PARKING
from payments.domain import DOMAIN as PAYMENTS
from reconciliation.domain import DOMAIN as RECONCILIATION
from tickets.domain import DOMAIN as TICKETS

DOMAINS: tuple[Domain, ...] = (PAYMENTS, MERCHANTS, PARKING, TICKETS, RECONCILIATION)
_registered = False


def register_domains() -> None:
    """Register every domain's purposes, providers and jobs; every process calls it before it works."""
    global _registered
    if _registered:
        return
    for domain in DOMAINS:
        domain.register()
    _registered = True


def periodic_jobs() -> list[PeriodicJob]:
    """Every domain's periodic jobs, for the cron scheduler."""
    return [job for domain in DOMAINS for job in domain.periodic_jobs]
