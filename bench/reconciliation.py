"""Reconciliation of a day: N card payments in the ledger against N lines of Stripe's balance report.

    .venv/bin/python bench/reconciliation.py [--lines 1000000] [--workers 2]

The ledger's N payments (intents, entries and their lines) are written by SQL beforehand; they are the
platform's records, not part of the measure. Measured, each beside the baseline of the same run (a bare
`COPY` of both sets, the provider's CSV and the ledger's lines, into plain tables):

- the import of the provider's file through the upload path (parse and check every line, then COPY);
- the run with real `hanoipay worker` processes: stage the ledger side, match the chunks in parallel,
  settle the residue, open cases, summarise.
"""

import argparse
import io
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import redis
from rq import Worker
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BenchServers, start
from hanoipay.auth.service import Principal
from hanoipay.db import job_session
from hanoipay.localtime import HANOI
from merchants.service.onboarding import register_merchant
from payments import ledger
from reconciliation import runs, statements
from reconciliation.models import Chunk, ChunkAttempt, Run

FINANCE = Principal(id="usr_bench_finance", kind="user", roles=frozenset({"admin", "finance"}))
ROOT = Path(__file__).resolve().parent.parent


def spread(n: int) -> int:
    """Milliseconds between two payments so that N of them fill the business day."""
    return 86_000_000 // n


def make_ledger(dsn: str, n: int, day: date) -> None:
    """N succeeded Stripe payments with their entries and three lines each, posted through the day."""
    with job_session() as session:
        merchant = register_merchant(
            session,
            FINANCE,
            name="Bench merchant",
            kind="market_vendor",
            fee_bps=100,
            currency="VND",
            payout_bank_bin="970436",
            payout_account="0011000123",
            payout_account_name="BENCH",
        )
        clearing = ledger.clearing_account(session, "stripe", "VND").id
        fees = ledger.fee_revenue_account(session, "VND").id
        merchant_id, payable = merchant.payee.id, merchant.payee.account_id
    start = datetime(day.year, day.month, day.day, tzinfo=HANOI).astimezone(UTC)
    params = {
        "n": n,
        "m": merchant_id,
        "start": start,
        "clearing": clearing,
        "payable": payable,
        "fees": fees,
        "step": spread(n),
    }
    with psycopg.connect(dsn) as conn:
        conn.execute(
            """INSERT INTO payment_intent (id, merchant_id, purpose, amount, currency, status, capture_method,
                   provider, provider_ref, amount_capturable, amount_received, amount_refunded, fee_amount,
                   metadata, created_by, updated_at, succeeded_at, amount_collected)
               SELECT 'pi_bench' || lpad(g::text, 9, '0'), %(m)s, 'merchant_payment', 10000 + g %% 90000,
                      'VND', 'succeeded', 'automatic', 'stripe', 'pi_stripe' || lpad(g::text, 9, '0'), 0,
                      10000 + g %% 90000, 0, (10000 + g %% 90000) / 100, '{}', 'bench', now(), now(), 0
               FROM generate_series(1, %(n)s) g""",
            params,
        )
        conn.execute(
            """INSERT INTO journal_entry (id, kind, dedupe_key, intent_id, description, posted_at)
               SELECT 'je_bench' || lpad(g::text, 9, '0'), 'payment',
                      'payment:pi_bench' || lpad(g::text, 9, '0'), 'pi_bench' || lpad(g::text, 9, '0'),
                      'bench', %(start)s + (g * %(step)s) * interval '1 ms'
               FROM generate_series(1, %(n)s) g""",
            params,
        )
        conn.execute(
            """INSERT INTO journal_line (entry_id, account_id, currency, amount, posted_at)
               SELECT 'je_bench' || lpad(g::text, 9, '0'), a.account, 'VND', a.sign * (10000 + g %% 90000)
                      + a.fee * ((10000 + g %% 90000) / 100), %(start)s + (g * %(step)s) * interval '1 ms'
               FROM generate_series(1, %(n)s) g,
                    (VALUES (%(clearing)s, 1, 0), (%(payable)s, -1, 1), (%(fees)s, 0, -1))
                    AS a(account, sign, fee)""",
            params,
        )
        conn.execute("ANALYZE payment_intent; ANALYZE journal_entry; ANALYZE journal_line")


def stripe_report(n: int, day: date) -> bytes:
    """Stripe's balance report for the same N payments: gross, Stripe's fee and net per line."""
    start = int(datetime(day.year, day.month, day.day, tzinfo=HANOI).timestamp())
    step = spread(n)
    out = io.StringIO()
    out.write(
        "balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category,payment_intent_id\n"
    )
    for g in range(1, n + 1):
        amount = 10_000 + g % 90_000
        fee = (amount * 340 + 5_000) // 10_000 + 2_000
        created = datetime.fromtimestamp(start + g * step // 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        out.write(f"txn_bench{g:09d},{created},vnd,{amount},{fee},{amount - fee},charge,pi_stripe{g:09d}\n")
    return out.getvalue().encode()


def copy_baseline(dsn: str, report: bytes) -> float:
    """Seconds for a bare COPY of both sets (the report's CSV and the ledger's lines) into plain tables."""
    with psycopg.connect(dsn) as conn:
        ledger_csv = io.BytesIO()
        with conn.cursor().copy(
            "COPY (SELECT l.id, l.entry_id, l.account_id, l.amount, l.posted_at, pi.provider_ref"
            " FROM journal_line l"
            " JOIN journal_entry e ON e.id = l.entry_id JOIN payment_intent pi ON pi.id = e.intent_id"
            " WHERE e.dedupe_key LIKE 'payment:pi_bench%%') TO STDOUT WITH (FORMAT csv)"
        ) as copy:
            for block in copy:
                ledger_csv.write(block)
        conn.execute(
            "CREATE TABLE baseline_provider (id text, created text, currency text, gross bigint, fee bigint,"
            " net bigint, category text, payment_intent text)"
        )
        conn.execute(
            "CREATE TABLE baseline_ledger (id bigint, entry_id text, account_id text, amount bigint,"
            " posted_at timestamptz, ref text)"
        )
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cursor:
            with cursor.copy("COPY baseline_provider FROM STDIN WITH (FORMAT csv, HEADER)") as copy:
                copy.write(report)
            with cursor.copy("COPY baseline_ledger FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(ledger_csv.getvalue())
        conn.commit()
        return time.perf_counter() - started


def run_with_workers(servers: BenchServers, day: date, workers: int) -> tuple[float, Run]:
    """Seconds from queueing the run to its completion by `workers` real `hanoipay worker` processes.

    The workers are started and idle first, as in production, so their start-up is not measured.
    """
    env = {
        **os.environ,
        "HANOIPAY_DATABASE_URL": servers.database_url,
        "HANOIPAY_REDIS_URL": servers.redis_url,
    }
    command = [sys.executable, "-m", "city.cli", "worker"]
    procs = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    try:
        connection = redis.Redis.from_url(servers.redis_url)
        while len(Worker.all(connection=connection)) < workers:
            time.sleep(0.1)
        started = time.perf_counter()
        with job_session() as session:
            run_id = runs.create_run(
                session, FINANCE, provider="stripe", business_day=day, parallelism=workers
            ).id
        while True:
            with job_session() as session:
                run = session.get(Run, run_id)
                assert run is not None
                if run.status in ("completed", "failed"):
                    break
            time.sleep(0.05)
        return time.perf_counter() - started, run
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(60)


def phases(run: Run) -> str:
    """Where the run's time went: the staging chunks, the matching chunks, and the residue to completion."""
    with job_session() as session:
        spans = session.execute(
            select(Chunk.phase, func.min(ChunkAttempt.started_at), func.max(Chunk.done_at))
            .join(ChunkAttempt, (ChunkAttempt.run_id == Chunk.run_id) & (ChunkAttempt.no == Chunk.no))
            .where(Chunk.run_id == run.id)
            .group_by(Chunk.phase)
        ).all()
    span: dict[str, tuple[datetime, datetime]] = {}
    for phase, first, last in spans:
        assert first is not None, f"the {phase} chunks did not all start"
        assert last is not None, f"the {phase} chunks did not all finish"
        span[phase] = (first, last)
    assert run.finished_at is not None
    staged, matched = span["stage"], span["match"]
    return (
        f"phases: queued → first chunk {(staged[0] - run.created_at).total_seconds():.1f} s, "
        f"staging {(staged[1] - staged[0]).total_seconds():.1f} s, "
        f"matching {(matched[1] - matched[0]).total_seconds():.1f} s, "
        f"residue and summary {(run.finished_at - matched[1]).total_seconds():.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    servers = start()
    dsn = servers.database_url.replace("postgresql+psycopg://", "postgresql://")
    day = datetime.now(HANOI).date() - timedelta(days=2)
    try:
        t0 = time.perf_counter()
        make_ledger(dsn, args.lines, day)
        report = stripe_report(args.lines, day)
        print(
            f"set-up: {args.lines:,} ledger payments and a {len(report) / 2**20:.0f} MiB Stripe report "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        baseline = copy_baseline(dsn, report)
        t0 = time.perf_counter()
        with job_session() as session:
            stored = statements.upload_statement(
                session, FINANCE, format="stripe_balance_csv", filename="bench.csv", data=report
            )
        imported = time.perf_counter() - t0
        assert stored.new_lines == args.lines
        elapsed, run = run_with_workers(servers, day, args.workers)
        assert run.status == "completed", run.error
        assert run.summary is not None
        matched = run.summary["results"].get("matched", {}).get("count", 0)
        print(
            f"\nReconciliation of {args.lines:,} ledger payments against {args.lines:,} Stripe lines, "
            f"{args.workers} workers, {run.chunks_total} chunks"
        )
        print(f"{'step':<52}{'seconds':>9}{'× COPY':>8}")
        print(f"{'baseline: bare COPY of both sets into plain tables':<52}{baseline:>9.1f}{1:>8.2f}")
        for label, seconds in (
            ("import of the report (parse, check, COPY, dedupe)", imported),
            ("run (stage, match chunks, residue, cases, summary)", elapsed),
        ):
            print(f"{label:<52}{seconds:>9.1f}{seconds / baseline:>8.2f}")
        print(f"{'import + run':<52}{imported + elapsed:>9.1f}{(imported + elapsed) / baseline:>8.2f}")
        print(f"  matched {matched:,}; exceptions {run.summary['exceptions']:,}")
        print("  " + phases(run))
        print(
            f"\nmachine: {os.cpu_count()} cores; database: {'embedded' if servers.postgres else 'configured'}"
        )
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
