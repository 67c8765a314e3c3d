"""What every demo scenario shares: the API client, the people and merchants so far, and the bank."""

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import redis
from rich.console import Console, RenderableType
from rq import Queue, SimpleWorker

from hanoipay.settings import get_settings
from payments.jobs import roll_up_balances
from payments.providers.vietqr.webhook import SIGNATURE_HEADER, sign

console = Console()
PASSWORD = "demo-password-123"


@dataclass
class City:
    """The demo's people and merchants as the API knows them, and the day's outcomes."""

    api: httpx.Client
    redis_url: str
    rng: random.Random
    admin: dict[str, str] = field(default_factory=dict)
    finance: dict[str, str] = field(default_factory=dict)
    merchants: list[dict[str, Any]] = field(default_factory=list)
    staff: dict[str, dict[str, str]] = field(default_factory=dict)
    people: list[tuple[dict[str, str], str]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    jobs_drained: int = 0

    def login(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        """The Authorization header of a person who signs in."""
        r = self.api.post("/v1/auth/token", data={"username": email, "password": password})
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def post(
        self, path: str, body: dict[str, Any], who: dict[str, str], key: str | None = None
    ) -> httpx.Response:
        """POST JSON as `who`, with an Idempotency-Key if given."""
        headers = who | ({"Idempotency-Key": key} if key else {})
        return self.api.post(path, json=body, headers=headers)

    def bank_says(
        self,
        amount: int,
        description: str,
        transaction_id: str,
        *,
        account: str | None = None,
        occurred_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Play the bank: send its signed "balance changed" webhook for a transfer, and return the answer."""
        settings = get_settings()
        kid, secret = next(iter(settings.bank_webhook_secrets.items()))
        body = json.dumps(
            {
                "transaction_id": transaction_id,
                "account": account or settings.vietqr_account,
                "amount": amount,
                "description": description,
                "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
                "counter_bank_bin": "970415",
                "counter_account": f"10{self.rng.randrange(10**10):010d}",
            }
        ).encode()
        headers = {SIGNATURE_HEADER: sign(body, kid=kid, secret=secret), "content-type": "application/json"}
        answer: dict[str, Any] = self.api.post("/v1/webhooks/bank", content=body, headers=headers).json()
        return answer

    def drain(self) -> int:
        """Run the queued jobs with a real RQ worker (burst), fold the hot balances; how many jobs ran."""
        connection = redis.Redis.from_url(self.redis_url)
        queue = Queue(get_settings().queue_name, connection=connection)
        count = queue.count
        SimpleWorker([queue], connection=connection).work(burst=True, logging_level="WARNING")
        roll_up_balances()
        self.jobs_drained += count
        return count


class Scenario(Protocol):
    """One service's part of the simulated day: `play` it through the API, then `summarize` it."""

    name: str

    def play(self, city: City) -> None:
        """Act out the day over HTTP (and as the bank, where the service needs one)."""

    def summarize(self, city: City) -> list[RenderableType]:
        """Tables and lines for the demo's closing summary."""
