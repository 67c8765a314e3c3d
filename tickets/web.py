"""The rider's page and the validator's page, beside the API, calling the same services.

The rider's device key is made and kept in the browser (WebCrypto Ed25519, not extractable), which
signs each slot's code there; the server only ever sees the public key and the signed codes. The
validator page checks codes in the browser, offline, with the keys and deny list it last synced, using
the validator device's own credentials for syncing and uploading.
"""

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from hanoipay.auth.service import Role
from hanoipay.db import DbSession
from hanoipay.settings import get_settings
from hanoipay.web.pages import Page, SignedInPage
from payments.wallets import list_wallets, wallet_balance
from tickets.credentials import b64url
from tickets.exceptions import NoActiveFeed
from tickets.models import FareDay, TransitRoute, TransitStop, TransitTrip
from tickets.service import cards, charging, network, passes
from tickets.service.days import current_service_day

page_router = APIRouter(include_in_schema=False)


@page_router.get("/transit")
def rider(page: SignedInPage, session: DbSession, card: str | None = None) -> HTMLResponse:
    """The rider's page: cards and phones, the live code, passes to buy, trips and what each cost, caps."""
    who = page.require(Role.CUSTOMER)
    try:
        model = network.fare_model(session)
    except NoActiveFeed:
        return page.render("tickets/rider.html", network_ready=False, cards=[], wallets=[])
    own = cards.list_cards(session, who)
    active = next((c for c in own if c.id == card), None) or next(
        (c for c in own if c.status == "active"), None
    )
    wallets = [(w, wallet_balance(session, w).available) for w in list_wallets(session, who)]
    context: dict[str, Any] = {"network_ready": True, "cards": own, "active": active, "wallets": wallets}
    if active is not None:
        today = current_service_day(datetime.now(UTC))
        devices = cards.list_devices(session, who, active.id)
        context |= {
            "devices": devices,
            "debt": charging.debt_of(session, active.id),
            "passes": passes.list_passes(session, who, active.id),
            "trips": list(
                session.scalars(
                    passes.trips_query(active, None).order_by(TransitTrip.started_at.desc()).limit(20)
                )
            ),
            "days": list(
                session.scalars(
                    select(FareDay)
                    .where(FareDay.card_id == active.id)
                    .order_by(FareDay.service_day.desc())
                    .limit(7)
                )
            ),
            "caps": passes.cap_progress(session, active, today),
            "products": [
                (
                    product_id,
                    model.product_names[product_id],
                    model.price(product_id, active.category_id),
                    rule,
                )
                for product_id, rule in sorted(model.caps.items())
                if rule.sold_as_pass and (model.price(product_id, active.category_id) or 0) > 0
            ],
            "page_data": {
                "card_id": active.id,
                "wallet_id": active.wallet_id,
                "slot_seconds": get_settings().transit_slot_seconds,
                "devices": [
                    {"id": d.id, "status": d.status, "credential": b64url(d.credential)} for d in devices
                ],
            },
        }
    return page.render("tickets/rider.html", **context)


@page_router.get("/transit/validator")
def validator(page: Page, session: DbSession) -> HTMLResponse:
    """The validator's page: scan or paste a code, accept or reject with the reason, offline."""
    try:
        feed = network.active_feed(session)
    except NoActiveFeed:
        return page.render("tickets/validator.html", routes=[], stops=[])
    routes = session.scalars(
        select(TransitRoute).where(TransitRoute.feed_id == feed.id).order_by(TransitRoute.route_id)
    ).all()
    stops = session.scalars(
        select(TransitStop).where(TransitStop.feed_id == feed.id).order_by(TransitStop.stop_id)
    ).all()
    settings = get_settings()
    return page.render(
        "tickets/validator.html",
        routes=routes,
        stops=stops,
        page_data={
            "skew_seconds": settings.transit_clock_skew_seconds,
            "rescan_seconds": settings.transit_rescan_seconds,
        },
    )
