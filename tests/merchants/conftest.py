"""What the merchants tests share: the bank's webhook secret, a bank that sends transfers, a worker."""

import json
import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis
from rq import Queue, SimpleWorker

from hanoipay.jobs import get_redis, relay_all
from hanoipay.settings import get_settings
from merchants.settings import get_merchants_settings
from payments.providers.vietqr.webhook import SIGNATURE_HEADER, sign

KID, SECRET = "bank-test", "a shared secret the bank and the platform hold"


@pytest.fixture(autouse=True)
def bank_secret() -> Iterator[None]:
    settings = get_settings()
    saved = settings.bank_webhook_secrets
    settings.bank_webhook_secrets = {KID: SECRET}
    yield
    settings.bank_webhook_secrets = saved


@pytest.fixture(autouse=True)
def quick_heartbeat() -> None:
    """Keep-alive comments every half second, so a test's reader notices it was told to stop."""
    get_merchants_settings().feed_heartbeat_seconds = 0.5


_counter = iter(range(10**9))


def signed(api: httpx.Client, path: str, payload: dict[str, Any]) -> httpx.Response:
    """POST a body signed as the bank signs it."""
    body = json.dumps(payload).encode()
    headers = {SIGNATURE_HEADER: sign(body, kid=KID, secret=SECRET), "content-type": "application/json"}
    return api.post(path, content=body, headers=headers)


def transfer(
    api: httpx.Client, amount: int, description: str = "", *, account: str | None = None
) -> httpx.Response:
    """The bank says `amount` arrived on `account` (the platform's collection account by default)."""
    note = {
        "transaction_id": f"FT{next(_counter):010d}",
        "account": account or get_settings().vietqr_account,
        "amount": amount,
        "description": description,
        "occurred_at": datetime.now(UTC).isoformat(),
        "counter_bank_bin": "970415",
        "counter_account": "101010101010",
    }
    return signed(api, "/v1/webhooks/bank", note)


def drain() -> None:
    """Relay the outbox and run every queued job with a real RQ worker, until nothing is left."""
    connection: redis.Redis = get_redis()
    queue = Queue("default", connection=connection)
    while relay_all() or queue.count:
        SimpleWorker([queue], connection=connection).work(burst=True)


class EventStream:
    """A live feed read in a background thread, its events handed over through a queue."""

    def __init__(self, api: httpx.Client, path: str, headers: dict[str, str]) -> None:
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.status: queue.Queue[int] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(api, path, headers), daemon=True)
        self._thread.start()
        self.status_code = self.status.get(timeout=10)

    def _read(self, api: httpx.Client, path: str, headers: dict[str, str]) -> None:
        try:
            with (
                httpx.Client(base_url=api.base_url, timeout=httpx.Timeout(10, read=60)) as client,
                client.stream("GET", path, headers=headers) as response,
            ):
                self.status.put(response.status_code)
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line == "":
                        if "data" in fields:
                            self.events.put(json.loads(fields["data"]) | {"sse_id": fields.get("id")})
                        fields = {}
                    elif not line.startswith(":") and ":" in line:
                        key, _, value = line.partition(":")
                        fields[key] = value.lstrip(" ")
        except (httpx.HTTPError, RuntimeError):
            pass
        finally:
            self.events.put(None)

    def next(self, timeout: float = 10) -> dict[str, Any] | None:
        """The next event, or None when the stream ended."""
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        self._stop.set()
