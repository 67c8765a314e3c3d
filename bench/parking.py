"""Parking: spot search latency and session starts per second, each beside a baseline of the same run.

    .venv/bin/python bench/parking.py [--zones 2000] [--spots-per-zone 50] [--searches 2000]
                                      [--starts 8000] [--threads 4] [--http-seconds 15] [--connections 4]
    .venv/bin/python bench/parking.py --small      # reduced sizes, for a quick look

1. Search over `zones × spots-per-zone` generated spots around Hoàn Kiếm: p50/p95 of `parking.service.search`
   (bounding box on the (lat, lon) index, exact haversine, free spots counted per zone, a price quote per
   hit) beside a plain indexed SQL nearest-zone query (the same bounding box and distance, no availability,
   no price) over the same points; then over HTTP with wrk (`GET /v1/parking/search`, every request timed
   by the script, wrk's own histogram p95 beside it) beside wrk on `GET /healthz` against the same server.
2. Session starts per second (quote presented, spot claimed, session row, wallet hold), beside confirmed
   wallet payments per second through `payments.intents` in the same run, same threads.
"""

import argparse
import functools
import io
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import start
from bench.parking_http import http_search
from bench.payments import ADMIN, PRICE, make_merchants, make_payers, run_threads
from hanoipay.db import RELAY_AFTER_COMMIT, job_session
from hanoipay.ids import new_id
from merchants.service.onboarding import register_merchant
from parking import loader
from parking.geo import EARTH_RADIUS_M, bounding_box
from parking.models import Zone
from parking.service import catalog, quotes, sessions
from parking.service.search import search
from payments import balances, intents

CENTRE = (21.0285, 105.8542)
SPREAD = 0.08  # degrees either side: about 9 km by 8 km
RADIUS = 1_000
TARIFF = """
tariffs:
  - code: BENCH-CAR
    name: bench cars
    vehicle_type: car
    versions:
      - decision: "44/2017/QĐ-UBND (sample prices)"
        effective_from: 2017-10-01
        bands:
          - name: day
            start: "06:00"
            end: "18:00"
            blocks: [{minutes: 120, price: 25000}, {minutes: 60, price: 30000}]
          - {name: night, start: "18:00", end: "06:00", turn: 50000}
        daily_cap: 300000
"""
NEAREST_SQL = """
    SELECT id, 2 * %(r)s * asin(least(1.0, sqrt(power(sin(radians(lat - %(lat)s) / 2), 2)
           + cos(radians(%(lat)s)) * cos(radians(lat)) * power(sin(radians(lon - %(lon)s) / 2), 2)))) AS d
    FROM parking_zone
    WHERE lat BETWEEN %(lat_min)s AND %(lat_max)s AND lon BETWEEN %(lon_min)s AND %(lon_max)s
    ORDER BY d LIMIT 10
"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def generate(dsn: str, zones: int, spots_per_zone: int, rng: random.Random) -> None:
    """An operator with `zones` zones of `spots_per_zone` car spots each, 60 % occupied."""
    with job_session() as session:
        merchant = register_merchant(
            session,
            ADMIN,
            name="Bench parking",
            kind="parking_operator",
            fee_bps=150,
            currency="VND",
            payout_bank_bin="970436",
            payout_account="0011000123",
            payout_account_name="BENCH",
        )
        catalog.load_data(session, ADMIN, loader.check(TARIFF), merchant.payee.id)
        merchant_id = merchant.payee.id
    zone_rows, spot_rows, link_rows = io.StringIO(), io.StringIO(), io.StringIO()
    now = datetime.now(UTC).isoformat()
    with psycopg.connect(dsn) as conn:
        tariff_id = conn.execute("SELECT id FROM parking_tariff WHERE code = 'BENCH-CAR'").fetchone()[0]  # type: ignore[index]
        for z in range(zones):
            zone_id = new_id("pz")
            lat, lon = CENTRE[0] + rng.uniform(-SPREAD, SPREAD), CENTRE[1] + rng.uniform(-SPREAD, SPREAD)
            geometry = json.dumps({"type": "LineString", "coordinates": [[lat, lon], [lat + 0.0005, lon]]})
            zone_rows.write(
                f"{zone_id}\t{merchant_id}\tB{z:05d}\tBench {z}\tstreet\tPhố {z % 97}\tphố {z % 97}\t"
                f"Hoàn Kiếm\taddr\t{lat}\t{lon}\t{geometry}\t480\t5\t10\trelease\ttrue\t{now}\n"
            )
            link_rows.write(f"{zone_id}\tcar\t{tariff_id}\n")
            for s in range(spots_per_zone):
                state = "free" if rng.random() < 0.4 else "occupied"
                spot_rows.write(
                    f"{new_id('spt')}\t{zone_id}\tC{s:03d}\tcar\t{lat}\t{lon}\t{state}\tbench\t{now}\n"
                )
        with conn.cursor() as cur:
            for table, columns, rows in (
                (
                    "parking_zone",
                    "id, merchant_id, code, name, kind, street, street_key, district, address, lat, lon, "
                    "geometry, max_duration_minutes, grace_minutes, reminder_minutes, unused_time_rule, "
                    "sample, created_at",
                    zone_rows,
                ),
                (
                    "parking_spot",
                    "id, zone_id, code, vehicle_type, lat, lon, state, state_source, state_changed_at",
                    spot_rows,
                ),
                ("parking_zone_tariff", "zone_id, vehicle_type, tariff_id", link_rows),
            ):
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    copy.write(rows.getvalue())
    with psycopg.connect(dsn, autocommit=True) as conn:  # as autovacuum would: statistics, visibility map
        conn.execute("VACUUM (ANALYZE) parking_zone, parking_spot, parking_zone_tariff")


def points(n: int, rng: random.Random) -> list[tuple[float, float]]:
    return [
        (CENTRE[0] + rng.uniform(-SPREAD, SPREAD), CENTRE[1] + rng.uniform(-SPREAD, SPREAD)) for _ in range(n)
    ]


def search_latencies(where: list[tuple[float, float]]) -> tuple[list[float], int]:
    """Milliseconds per service-layer search, each in its own session (as a request has); and hits found."""
    took, found = [], 0
    for lat, lon in where:
        t0 = time.perf_counter()
        with job_session() as session:
            found += len(
                search(session, vehicle_type="car", duration_minutes=120, lat=lat, lon=lon, radius_m=RADIUS)
            )
        took.append((time.perf_counter() - t0) * 1000)
    return took, found


def nearest_sql_latencies(dsn: str, where: list[tuple[float, float]]) -> list[float]:
    """Milliseconds per plain indexed nearest-zone query, each in its own transaction on one connection."""
    took = []
    with psycopg.connect(dsn) as conn:
        for lat, lon in where:
            lat_min, lat_max, lon_min, lon_max = bounding_box(lat, lon, RADIUS)
            params = {
                "r": EARTH_RADIUS_M,
                "lat": lat,
                "lon": lon,
                "lat_min": lat_min,
                "lat_max": lat_max,
                "lon_min": lon_min,
                "lon_max": lon_max,
            }
            t0 = time.perf_counter()
            with conn.transaction():
                conn.execute(NEAREST_SQL, params).fetchall()
            took.append((time.perf_counter() - t0) * 1000)
    return took


ROUNDS = 20


def _shifted(work: Callable[[int, int], None], offset: int, t: int, i: int) -> None:
    work(t, offset + i)


def start_and_payment_rates(starts: int, threads: int) -> tuple[float, float, float]:
    """(session starts/s, wallet payments/s, the median of the rounds' ratios), measured in alternating
    rounds so both see the same machine (a round's ratio compares two runs a second apart).

    A start presents a quote made beforehand, claims a spot, writes the session and places the wallet
    hold; a payment is a confirmed wallet payment through `payments.intents` (the core's own figure).
    Both leave their outbox rows to the worker's relayer, as an API request does.
    """
    drivers = make_payers(threads, funds=10**10)
    merchants = make_merchants(50)
    payers = make_payers(threads, funds=PRICE * starts * 2)
    per_thread = starts // threads
    with job_session() as session:
        codes = list(session.scalars(select(Zone.code).order_by(Zone.code)))
        ready = [
            [
                quotes.create_quote(
                    session,
                    drivers[t][0],
                    zone_code=codes[(t * 7919 + i * 31) % len(codes)],
                    vehicle_type="car",
                    duration_minutes=120,
                )[0].id
                for i in range(per_thread)
            ]
            for t in range(threads)
        ]

    def start_one(t: int, i: int) -> None:
        who, wallet_id, _ = drivers[t]
        with job_session() as session:
            session.info[RELAY_AFTER_COMMIT] = False
            sessions.start_session(
                session,
                who,
                quote_id=ready[t][i],
                plate=f"{30 + t}A-{i // 100:03d}.{i % 100:02d}",
                provider="wallet",
                wallet_id=wallet_id,
            )

    def pay(t: int, i: int) -> None:
        who, wallet_id, _ = payers[t]
        with job_session() as session:
            session.info[RELAY_AFTER_COMMIT] = False
            intents.create_intent(
                session,
                who,
                amount=PRICE,
                currency="VND",
                purpose="merchant_payment",
                merchant_id=merchants[(t * 7 + i) % len(merchants)][0],
                provider="wallet",
                wallet_id=wallet_id,
                confirm=True,
            )

    chunk = per_thread // ROUNDS
    timed = {"start": 0.0, "pay": 0.0}
    ratios = []
    for r in range(ROUNDS):
        offset = r * chunk
        order = (("start", start_one), ("pay", pay)) if r % 2 == 0 else (("pay", pay), ("start", start_one))
        took = {}
        for name, work in order:
            t0 = time.perf_counter()
            run_threads(threads, chunk * threads, functools.partial(_shifted, work, offset))
            took[name] = time.perf_counter() - t0
            timed[name] += took[name]
        ratios.append(took["pay"] / took["start"])
    done = chunk * threads * ROUNDS
    return done / timed["start"], done / timed["pay"], statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--zones", type=int, default=2_000)
    parser.add_argument("--spots-per-zone", type=int, default=50)
    parser.add_argument("--searches", type=int, default=2_000)
    parser.add_argument("--starts", type=int, default=8_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--http-seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--small", action="store_true", help="zones 200, searches 300, starts 400, 5 s of HTTP"
    )
    args = parser.parse_args()
    if args.small:
        args.zones, args.searches, args.starts, args.http_seconds = 200, 300, 400, 5
    rng = random.Random(2026)
    servers = start()
    dsn = servers.database_url.replace("postgresql+psycopg://", "postgresql://")
    try:
        t0 = time.perf_counter()
        generate(dsn, args.zones, args.spots_per_zone, rng)
        print(
            f"generated {args.zones} zones, {args.zones * args.spots_per_zone} spots"
            f" in {time.perf_counter() - t0:.1f}s"
        )
        where = points(args.searches, rng)
        search_latencies(where[:100])  # warm-up
        service, found = search_latencies(where)
        plain = nearest_sql_latencies(dsn, where)
        print(
            f"\nSearch, {args.searches} random points, radius {RADIUS} m, limit 10, 120-minute quote "
            f"({found / len(where):.1f} zones found per search)"
        )
        print(
            f"  service layer            p50 {statistics.median(service):6.2f} ms"
            f"   p95 {percentile(service, 95):6.2f} ms"
        )
        print(
            f"  baseline, plain SQL      p50 {statistics.median(plain):6.2f} ms"
            f"   p95 {percentile(plain, 95):6.2f} ms"
            "   (indexed nearest-zone query: no availability, no price)"
        )
        searched, healthz = http_search(servers, where, RADIUS, args.http_seconds, args.connections)
        print(
            f"\nHTTP with wrk, {args.connections} connections, 2 uvicorn workers,"
            f" {args.http_seconds:.0f} s each"
        )
        print(
            f"  GET /v1/parking/search   {searched['rate']:6.0f}/s   p50 {searched['p50']:6.2f} ms"
            f"   p95 {searched['p95']:6.2f} ms   max {searched['max']:7.1f} ms"
            f"   (wrk's histogram: p95 {searched['wrk_p95']:.2f} ms)"
        )
        print(
            f"  baseline, GET /healthz   {healthz['rate']:6.0f}/s   p50 {healthz['p50']:6.2f} ms"
            f"   p95 {healthz['p95']:6.2f} ms   max {healthz['max']:7.1f} ms"
            f"   (wrk's histogram: p95 {healthz['wrk_p95']:.2f} ms)"
        )
        starts, payments, ratio = start_and_payment_rates(args.starts, args.threads)
        print(
            f"\nSession starts with a wallet hold, {args.starts}, {args.threads} threads,"
            f" {ROUNDS} rounds alternating with the baseline"
        )
        print(f"  session starts           {starts:6.0f}/s")
        print(f"  baseline, wallet payments {payments:5.0f}/s   ratio {starts / payments:.2f}")
        print(f"  median of the {ROUNDS} rounds' ratios      {ratio:.2f}   (target >= 0.8)")
        with job_session() as session:
            assert balances.verify(session).ok, "ledger verification failed after the benchmark"
        print(
            f"\nmachine: {os.cpu_count()} cores; database: {'embedded' if servers.postgres else 'configured'}"
        )
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
