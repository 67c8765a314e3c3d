"""The `hanoipay` command: serve, api, worker, cron, migrate, users, ledger, demo."""

import logging
import os
import signal
import sys
import time
from types import FrameType
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from city.app import create_app
from city.domains import DOMAINS, periodic_jobs, register_domains
from hanoipay.db import job_session
from hanoipay.jobs import Relayer, relay_all, run_job
from hanoipay.resilience import resilient_redis
from hanoipay.runtime import Runtime, freeze_startup_objects, start_runtime
from hanoipay.settings import get_settings
from hanoipay.supervisor import Child, Supervisor, popen_child
from payments.balances import VerifyReport

app = typer.Typer(help="HanoiPay: cashless payments and e-tickets for a city.", no_args_is_help=True)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
ledger_app = typer.Typer(help="Check and maintain the ledger.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(ledger_app, name="ledger")
for _domain in DOMAINS:
    if _domain.cli is not None:
        app.add_typer(_domain.cli, name=_domain.name)
console = Console()


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Run everything in one place: embedded servers if none are configured, the API, a worker and cron.

    The worker, the cron scheduler and the embedded Redis are supervised: one that exits is restarted
    with backoff. Ctrl-C and SIGTERM (docker stop, systemd) both stop everything cleanly.
    """
    _logging()
    # SIGTERM behaves as Ctrl-C everywhere: uvicorn shuts down gracefully, then the finally below runs.
    signal.signal(signal.SIGTERM, _interrupt)
    runtime = start_runtime(migrate=True, api=True)
    supervisor = Supervisor(_serve_children(runtime))
    try:
        supervisor.start()
        console.print(
            f"HanoiPay on http://{host}:{port}  (docs at /docs)  data: {get_settings().data_dir.resolve()}"
        )
        uvicorn.run(create_app(), host=host, port=port, log_level="info")
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop()
        runtime.stop()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve_children(runtime: Runtime) -> list[Child]:
    env = {**os.environ, **runtime.child_environment()}
    children = [
        popen_child(role, [sys.executable, "-m", "city.cli", role], env) for role in ("worker", "cron")
    ]
    if runtime.embedded_redis is not None:
        embedded = runtime.embedded_redis

        def restart_redis() -> None:
            embedded.start()  # on the same socket, with the data it saved

        # Started by the runtime already; the supervisor only brings it back, and the runtime stops it.
        redis_child = Child("embedded Redis", restart_redis, embedded.exit_code, lambda: None)
        redis_child.started_at = time.monotonic()
        children.insert(0, redis_child)
    return children


@app.command()
def api(
    host: Annotated[str, typer.Option()] = "0.0.0.0",  # noqa: S104
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option(help="Uvicorn worker processes")] = 2,
    healthcheck_timeout: Annotated[
        int,
        typer.Option(
            help="Seconds a worker may take to answer uvicorn's liveness ping before it is killed and"
            " replaced (uvicorn's own default, 5, kills busy workers on a saturated machine)"
        ),
    ] = 30,
) -> None:
    """Run the API alone against configured servers (production; scale with replicas and --workers)."""
    uvicorn.run(
        "city.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=get_settings().access_log,
        timeout_worker_healthcheck=healthcheck_timeout,
    )


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit once the queue is empty")] = False,
) -> None:
    """Run an RQ worker for the job queue, and relay the outbox to it as transactions commit.

    Jobs run in the worker's own process (RQ's SimpleWorker): forking a work horse per job costs this
    platform's short, database-bound jobs far more than the jobs themselves (hundreds of milliseconds per
    event delivered). A worker that dies is restarted by its supervisor (`serve`, compose, systemd).
    """
    from rq import SimpleWorker

    _logging()
    runtime = start_runtime()
    register_domains()
    connection = resilient_redis(runtime.redis_url, "worker")
    relayer = Relayer()
    if burst:
        relay_all()
    else:
        freeze_startup_objects()
        relayer.start()
    try:
        SimpleWorker([get_settings().queue_name], connection=connection).work(
            with_scheduler=True, burst=burst
        )
    finally:
        if not burst:
            relayer.stop()
        runtime.stop()


@app.command()
def cron() -> None:
    """Run RQ's cron scheduler, enqueueing every domain's periodic jobs (sweeps, roll-up, voids, purges)."""
    from rq.cron import CronScheduler

    _logging()
    runtime = start_runtime()
    register_domains()
    scheduler = CronScheduler(connection=resilient_redis(runtime.redis_url, "cron"))
    for periodic in periodic_jobs():
        scheduler.register(
            run_job,
            get_settings().queue_name,
            args=(periodic.name,),
            interval=periodic.seconds,
            cron=periodic.cron,
            name=periodic.name,
        )
    try:
        scheduler.start()  # type: ignore[no-untyped-call]
    finally:
        runtime.stop()


@app.command()
def migrate() -> None:
    """Apply the database migrations."""
    start_runtime(migrate=True).stop()
    console.print("migrations applied")


@users_app.command("create")
def create_user(
    email: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option()],
    role: Annotated[list[str], typer.Option(help="Repeat for several roles")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    merchant_id: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create a user, such as the first admin."""
    from hanoipay.auth.service import create_user as create
    from hanoipay.errors import HanoiPayError

    runtime = start_runtime(migrate=True)
    try:
        with job_session() as session:
            user = create(
                session, email=email, password=password, full_name=name, roles=role, merchant_id=merchant_id
            )
        console.print(f"created {user.id} {user.email} roles={','.join(user.roles)}")
    except HanoiPayError as error:
        console.print(f"[red]{error.code}[/red]: {error.detail}")
        raise typer.Exit(1) from None
    finally:
        runtime.stop()


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Recompute every balance from the lines and check every entry balances; exit 1 otherwise."""
    from payments.balances import verify

    runtime = start_runtime()
    try:
        with job_session() as session:
            report = verify(session)
    finally:
        runtime.stop()
    print_verify_report(report)
    if not report.ok:
        raise typer.Exit(1)


def print_verify_report(report: VerifyReport) -> None:
    """Print what `ledger verify` found."""
    console.print(f"{report.entries} entries, {report.lines} lines, {report.accounts} accounts checked")
    problems = Table("problem", "object", "expected (from lines)", "found")
    for entry_id, currency, total in report.unbalanced_entries:
        problems.add_row("entry does not balance", f"{entry_id} {currency}", "0", str(total))
    for account_id, expected, found in report.balance_mismatches:
        problems.add_row("balance differs from lines", account_id, str(expected), str(found))
    for account_id, expected, found in report.hold_mismatches:
        problems.add_row("held differs from open holds", account_id, str(expected), str(found))
    for account_id, available in report.negative_checked:
        problems.add_row("checked account below zero", account_id, ">= 0", str(available))
    if report.ok:
        console.print("[green]ledger OK[/green]: every entry balances and every balance equals its lines")
    else:
        console.print(problems)
        console.print("[red]ledger verification FAILED[/red]")


@ledger_app.command("rollup")
def ledger_rollup() -> None:
    """Fold the hot accounts' pending deltas into their balance rows now."""
    from payments.jobs import roll_up_balances

    runtime = start_runtime()
    try:
        console.print(f"rolled up {roll_up_balances()} deltas")
    finally:
        runtime.stop()


@app.command()
def demo(
    fresh: Annotated[bool, typer.Option(help="Start from an empty data directory")] = True,
) -> None:
    """Simulate a day of the city on the embedded servers and print a reconciled summary."""
    from city.demo import run_demo

    run_demo(fresh=fresh)


if __name__ == "__main__":
    app()
