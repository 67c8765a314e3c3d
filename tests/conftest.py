"""Real PostgreSQL, real Redis and a real HTTP server for every test.

By default the servers are embedded (started from their wheels in a temporary directory). With
HANOIPAY_TEST_DATABASE_URL and HANOIPAY_TEST_REDIS_URL set, the tests use those servers instead.
The schema is built by running the Alembic migrations; each test starts from empty tables.
"""

import json
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HANOIPAY_JWT_KEYS", json.dumps({"test-1": secrets.token_urlsafe(32)}))
os.environ.setdefault("HANOIPAY_JWT_ACTIVE_KID", "test-1")

import httpx
import redis
import uvicorn
from sqlalchemy import text

from city.app import create_app
from city.domains import register_domains
from hanoipay import db, jobs
from hanoipay.db import Base, sqlalchemy_url
from hanoipay.embedded import EmbeddedPostgres, EmbeddedRedis
from hanoipay.runtime import migrate_to_head
from payments.ledger import clear_account_cache

# Every table of every domain (the composition root imported all their models above).
TABLES = ", ".join(table.name for table in Base.metadata.sorted_tables)


def _reset_schema(url: str) -> None:
    engine = db.init_engine(url, pool_size=5)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A PostgreSQL database with the schema built by the migrations."""
    configured = os.environ.get("HANOIPAY_TEST_DATABASE_URL")
    server = None
    if configured:
        url = sqlalchemy_url(configured)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="hanoipay-test-"))
        server = EmbeddedPostgres(tmp / "postgres", cleanup="delete")
        url = sqlalchemy_url(server.start())
    _reset_schema(url)
    migrate_to_head(url)
    register_domains()
    os.environ["HANOIPAY_DATABASE_URL"] = url
    db.init_engine(url, pool_size=30)
    yield url
    db.get_engine().dispose()
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server for the queue."""
    configured = os.environ.get("HANOIPAY_TEST_REDIS_URL")
    server = None
    if configured:
        url = configured
    else:
        server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="hanoipay-redis-")), persist=False)
        url = server.start()
    os.environ["HANOIPAY_REDIS_URL"] = url
    jobs.init_redis(url)
    yield url
    if server is not None:
        server.stop()


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """The real app under uvicorn in a background thread."""

    def __init__(self) -> None:
        self.port = free_port()
        config = uvicorn.Config(create_app(), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def live_server(database_url: str, redis_url: str) -> Iterator[LiveServer]:
    server = LiveServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def clean_state(database_url: str, redis_url: str) -> None:
    """Every test starts with empty tables and an empty Redis database."""
    with db.get_engine().begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    clear_account_cache()
    redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client for the live server."""
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client
