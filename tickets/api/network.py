"""The transit network: issuer keys, GTFS feeds (admin), fare products."""

from typing import Annotated

from fastapi import APIRouter, Query, Request

from hanoipay.auth.deps import Caller
from hanoipay.auth.service import RoleNotAllowed
from hanoipay.db import DbSession
from hanoipay.http import errors
from hanoipay.settings import get_settings
from payments.exceptions import MerchantNotFound
from tickets.api.deps import JSON
from tickets.credentials import b64url
from tickets.exceptions import (
    InvalidFeed,
    NoActiveFeed,
    UnknownCategory,
)
from tickets.models import TransitFeed
from tickets.schemas import (
    FeedOut,
    IssuerKeyOut,
    KeysOut,
    ProductOut,
    SampleFeedIn,
)
from tickets.service import network
from tickets.service.keys import issuer_keys

router = APIRouter(prefix="/v1/transit", tags=["transit"])


@router.get("/keys")
def published_keys() -> KeysOut:
    """The issuer public keys validators verify credentials with, by key id (no sign-in needed)."""
    keys = issuer_keys()
    settings = get_settings()
    return KeysOut(
        keys=[
            IssuerKeyOut(kid=kid, public_key=b64url(raw), active=kid == keys.active)
            for kid, raw in keys.public().items()
        ],
        slot_seconds=settings.transit_slot_seconds,
        clock_skew_seconds=settings.transit_clock_skew_seconds,
    )


def _feed_out(session: DbSession, feed: TransitFeed) -> FeedOut:
    return FeedOut(
        id=feed.id,
        name=feed.name,
        merchant_id=feed.merchant_id,
        currency=feed.currency,
        active=feed.active,
        created_at=feed.created_at,
        counts=network.feed_summary(session, feed),
    )


@router.post(
    "/feeds",
    status_code=201,
    responses={**errors(InvalidFeed, RoleNotAllowed, MerchantNotFound), 201: {"model": FeedOut}},
    # The zip's bytes as they are (Content-Type application/zip or application/octet-stream).
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        }
    },
)
async def import_feed(
    request: Request,
    session: DbSession,
    who: Caller,
    merchant_id: Annotated[str, Query(max_length=40)],
    name: Annotated[str, Query(min_length=1, max_length=200)],
) -> FeedOut:
    """Import a GTFS feed with GTFS-Fares v2 (a zip of .txt files) and make it the active one (admin)."""
    files = network.read_zip(await request.body())
    feed = network.import_feed(session, who, files, name=name, merchant_id=merchant_id)
    return _feed_out(session, feed)


@router.post(
    "/feeds/sample",
    status_code=201,
    dependencies=JSON,
    responses=errors(InvalidFeed, RoleNotAllowed, MerchantNotFound),
)
def import_sample_feed(body: SampleFeedIn, session: DbSession, who: Caller) -> FeedOut:
    """Import the sample Hanoi feed shipped with HanoiPay and make it the active one (admin)."""
    files = network.sample_feed_files()
    feed = network.import_feed(session, who, files, name=body.name, merchant_id=body.merchant_id)
    return _feed_out(session, feed)


@router.get("/feed", responses=errors(NoActiveFeed))
def active_feed(session: DbSession, who: Caller) -> FeedOut:
    """The feed that prices trips now."""
    return _feed_out(session, network.active_feed(session))


@router.get("/products", responses=errors(NoActiveFeed, UnknownCategory))
def products(
    session: DbSession,
    who: Caller,
    category_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[ProductOut]:
    """Fare products with their price for a rider category (the default one if none is named)."""
    model = network.fare_model(session)
    category = category_id or model.default_category
    if category not in model.categories:
        raise UnknownCategory(f"The network has no rider category {category!r}.")
    out = []
    for product_id, name in sorted(model.product_names.items()):
        price = model.price(product_id, category)
        rule = model.caps.get(product_id)
        if price is None:
            continue
        out.append(
            ProductOut(
                product_id=product_id,
                name=name,
                amount=price,
                currency=model.currency,
                pass_validity="day"
                if rule and rule.sold_as_pass and rule.validity == "day"
                else ("month" if rule and rule.sold_as_pass else None),
                caps=bool(rule and rule.caps),
            )
        )
    return out
