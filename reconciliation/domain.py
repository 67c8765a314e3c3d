"""The reconciliation domain as the composition root sees it: its routers, jobs, schedule and pages."""

from pathlib import Path

from hanoipay.auth.service import Role
from hanoipay.domains import Domain, PageLink, PeriodicJob
from reconciliation import api, web

HERE = Path(__file__).resolve().parent


def register() -> None:
    """Register the jobs (reconciliation has no purposes: it moves money only through the core)."""
    import reconciliation.jobs  # noqa: F401  (registers the jobs by name)


DOMAIN = Domain(
    name="reconciliation",
    register=register,
    routers=(api.router, api.json_router, web.page_router),
    periodic_jobs=(
        # 02:00 in Asia/Ho_Chi_Minh is 19:00 UTC the day before; RQ's cron reads UTC.
        PeriodicJob("reconciliation.reconcile_yesterday", cron="0 19 * * *"),
        PeriodicJob("reconciliation.resume_stalled_runs", seconds=60),
    ),
    templates=HERE / "templates",
    static=HERE / "static",
    locale=HERE / "locale",
    pages=(
        PageLink(
            web.BASE,
            "Reconciliation",
            "The day's close, statements, runs and the cases to work.",
            frozenset({Role.FINANCE}),
        ),
    ),
)
