"""The merchants domain as the composition root sees it: its purposes, routers, jobs and pages."""

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from hanoipay.domains import Domain, PageLink, PeriodicJob
from merchants import web
from merchants.api import feed, markets, onboarding, payouts, tuition
from merchants.models import MerchantKind
from merchants.service.onboarding import merchant_kind

HERE = Path(__file__).resolve().parent


def _staff_of(kind: str) -> Callable[[Session, Principal], bool]:
    """Whether the person works for a merchant of this kind (a school's page is no use to a stall)."""

    def shown_to(session: Session, who: Principal) -> bool:
        return who.merchant_id is not None and merchant_kind(session, who.merchant_id) == kind

    return shown_to


def register() -> None:
    """Register the market and tuition purposes, the bank collectors and the domain's jobs."""
    import merchants.jobs  # noqa: F401  (registers the jobs by name)
    from merchants.purposes import MARKET_SALE, TUITION_INVOICE
    from merchants.service import markets
    from merchants.service.tuition import payments as tuition
    from payments.providers.vietqr.webhook import register_collector
    from payments.purposes import register_purpose

    register_purpose(MARKET_SALE)
    register_purpose(TUITION_INVOICE)
    register_collector(markets.COLLECTOR)
    register_collector(tuition.COLLECTOR)


DOMAIN = Domain(
    name="merchants",
    register=register,
    routers=(
        onboarding.router,
        markets.router,
        feed.router,
        payouts.router,
        tuition.router,
        tuition.files,
        web.page_router,
    ),
    periodic_jobs=(
        # 01:00 in Hanoi: yesterday's money is paid out T+1.
        PeriodicJob("merchants.run_settlements", cron="0 18 * * *"),
        # 00:30 in Hanoi: late fees on installments overdue past their grace; 08:00: reminders.
        PeriodicJob("merchants.apply_late_fees", cron="30 17 * * *"),
        PeriodicJob("merchants.send_tuition_reminders", cron="0 1 * * *"),
    ),
    templates=HERE / "templates",
    static=HERE / "static",
    locale=HERE / "locale",
    pages=(
        PageLink(
            "/vendor",
            "My stall",
            "Payments as they arrive, today's total, codes and the sign",
            frozenset({Role.VENDOR}),
            _staff_of(MerchantKind.MARKET_VENDOR),
        ),
        PageLink(
            "/tuition",
            "School fees",
            "Your children's invoices: pay them and keep the receipts",
            frozenset({Role.CUSTOMER}),
        ),
        PageLink(
            "/school",
            "Tuition collection",
            "Who has paid, by class; export and imports",
            frozenset({Role.VENDOR}),
            _staff_of(MerchantKind.SCHOOL),
        ),
    ),
)
