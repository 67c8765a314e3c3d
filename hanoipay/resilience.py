"""Redis connections for long-running processes that must live through a Redis outage.

The worker and the cron scheduler talk to Redis all the time; a restart, a failover or a paused server
must not kill them. Their connections retry every command with capped exponential backoff for as long as
the outage lasts, and say so once when it starts and once when it ends, not on every retry. The API's
connection is different on purpose (`hanoipay.jobs.init_redis`): a payment never waits for Redis.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)
T = TypeVar("T")
# When each labelled client's current outage began. Module-level, because redis-py deep-copies the
# retry policy into every connection of a pool, and an outage is the client's, not one connection's.
_down_since: dict[str, float] = {}
_lock = threading.Lock()


class RetryThroughOutages(Retry):
    """Retry a Redis command until Redis answers again, logging the outage once at each end."""

    def __init__(self, label: str, *, cap_seconds: float = 2.0) -> None:
        super().__init__(ExponentialBackoff(cap=cap_seconds, base=0.25), retries=-1)
        self.label = label

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        """Run `do`, retrying through an outage; the first failure and the recovery are logged."""

        def failed(error: Exception, *count: int) -> Any:
            with _lock:
                if self.label not in _down_since:
                    _down_since[self.label] = time.monotonic()
                    log.warning("%s: Redis unavailable (%s); retrying until it is back", self.label, error)
            return fail(error, *count)

        result = super().call_with_retry(do, failed, is_retryable, with_failure_count)
        if self.label in _down_since:
            with _lock:
                since = _down_since.pop(self.label, None)
            if since is not None:
                log.warning("%s: Redis is back after %.1f s", self.label, time.monotonic() - since)
        return result


def resilient_redis(url: str, label: str) -> redis.Redis:
    """A Redis client whose commands wait out an outage instead of failing (worker, cron)."""
    return redis.Redis.from_url(
        url,
        retry=RetryThroughOutages(label),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError, ConnectionResetError],
        health_check_interval=30,
        socket_connect_timeout=2,
    )
