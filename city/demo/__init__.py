"""`make demo`: a simulated day of the city through the real API, ending with a reconciled ledger.

Each service plays its part as a `Scenario` (`city/demo/<service>.py`), in the order of `SCENARIOS`, on
one set of embedded servers; then a real RQ worker drains the jobs, and the summary shows each
scenario's tables, the ledger balances and `ledger verify`.
"""

import logging
import random
import secrets
import shutil
import threading
import time

import httpx
import uvicorn
from rich.table import Table
from sqlalchemy import func, select

from city.app import create_app
from city.cli import print_verify_report
from city.demo.city import City, Scenario, console
from city.demo.merchants import MerchantsScenario
from city.demo.parking import ParkingScenario
from city.demo.payments import PaymentsScenario
from city.demo.reconciliation import ReconciliationScenario
from city.demo.tickets import TicketsScenario
from hanoipay import timing
from hanoipay.db import job_session
from hanoipay.runtime import start_runtime
from hanoipay.settings import get_settings
from payments.balances import list_accounts, verify
from payments.models import Event


def scenarios() -> list[Scenario]:
    """The day's scenarios, in the order they play."""
    return [
        PaymentsScenario(),
        MerchantsScenario(),
        ParkingScenario(),
        TicketsScenario(),
        ReconciliationScenario(),
    ]


def _serve() -> tuple[uvicorn.Server, str]:
    # The demo's clients share this process, and its interpreter lock, with the API, so its request times
    # say nothing about a server's (sign-ups and sign-ins, argon2 at full cost, pass 1 s here); the
    # slow-request warnings would only break up the summary.
    timing.log.setLevel(logging.ERROR)
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def _ledger_summary(city: City) -> bool:
    with job_session() as session:
        report = verify(session)
        accounts = list_accounts(session)
        delivered = session.scalar(
            select(func.count()).select_from(Event).where(Event.delivered_at.is_not(None))
        )
    names = {m["account_id"]: m["name"] for m in city.merchants}
    balances = Table("account", "type", "posted (VND)", "held", "available", title="Ledger balances")
    wallets = [b for a, b in accounts if a.code.startswith("wallet:")]
    for account, balance in accounts:
        if not account.code.startswith("wallet:"):
            label = names.get(account.id, account.code)
            balances.add_row(
                label, account.type, f"{balance.posted:,}", f"{balance.held:,}", f"{balance.available:,}"
            )
    balances.add_row(
        f"{len(wallets)} wallets",
        "liability",
        f"{sum(b.posted for b in wallets):,}",
        f"{sum(b.held for b in wallets):,}",
        f"{sum(b.available for b in wallets):,}",
    )
    outcomes = Table("outcome", "count", title="The day's outcomes")
    for outcome, count in sorted(city.outcomes.items()):
        outcomes.add_row(outcome, str(count))
    console.print(balances, outcomes)
    console.print(f"{city.jobs_drained} jobs drained by an RQ worker; {delivered} events delivered")
    print_verify_report(report)
    return report.ok


def run_demo(*, fresh: bool = True, seed: int = 2026) -> None:
    """Run the demo on embedded servers (under .hanoipay/demo) unless servers are configured."""
    settings = get_settings()
    settings.data_dir = settings.data_dir / "demo"
    if not settings.bank_webhook_secrets:
        settings.bank_webhook_secrets = {"demo-bank": secrets.token_urlsafe(32)}
    if fresh and settings.embedded and settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)
    console.rule("HanoiPay: a day of the city")
    runtime = start_runtime(migrate=True, api=True)
    server, url = _serve()
    try:
        with httpx.Client(base_url=url, timeout=30) as api:
            city = City(api, runtime.redis_url, random.Random(seed))
            played = scenarios()
            for scenario in played:
                console.rule(scenario.name)
                scenario.play(city)
                city.drain()
            console.rule("summary")
            for scenario in played:
                console.print(*scenario.summarize(city))
            ok = _ledger_summary(city)
    finally:
        server.should_exit = True
        runtime.stop()
    if not ok:
        raise SystemExit(1)
