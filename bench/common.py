"""Shared set-up for the benchmarks: a database and Redis (configured or embedded), with the schema."""

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from sqlalchemy import text
from sqlalchemy.orm import Session

from city.domains import register_domains
from hanoipay import db, jobs
from hanoipay.auth.models import User
from hanoipay.auth.service import create_user
from hanoipay.db import sqlalchemy_url
from hanoipay.embedded import EmbeddedPostgres, EmbeddedRedis
from hanoipay.ids import new_id
from hanoipay.runtime import migrate_to_head
from hanoipay.settings import get_settings


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


def new_user(session: Session) -> User:
    """A person signed up for a benchmark (role customer), under an address no other run uses."""
    return create_user(
        session,
        email=f"{new_id('b').lower()}@bench.vn",
        password="bench-password",
        full_name="Bench",
        roles=["customer"],
    )


def api_jwt_env() -> dict[str, str]:
    """Fresh JWT keys for this process, which issues the tokens, and the environment that gives the same
    keys to the API it starts."""
    keys = {"bench": secrets.token_urlsafe(32)}
    get_settings().jwt_keys = keys
    return {"HANOIPAY_JWT_KEYS": json.dumps(keys)}


@dataclass(frozen=True)
class WrkResult:
    """What wrk measured: completed requests per second and latency percentiles, plus server CPU."""

    rate: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    cpu_ms_per_request: float


class HttpServer:
    """An ASGI app under uvicorn in its own processes, against the benchmark's servers."""

    def __init__(self, servers: BenchServers, command: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        full_env = {
            **os.environ,
            "HANOIPAY_DATABASE_URL": servers.database_url,
            "HANOIPAY_REDIS_URL": servers.redis_url,
            "HANOIPAY_DB_POOL_SIZE": "20",
            **env,
        }
        self.log = Path(tempfile.mkstemp(prefix="hanoipay-bench-server-", suffix=".log")[1])
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", *command],
                env=full_env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code in (200, 404):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"{' '.join(command)} did not start:\n{self.log_tail()}")
            time.sleep(0.2)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) spent so far by the server's processes (uvicorn's workers included)."""
        processes = [
            psutil.Process(self.process.pid),
            *psutil.Process(self.process.pid).children(recursive=True),
        ]
        total = 0.0
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def log_tail(self, lines: int = 40) -> str:
        """The end of what the server printed (its errors, when a run saw failures)."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)


def hanoipay_api(servers: BenchServers, env: dict[str, str], port: int, workers: int) -> HttpServer:
    """`hanoipay api --workers N`, as production runs it."""
    command = ["city.cli", "api", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return HttpServer(servers, command, env, port)


def uvicorn_app(servers: BenchServers, app: str, env: dict[str, str], port: int, workers: int) -> HttpServer:
    """Another app (a baseline) under the same uvicorn with the same number of workers."""
    command = ["uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    command += ["--log-level", "warning", "--no-access-log"]
    return HttpServer(servers, command, env, port)


def free_port() -> int:
    """A TCP port nobody listens on now (benchmarks of other services may run at the same time)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "requests.lua"


def write_requests(path: Path, requests: list[tuple[str, str, dict[str, str], str]]) -> Path:
    """The file `bench/wrk/requests.lua` replays: one (method, path, headers, body) per line."""
    with path.open("w") as out:
        for method, target, headers, body in requests:
            header_text = "|".join(f"{name}: {value}" for name, value in headers.items())
            out.write(f"{method}\t{target}\t{header_text}\t{body}\n")
    return path


def run_wrk(
    server: HttpServer,
    requests: Path,
    *,
    seconds: float,
    connections: int,
    delay_ms: int = 0,
    run: str = "",
    once: bool = False,
) -> WrkResult:
    """Load `server` with wrk (one thread) replaying `requests`; wrk costs almost no CPU per request.

    With `once`, each request is sent once and the run ends early if the file runs out first.
    """
    env = {
        **os.environ,
        "WRK_REQUESTS": str(requests),
        "WRK_DELAY_MS": str(delay_ms),
        "WRK_RUN": run,
        "WRK_ONCE": "1" if once else "0",
    }
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
    ]
    cpu_before = server.cpu_seconds()
    done = subprocess.run(
        [*command, f"http://127.0.0.1:{server.port}"], env=env, capture_output=True, text=True, check=True
    )
    cpu = server.cpu_seconds() - cpu_before
    line = next(row for row in done.stdout.splitlines() if row.startswith("WRK-JSON "))
    figures = json.loads(line.removeprefix("WRK-JSON "))
    completed = max(1, figures["requests"])
    return WrkResult(
        rate=figures["requests"] / (figures["duration_us"] / 1e6),
        p50_ms=figures["p50_ms"],
        p99_ms=figures["p99_ms"],
        p999_ms=figures["p999_ms"],
        requests=figures["requests"],
        non_2xx=figures["non_2xx"],
        socket_errors=figures["socket_errors"],
        cpu_ms_per_request=cpu * 1000 / completed,
    )


def run_wrk_get(
    server: HttpServer, path: str, headers: dict[str, str], *, seconds: float, connections: int
) -> WrkResult:
    """`run_wrk` repeating one GET of `path` with `headers` (a request file of one line, then removed)."""
    with tempfile.TemporaryDirectory(prefix="hanoipay-bench-wrk-") as workdir:
        requests = write_requests(Path(workdir) / "get.tsv", [("GET", path, headers, "")])
        return run_wrk(server, requests, seconds=seconds, connections=connections)
