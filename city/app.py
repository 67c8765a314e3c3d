"""The application factory: every router, the error handlers, and the domains' registrations."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from city.domains import DOMAINS, register_domains
from city.web import install_pages
from hanoipay import db, health, jobs
from hanoipay.auth import api as auth_api
from hanoipay.errors import install_error_handlers
from hanoipay.guard import RequestGuard
from hanoipay.runtime import freeze_startup_objects
from hanoipay.settings import get_settings
from hanoipay.timing import SlowRequestLog


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    if not db.is_initialised():
        if not (settings.database_url and settings.redis_url and settings.jwt_keys):
            raise RuntimeError(
                "set HANOIPAY_DATABASE_URL, HANOIPAY_REDIS_URL and HANOIPAY_JWT_KEYS, or use `hanoipay serve`"
            )
        db.init_engine(settings.database_url)
        jobs.init_redis(settings.redis_url)
    freeze_startup_objects()
    yield


def create_app() -> FastAPI:
    """Build the HanoiPay API."""
    register_domains()
    app = FastAPI(
        title="HanoiPay",
        version="0.1.0",
        summary="Cashless payments and e-tickets for a city, on one payment-intent core.",
        lifespan=_lifespan,
    )
    install_error_handlers(app)
    # The domains' API routes are matched first: they carry the traffic, and a request is matched
    # against the routes in order (the docs, the static mounts and the pages come after).
    for domain in DOMAINS:
        for router in domain.routers:
            app.include_router(router)
    install_pages(app)
    settings = get_settings()
    app.add_middleware(
        RequestGuard, max_body_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes
    )
    app.add_middleware(SlowRequestLog, threshold_ms=settings.slow_request_ms)  # outermost: times it all
    app.include_router(health.router)
    app.include_router(auth_api.router)
    app.include_router(auth_api.json_router)

    return app
