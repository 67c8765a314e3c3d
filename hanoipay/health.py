"""Liveness and readiness, for operators and load balancers.

`GET /healthz` only says the process answers (cheap: point a liveness probe at it). `GET /readyz` says
whether the pipeline behind the API works: PostgreSQL answers, Redis answers, the outbox is being relayed
(its oldest unrelayed row is younger than `HANOIPAY_READY_MAX_OUTBOX_LAG_SECONDS`) and the job queue is
not piling up (`HANOIPAY_READY_MAX_QUEUE_DEPTH`). It answers 200 when every check passes, 503 otherwise,
always with every check's figures, so a stalled pipeline is visible before anyone misses an event.
"""

import time
from datetime import UTC, datetime
from typing import Any

import redis
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from hanoipay.db import get_engine
from hanoipay.jobs import get_queue
from hanoipay.settings import get_settings

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "A check failed; the body says which"}})
def readyz() -> JSONResponse:
    """Readiness: PostgreSQL, Redis, the outbox relay's lag and the queue depth, each with its figures."""
    settings = get_settings()
    checks: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    try:
        with get_engine().connect() as conn:
            oldest = conn.execute(
                text("SELECT created_at FROM outbox WHERE relayed_at IS NULL ORDER BY id LIMIT 1")
            ).scalar()
        checks["postgres"] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
        lag = 0.0 if oldest is None else max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        checks["outbox"] = {
            "ok": lag <= settings.ready_max_outbox_lag_seconds,
            "oldest_unrelayed_seconds": round(lag, 1),
            "max_seconds": settings.ready_max_outbox_lag_seconds,
        }
    except Exception as error:  # any failure to answer is the finding, not an error of this endpoint
        checks["postgres"] = {"ok": False, "error": type(error).__name__}
    started = time.perf_counter()
    try:
        queue = get_queue()
        depth = queue.count
        checks["redis"] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
        checks["queue"] = {
            "ok": depth <= settings.ready_max_queue_depth,
            "depth": depth,
            "max_depth": settings.ready_max_queue_depth,
        }
    except (redis.RedisError, OSError) as error:
        checks["redis"] = {"ok": False, "error": type(error).__name__}
    ready = all(check["ok"] for check in checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)
