"""Passes bought through the payment core (purpose `transit_pass`), and what riders see of their fares.

A pass is a fare product the feed's caps file marks as sold (`sold_as_pass`): a day ticket covers one
service day, a monthly pass the rest of its calendar month from the day it starts. It is paid from the
card's wallet as a `transit_pass` intent to the network's merchant; the purpose's hook activates it in
the payment's transaction and re-prices the days it covers that already have trips.
"""

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from hanoipay.errors import InvalidRequest
from hanoipay.ids import new_id
from hanoipay.jobs import enqueue_after_commit
from payments import intents
from payments.models import PaymentIntent
from payments.purposes import Purpose
from tickets.exceptions import CardRevoked, NotAPass, ProductNotFound
from tickets.models import FareDay, PassStatus, TransitCard, TransitPass, TransitTrip
from tickets.service.cards import get_card
from tickets.service.days import current_service_day, month_end
from tickets.service.network import active_feed, fare_model


def buy_pass(
    session: Session,
    who: Principal,
    card_id: str,
    *,
    product_id: str,
    starts_on: date | None = None,
    now: datetime | None = None,
) -> TransitPass:
    """Buy a pass for the card from its wallet; it is active once the payment succeeds (at once)."""
    card = get_card(session, who, card_id, for_update=True)
    if card.status != "active":
        raise CardRevoked(f"Card {card.id} is revoked.")
    model = fare_model(session)
    rule = model.caps.get(product_id)
    if product_id not in model.product_names:
        raise ProductNotFound(f"No fare product {product_id}.")
    if rule is None or not rule.sold_as_pass:
        raise NotAPass(f"{product_id} is not sold as a pass.")
    today = current_service_day(now or datetime.now(UTC))
    first = starts_on or today
    if first < today or (first - today).days > 62:
        raise InvalidRequest("starts_on must be today's service day or within the next two months.")
    price = model.price(product_id, card.category_id)
    if price is None or price <= 0:
        raise NotAPass(f"{product_id} has no price for the rider category {card.category_id}.")
    feed = active_feed(session)
    pass_id = new_id("pass")
    session.info[_BUYING] = pass_id
    intent = intents.create_intent(
        session,
        who,
        amount=price,
        currency=feed.currency,
        purpose="transit_pass",
        merchant_id=feed.merchant_id,
        purpose_ref=pass_id,
        provider="wallet",
        wallet_id=card.wallet_id,
        description=model.product_names[product_id],
        metadata={"card_id": card.id, "product_id": product_id},
    )
    transit_pass = TransitPass(
        id=pass_id,
        card_id=card.id,
        product_id=product_id,
        starts_on=first,
        ends_on=first if rule.validity == "day" else month_end(first),
        amount=price,
        currency=feed.currency,
        intent_id=intent.id,
        status=PassStatus.PENDING,
    )
    session.add(transit_pass)
    session.flush()
    intents.confirm_intent(session, who, intent.id)
    return transit_pass


def _pass_paid(session: Session, intent: PaymentIntent) -> None:
    transit_pass = session.scalar(
        select(TransitPass).where(TransitPass.intent_id == intent.id).with_for_update()
    )
    if transit_pass is None:
        return
    transit_pass.status = PassStatus.ACTIVE
    days = session.scalars(
        select(FareDay.service_day).where(
            FareDay.card_id == transit_pass.card_id,
            FareDay.service_day >= transit_pass.starts_on,
            FareDay.service_day <= transit_pass.ends_on,
        )
    ).all()
    if days:
        keys = [[transit_pass.card_id, min(days).isoformat()]]
        enqueue_after_commit(session, "tickets.price_card_days", keys=keys)


def _pass_refunded(session: Session, intent: PaymentIntent, refund: Any) -> None:
    transit_pass = session.scalar(
        select(TransitPass).where(TransitPass.intent_id == intent.id).with_for_update()
    )
    if transit_pass is not None and intent.amount_refunded >= intent.amount_received:
        transit_pass.status = PassStatus.CANCELED


_BUYING = "tickets.buying_pass"


def _validate_pass(session: Session, who: Principal, intent: PaymentIntent) -> None:
    # Only buy_pass creates these intents: one made through the core's API would pay for no pass.
    if intent.purpose_ref is None or session.info.pop(_BUYING, None) != intent.purpose_ref:
        raise InvalidRequest("A transit pass is bought through POST /v1/transit/cards/{id}/passes.")


TRANSIT_PASS = Purpose(
    name="transit_pass",
    providers=frozenset({"wallet"}),
    validate=_validate_pass,
    on_succeeded=_pass_paid,
    on_refunded=_pass_refunded,
)


def list_passes(session: Session, who: Principal, card_id: str) -> list[TransitPass]:
    """The card's passes, newest first."""
    card = get_card(session, who, card_id)
    return list(
        session.scalars(
            select(TransitPass).where(TransitPass.card_id == card.id).order_by(TransitPass.id.desc())
        )
    )


def trips_query(card: TransitCard, day: date | None) -> Any:
    """The card's trips (of one service day if given), for pagination."""
    query = select(TransitTrip).where(TransitTrip.card_id == card.id)
    if day is not None:
        query = query.where(TransitTrip.service_day == day)
    return query


def cap_progress(session: Session, card: TransitCard, day: date) -> list[dict[str, Any]]:
    """For each cap the card's rides touched by `day`: the cap, what was spent towards it, what is left."""
    model = fare_model(session)
    fare_day = session.get(FareDay, (card.id, day))
    if fare_day is None:
        fare_day = session.scalar(
            select(FareDay)
            .where(
                FareDay.card_id == card.id,
                FareDay.service_day < day,
                FareDay.service_day >= day.replace(day=1),
            )
            .order_by(FareDay.service_day.desc())
        )
    if fare_day is None:
        return []
    progress = []
    for period in ("day", "month"):
        if period == "day" and fare_day.service_day != day:
            continue
        for product_id, spent in sorted(fare_day.caps.get(period, {}).items()):
            cap = model.price(product_id, card.category_id) or 0
            progress.append(
                {
                    "product_id": product_id,
                    "name": model.product_names.get(product_id, product_id),
                    "period": period,
                    "cap_amount": cap,
                    "spent": spent,
                    "remaining": max(0, cap - spent),
                    "reached": spent >= cap,
                }
            )
    return progress
