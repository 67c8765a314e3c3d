"""What bench/merchants.py and bench/merchants_feed.py share: the admin, the keys, staff tokens, figures.

Kept apart from bench/merchants.py because that file runs as `__main__`: importing it from the feed's
module would load it a second time, with other random keys.
"""

import secrets

from bench.common import BenchServers, new_user
from hanoipay.auth.service import Principal, issue_token
from hanoipay.db import job_session
from merchants.service.onboarding import add_member

ADMIN = Principal(id="usr_bench_admin", kind="user", roles=frozenset({"admin", "finance"}))
KID, SECRET = "bench-bank", secrets.token_urlsafe(24)
JWT_KEYS = {"bench": secrets.token_urlsafe(32)}


def dsn(servers: BenchServers) -> str:
    return servers.database_url.replace("postgresql+psycopg://", "postgresql://")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def staff_token(merchant_id: str, role: str = "owner") -> str:
    """A JWT for a new staff member of the merchant."""
    with job_session() as session:
        user = new_user(session)
        add_member(session, user, merchant_id, role, added_by=ADMIN.id)
        session.flush()
        return issue_token(user)[0]


def line(label: str, figures: tuple[float, ...], note: str = "") -> None:
    """One figure: p50 and p99 in ms, and a rate when there is one."""
    rate = f"  {figures[2]:,.0f} req/s" if len(figures) > 2 else ""
    print(f"   {label + ':':<50} p50 {figures[0]:7.1f} ms  p99 {figures[1]:7.1f} ms{rate}  {note}".rstrip())
