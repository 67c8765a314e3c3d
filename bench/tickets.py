"""Transit tickets: validator decisions per second, and a city's day of taps priced and charged.

    .venv/bin/python bench/tickets.py [--codes 50000] [--taps 1000000] [--riders 200000]

1. **Validator decisions on one core**, with credentials cached per credential (each decision verifies
   one Ed25519 signature, the device's), beside the raw Ed25519 verification rate of the same library
   (`cryptography`) on the same message sizes, in the same process; with decision latency p50/p99.
2. **Fare processing**: `--taps` taps from `--riders` riders (bus rides, metro rides with exits,
   transfers, capped days) loaded into `transit_tap`, then every card's day priced
   (`price_card_days`) and the day's charges posted through `payments.batch` (`charge_closed_days`),
   beside a bare `COPY` of the same taps into the same table, measured in the same run.
"""

import argparse
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import start
from hanoipay.auth.service import Principal
from hanoipay.db import job_session
from hanoipay.ids import new_id
from hanoipay.localtime import HANOI
from merchants.service.onboarding import register_merchant
from payments import balances, ledger
from tickets.credentials import Credential, public_key_bytes, sign_credential
from tickets.rider import RiderDevice
from tickets.service.charging import charge_closed_days
from tickets.service.network import import_feed, sample_feed_files
from tickets.service.pricing import price_card_days
from tickets.validator import Validator

ADMIN = Principal(id="usr_bench_admin", kind="user", roles=frozenset({"admin", "finance"}))
NOW = 1_795_000_000.0


def validator_figures(codes: int, devices: int) -> None:
    """Decisions per second against raw single verifications, on one core, in this process."""
    issuer = Ed25519PrivateKey.generate()
    riders = []
    for _ in range(devices):
        device = RiderDevice()
        credential = Credential(
            "k1", new_id("card"), device.public_key, 0, 10, int(NOW) - 3600, int(NOW) + 86_400
        )
        device.credential = sign_credential(credential, issuer)
        riders.append(device)
    payloads = [riders[i % devices].code(NOW) for i in range(codes)]
    validator = Validator({"k1": public_key_bytes(issuer.public_key())})
    for i, device in enumerate(riders):  # warm the credential cache: one decision per device
        validator.check(device.code(NOW), NOW, vehicle_id=f"warm-{i}")

    latencies = []
    started = time.perf_counter()
    accepted = 0
    for i, payload in enumerate(payloads):
        t0 = time.perf_counter_ns()
        accepted += validator.check(payload, NOW, vehicle_id=str(i)).accepted
        latencies.append(time.perf_counter_ns() - t0)
    decisions = codes / (time.perf_counter() - started)
    assert accepted == codes, f"only {accepted} of {codes} accepted"

    device_key = Ed25519PrivateKey.generate()
    message = b"HPT-CODE" + payloads[0][:-64]
    signature = device_key.sign(message)
    public = device_key.public_key()
    started = time.perf_counter()
    for _ in range(codes):
        public.verify(signature, message)
    raw = codes / (time.perf_counter() - started)

    latencies.sort()
    print(
        f"validator decisions: {decisions:,.0f}/s on one core"
        f" ({codes:,} codes, {devices:,} credentials cached)"
    )
    print(f"raw Ed25519 verify:  {raw:,.0f}/s (cryptography, same message size)  ratio {decisions / raw:.0%}")
    p50, p99 = latencies[len(latencies) // 2] / 1e6, latencies[int(len(latencies) * 0.99)] / 1e6
    print(f"decision latency:    p50 {p50:.3f} ms  p99 {p99:.3f} ms")


def _copy(conn: psycopg.Connection, table: str, columns: str, rows: Sequence[Sequence[object]]) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def seed_riders(dsn: str, riders: int) -> list[str]:
    """Riders with funded wallets and cards, by COPY (their funding posted as one balanced entry)."""
    funds = 200_000
    users, wallets, accounts, balances, cards, lines = [], [], [], [], [], []
    now = datetime.now(UTC)
    with job_session() as session:
        clearing = ledger.clearing_account(session, "manual", "VND")
    entry = new_id("je")
    for i in range(riders):
        user, wallet, account, card = new_id("usr"), new_id("wal"), new_id("acct"), new_id("card")
        users.append((user, f"rider{i}@bench.vn", "Rider", "!", "{customer}", now))
        accounts.append((account, f"wallet:{wallet}", f"Wallet {wallet}", "liability", "VND", "checked", now))
        balances.append((account, funds, 0, True, now))
        wallets.append((wallet, user, "VND", account, now))
        category = "student" if i % 10 == 0 else ("senior" if i % 17 == 0 else "adult")
        cards.append((card, user, wallet, category, "Thẻ", "active", now))
        lines.append((entry, account, "VND", -funds, now))
    lines.append((entry, clearing.id, "VND", funds * riders, now))
    with psycopg.connect(dsn) as conn:
        _copy(conn, "app_user", "id, email, full_name, password_hash, roles, created_at", users)
        _copy(conn, "ledger_account", "id, code, name, type, currency, balance_mode, created_at", accounts)
        _copy(conn, "account_balance", "account_id, posted, held, non_negative, updated_at", balances)
        _copy(conn, "wallet", "id, owner_id, currency, account_id, created_at", wallets)
        conn.execute(
            "INSERT INTO journal_entry (id, kind, dedupe_key, description, posted_at)"
            " VALUES (%s, 'payment', %s,"
            " 'bench funding', now())",
            (entry, f"bench:{entry}"),
        )
        _copy(conn, "journal_line", "entry_id, account_id, currency, amount, posted_at", lines)
        conn.execute(
            "INSERT INTO balance_delta (account_id, amount) VALUES (%s, %s)", (clearing.id, funds * riders)
        )
        _copy(conn, "transit_card", "id, owner_id, wallet_id, category_id, name, status, created_at", cards)
    return [card[0] for card in cards]


TAP_COLUMNS = (
    "id, validator_id, vehicle_id, route_id, stop_id, direction, tapped_at, service_day, card_id, result"
)


def make_taps(cards: list[str], taps: int, day: date, seed: int = 7) -> list[tuple[object, ...]]:
    """A day of taps: mostly buses, some metro rides with an exit, in time order per rider."""
    rng = random.Random(seed)
    start = datetime(day.year, day.month, day.day, 5, tzinfo=HANOI)
    per_rider = taps // len(cards)
    bus = ["09", "34", "90", "70", "107"]
    rows: list[tuple[object, ...]] = []
    for card in cards:
        moment = start + timedelta(minutes=rng.randrange(0, 600))
        made = 0
        while made < per_rider:
            if per_rider - made >= 2 and rng.random() < 0.3:
                line, count = rng.choice((("2A", 12), ("3", 8)))
                prefix = "m2a" if line == "2A" else "m3"
                a, b = rng.sample(range(1, count + 1), 2)
                for direction, stop, later in (("in", a, 0), ("out", b, 20)):
                    rows.append(
                        (
                            new_id("tap"),
                            "val_bench",
                            f"gate-{line}",
                            line,
                            f"{prefix}_{stop:02d}",
                            direction,
                            moment + timedelta(minutes=later),
                            day,
                            card,
                            "accepted",
                        )
                    )
                made += 2
            else:
                rows.append(
                    (
                        new_id("tap"),
                        "val_bench",
                        "bus",
                        rng.choice(bus),
                        None,
                        "in",
                        moment,
                        day,
                        card,
                        "accepted",
                    )
                )
                made += 1
            moment += timedelta(minutes=rng.randrange(25, 90))
    return rows


def fare_figures(dsn: str, taps: int, riders: int) -> None:
    """Price and charge a day of taps, against a bare COPY of the same taps."""
    with job_session() as session:
        merchant = register_merchant(
            session,
            ADMIN,
            name="Hanoi transit",
            kind="transit_operator",
            fee_bps=0,
            currency="VND",
            payout_bank_bin="970436",
            payout_account="0011000123",
            payout_account_name="BENCH",
        )
        import_feed(session, ADMIN, sample_feed_files(), name="Hà Nội sample", merchant_id=merchant.payee.id)
    started = time.perf_counter()
    cards = seed_riders(dsn, riders)
    day = datetime.now(HANOI).date() - timedelta(days=1)
    rows = make_taps(cards, taps, day)
    print(
        f"set-up: {riders:,} riders with wallets and cards, {len(rows):,} taps made"
        f" in {time.perf_counter() - started:.1f}s"
    )

    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE bench_tap (LIKE transit_tap INCLUDING ALL)")
        conn.commit()
        t0 = time.perf_counter()
        _copy(conn, "bench_tap", TAP_COLUMNS, rows)
        conn.commit()
        copy_seconds = time.perf_counter() - t0
        conn.execute("DROP TABLE bench_tap")
        conn.commit()
        _copy(conn, "transit_tap", TAP_COLUMNS, rows)
        conn.commit()
        conn.execute("ANALYZE transit_tap")
        conn.commit()

    keys = sorted({(card, day) for card in cards})
    t0 = time.perf_counter()
    with job_session() as session:
        priced = price_card_days(session, keys)
    pricing = time.perf_counter() - t0
    t1 = time.perf_counter()
    charged, after, runs = 0, None, 0
    while True:
        with job_session() as session:
            run = charge_closed_days(session, after=after)
        if run.last is None:
            break
        charged, after, runs = charged + run.charged, run.last, runs + 1
    charging = time.perf_counter() - t1
    total = pricing + charging
    with job_session() as session:
        balances.roll_up(session)
    with job_session() as session:
        report = balances.verify(session)
    print(
        f"bare COPY of {len(rows):,} taps:        {copy_seconds:6.1f}s"
        f"  ({len(rows) / copy_seconds:,.0f} taps/s)"
    )
    print(f"priced {priced:,} card-days:           {pricing:6.1f}s  ({len(rows) / pricing:,.0f} taps/s)")
    print(
        f"charged in {runs} batches:              {charging:6.1f}s"
        f"  ({priced / charging:,.0f} charges/s, {charged:,} VND)"
    )
    print(f"priced and charged:                 {total:6.1f}s  = {total / copy_seconds:.1f} × the bare COPY")
    print(
        f"ledger verify: {'OK' if report.ok else 'FAILED'}"
        f" ({report.entries:,} entries, {report.lines:,} lines)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--codes", type=int, default=50_000)
    parser.add_argument("--devices", type=int, default=5_000)
    parser.add_argument("--taps", type=int, default=1_000_000)
    parser.add_argument("--riders", type=int, default=200_000)
    args = parser.parse_args()
    validator_figures(args.codes, args.devices)
    servers = start()
    try:
        dsn = servers.database_url.replace("postgresql+psycopg://", "postgresql://")
        fare_figures(dsn, args.taps, args.riders)
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
