"""A warning in the API's log for every request slower than `HANOIPAY_SLOW_REQUEST_MS`.

A load test sees a rare request stall for seconds while the rest answer in milliseconds (docs/benchmarks.md,
Parking); in production the same stall is one line in a million of a proxy's access log. This names it in
the API's own log: the method, the path (never the query string, which may carry a position or a token),
the status, the time from the request's arrival to the last byte of its answer, and the worker's process
id, so it can be set beside the database's log and a profile of that process. A streamed answer (the live
feeds' `text/event-stream`) is open for as long as its reader listens, so it is not timed.
"""

import logging
import os
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("hanoipay.slow_requests")

_STREAM = b"text/event-stream"


class SlowRequestLog:
    """Log a warning for each HTTP request that took `threshold_ms` or longer (0: every request)."""

    def __init__(self, app: ASGIApp, *, threshold_ms: int) -> None:
        self.app = app
        self.threshold_ms = threshold_ms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        streamed = False

        async def timed(message: Message) -> None:
            nonlocal status, streamed
            if message["type"] == "http.response.start":
                status = message["status"]
                streamed = any(
                    name.lower() == b"content-type" and value.startswith(_STREAM)
                    for name, value in message.get("headers", ())
                )
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body") and not streamed:
                took_ms = (time.perf_counter() - started) * 1000
                if took_ms >= self.threshold_ms:
                    log.warning(
                        "slow request: %s %s answered %d in %.0f ms (pid %d)",
                        scope["method"],
                        scope["path"],
                        status,
                        took_ms,
                        os.getpid(),
                    )

        await self.app(scope, receive, timed)
