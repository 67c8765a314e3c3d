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
from payments.accounts import clear_account_cache

# Every table of every domain (the composition root imported all their models above). A test writes to a
# few of them: the tables it left rows in are found in one statement and only those are truncated, since
# truncating a table (a new file for it and each of its indexes) is what made a blanket TRUNCATE of all of
# them cost a third of a second before every test. Sequences all restart, as RESTART IDENTITY did.
_DIRTY_TABLES = text(
    " UNION ALL ".join(
        f"SELECT '{table.name}' WHERE EXISTS (SELECT FROM {table.name})"
        for table in Base.metadata.sorted_tables
    )
)
_RESTART_SEQUENCES = text(
    "SELECT setval(c.oid, 1, false) FROM pg_class c"
    " WHERE c.relkind = 'S' AND c.relnamespace = 'public'::regnamespace"
)


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
        dirty = conn.execute(_DIRTY_TABLES).scalars().all()
        if dirty:
            conn.execute(text(f"TRUNCATE {', '.join(dirty)} CASCADE"))
        conn.execute(_RESTART_SEQUENCES)
    clear_account_cache()
    redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client for the live server."""
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


# Pages in a real browser -----------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
# As the machine's own probe starts it: no sandbox as root, no GPU, and no background calls to Google.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (installed by scripts/system-packages.sh test)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser tab (a phone-sized window, Vietnamese) on the live server; CSP violations fail it."""
    context = browser.new_context(
        base_url=live_server.url,
        locale="vi-VN",
        viewport={"width": 390, "height": 844},
        service_workers="block",
    )
    tab = context.new_page()
    violations: list[str] = []
    tab.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield tab
    context.close()
    assert violations == [], f"the page broke its Content-Security-Policy: {violations}"


def screenshot(tab, name: str) -> Path:
    """Save a full-page screenshot under artifacts/screenshots/ for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path


def sign_in(tab, email: str, password: str, next_path: str = "/") -> None:
    """Sign in through the sign-in page, as a person would."""
    tab.goto(f"/signin?next={next_path}")
    tab.get_by_label("Email").fill(email)
    tab.get_by_label("Mật khẩu").or_(tab.get_by_label("Password")).fill(password)
    tab.get_by_role("button", name="Đăng nhập").or_(tab.get_by_role("button", name="Sign in")).click()
    tab.wait_for_url(f"**{next_path}")
