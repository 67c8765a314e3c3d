"""Shared set-up for the benchmarks: a database and Redis (configured or embedded), with the schema."""

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text

from city.domains import register_domains
from hanoipay import db, jobs
from hanoipay.db import sqlalchemy_url
from hanoipay.embedded import EmbeddedPostgres, EmbeddedRedis
from hanoipay.runtime import migrate_to_head


@dataclass
class BenchServers:
    """Where the benchmark runs, and what to stop afterwards."""

    database_url: str
    redis_url: str
    postgres: EmbeddedPostgres | None
    redis: EmbeddedRedis | None

    def stop(self) -> None:
        if self.redis:
            self.redis.stop()
        if self.postgres:
            self.postgres.stop()


def start() -> BenchServers:
    """HANOIPAY_BENCH_DATABASE_URL / _REDIS_URL if set, else fresh embedded servers; schema by migrations."""
    tmp = Path(tempfile.mkdtemp(prefix="hanoipay-bench-"))
    pg = rd = None
    url = os.environ.get("HANOIPAY_BENCH_DATABASE_URL")
    if url is None:
        pg = EmbeddedPostgres(tmp / "postgres", cleanup="delete")
        url = pg.start()
    redis_url = os.environ.get("HANOIPAY_BENCH_REDIS_URL")
    if redis_url is None:
        rd = EmbeddedRedis(tmp / "redis", persist=False)
        redis_url = rd.start()
    url = sqlalchemy_url(url)
    engine = db.init_engine(url, pool_size=40)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate_to_head(url)
    db.init_engine(url, pool_size=40)
    jobs.init_redis(redis_url)
    register_domains()
    return BenchServers(url, redis_url, pg, rd)


@dataclass
class LoadResult:
    """Requests completed per second over a timed window, with latency percentiles."""

    rate: float
    p50_ms: float
    p99_ms: float
    done: int


Request = tuple[str, dict[str, str], bytes]


class ApiServer:
    """`hanoipay api` in its own processes (uvicorn workers) against the benchmark's servers."""

    def __init__(
        self, servers: BenchServers, env: dict[str, str], port: int = 18_731, workers: int = 2
    ) -> None:
        self.port = port
        full_env = {
            **os.environ,
            "HANOIPAY_DATABASE_URL": servers.database_url,
            "HANOIPAY_REDIS_URL": servers.redis_url,
            "HANOIPAY_DB_POOL_SIZE": "20",
            **env,
        }
        command = [
            "-m",
            "city.cli",
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        self.process = subprocess.Popen(
            [sys.executable, *command], env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)


def run_load(
    port: int, next_request: Callable[[], Request | None], expect: int, seconds: float, clients: int
) -> LoadResult:
    """Send requests from `clients` concurrent connections for `seconds` after a 2 s warm-up.

    `next_request` gives the next (path, headers, body), or None when it has no more; an empty body
    means a GET. Every answer must have status `expect`, or the run stops with the body.
    """
    latencies: list[float] = []

    async def client(deadline: float, http: httpx.AsyncClient) -> int:
        done = 0
        while time.perf_counter() < deadline and (request := next_request()) is not None:
            path, headers, body = request
            t0 = time.perf_counter()
            r = await (
                http.post(path, content=body, headers=headers) if body else http.get(path, headers=headers)
            )
            latencies.append(time.perf_counter() - t0)
            if r.status_code != expect:
                raise RuntimeError(f"{r.status_code}: {r.text}")
            done += 1
        return done

    async def main() -> tuple[int, float]:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as http:
            for _ in range(300):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            await asyncio.gather(*(client(time.perf_counter() + 2, http) for _ in range(clients)))
            latencies.clear()
            t0 = time.perf_counter()
            counts = await asyncio.gather(*(client(t0 + seconds, http) for _ in range(clients)))
            return sum(counts), time.perf_counter() - t0

    done, elapsed = asyncio.run(main())
    latencies.sort()
    return LoadResult(
        rate=done / elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
        done=done,
    )
