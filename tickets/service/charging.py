"""Charging: one aggregated wallet charge per card per closed service day, after capping, in batches.

Each run takes the closed days whose total differs from what was charged (rows locked with
`SKIP LOCKED`, so runs in parallel never take the same day) and moves the difference through the
payment core: a positive difference is a `transit_fare` wallet payment through `payments.batch`
(the first one is the day's charge, later ones are adjustments), a negative one is a refund of the
day's charges. The payment key is the day's state (`charged → total`), so processing the same state
again never charges twice. What a wallet cannot cover stays owed: the day's debt, collected by later
runs as money arrives or paid by the rider (`pay_debt`); past `HANOIPAY_TRANSIT_DEBT_LIMIT` the card is
on the deny list.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal
from hanoipay.ids import new_id
from payments.batch import WalletPayment, pay_from_wallets
from payments.exceptions import InsufficientFunds
from payments.refunds import create_refund
from tickets.exceptions import NoDebt
from tickets.models import ChargeKind
from tickets.service.cards import get_card
from tickets.service.days import current_service_day
from tickets.service.network import active_feed

# The fare engine acts for the platform: it moves riders' money only as their taps and passes say.
SYSTEM = Principal(id="system:tickets", kind="system", roles=frozenset({"admin"}))
BATCH = 10_000


@dataclass
class ChargeRun:
    """What one run did."""

    days: int = 0
    charged: int = 0
    refunded: int = 0
    short: int = 0
    last: tuple[str, date] | None = None


@dataclass(frozen=True)
class _Due:
    card_id: str
    day: date
    total: int
    charged: int
    closed: bool
    wallet_id: str


def charge_closed_days(
    session: Session,
    *,
    now: datetime | None = None,
    limit: int = BATCH,
    after: tuple[str, date] | None = None,
) -> ChargeRun:
    """Charge (or refund) the difference on up to `limit` closed days after `after`, in one batch."""
    today = current_service_day(now or datetime.now(UTC))
    card, day = after or ("", date.min)
    due = _due(
        session,
        "f.service_day < :today AND (f.card_id, f.service_day) > (:card, :day)",
        {"today": today, "limit": limit, "card": card, "day": day},
    )
    run = _settle(session, due, allow_partial=True)
    run.last = (due[-1].card_id, due[-1].day) if due else None
    return run


def _due(session: Session, where: str, params: dict[str, Any], *, skip_locked: bool = True) -> list[_Due]:
    rows = session.execute(
        text(
            f"""
            SELECT f.card_id, f.service_day, f.total_amount, f.charged_amount, f.closed, c.wallet_id
            FROM transit_fare_day f JOIN transit_card c ON c.id = f.card_id
            WHERE f.total_amount <> f.charged_amount AND {where}
            ORDER BY f.card_id, f.service_day LIMIT :limit
            FOR UPDATE OF f {"SKIP LOCKED" if skip_locked else ""}
            """  # noqa: S608  (the condition is one of this module's constants)
        ),
        params,
    )
    return [_Due(*row) for row in rows]


def _settle(
    session: Session, due: Sequence[_Due], *, allow_partial: bool, later: ChargeKind = ChargeKind.ADJUSTMENT
) -> ChargeRun:
    run = ChargeRun(days=len(due))
    if not due:
        return run
    feed = active_feed(session)
    owed = [d for d in due if d.total > d.charged]
    payments = [
        WalletPayment(
            key=f"transit_fare:{d.card_id}:{d.day.isoformat()}:{d.charged}>{d.total}",
            wallet_id=d.wallet_id,
            amount=d.total - d.charged,
            purpose_ref=f"{d.card_id}:{d.day.isoformat()}",
            description=f"Transit fares {d.day.isoformat()}",
            metadata={"card_id": d.card_id, "service_day": d.day.isoformat()},
        )
        for d in owed
    ]
    results = pay_from_wallets(
        session,
        SYSTEM,
        payments,
        purpose="transit_fare",
        currency=feed.currency,
        merchant_id=feed.merchant_id,
        allow_partial=allow_partial,
    )
    charges: list[dict[str, Any]] = []
    paid: dict[tuple[str, date], int] = {}
    for item, result in zip(owed, results, strict=True):
        paid[(item.card_id, item.day)] = result.amount
        run.charged += result.amount
        run.short += item.total - item.charged - result.amount
        if result.amount and result.outcome == "succeeded":
            kind = ChargeKind.CHARGE if not item.closed else later
            charges.append(_charge(item, kind, result.amount, intent_id=result.intent_id))
    if not allow_partial and run.short:
        raise InsufficientFunds("The wallet's available balance does not cover what the card owes.")
    for item in due:
        if item.total < item.charged:
            refunded = _refund(session, item, charges)
            paid[(item.card_id, item.day)] = -refunded
            run.refunded += refunded
    if charges:
        _insert_charges(session, charges)
    _mark(session, due, paid)
    return run


def _insert_charges(session: Session, charges: list[dict[str, Any]]) -> None:
    session.execute(
        text(
            """
            INSERT INTO transit_fare_charge (id, card_id, service_day, kind, amount, intent_id, refund_id,
                                             created_at)
            SELECT k.id, k.card_id, k.day, k.kind, k.amount, k.intent_id, k.refund_id, now()
            FROM unnest(CAST(:ids AS text[]), CAST(:cards AS text[]), CAST(:days AS date[]),
                        CAST(:kinds AS text[]), CAST(:amounts AS bigint[]), CAST(:intents AS text[]),
                        CAST(:refunds AS text[]))
                 AS k(id, card_id, day, kind, amount, intent_id, refund_id)
            """
        ),
        {
            "ids": [c["id"] for c in charges],
            "cards": [c["card_id"] for c in charges],
            "days": [c["service_day"] for c in charges],
            "kinds": [str(c["kind"]) for c in charges],
            "amounts": [c["amount"] for c in charges],
            "intents": [c["intent_id"] for c in charges],
            "refunds": [c["refund_id"] for c in charges],
        },
    )


def _charge(
    item: _Due, kind: ChargeKind, amount: int, *, intent_id: str | None = None, refund_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": new_id("fch"),
        "card_id": item.card_id,
        "service_day": item.day,
        "kind": kind,
        "amount": amount,
        "intent_id": intent_id,
        "refund_id": refund_id,
    }


def _refund(session: Session, item: _Due, charges: list[dict[str, Any]]) -> int:
    """Refund what the day was charged beyond its new total, from its latest charges first."""
    left = item.charged - item.total
    rows = session.execute(
        text(
            """
            SELECT intent_id, sum(amount) FROM transit_fare_charge
            WHERE card_id = :card AND service_day = :day AND intent_id IS NOT NULL
            GROUP BY intent_id HAVING sum(amount) > 0 ORDER BY intent_id DESC
            """
        ),
        {"card": item.card_id, "day": item.day},
    )
    refunded = 0
    for intent_id, refundable in rows:
        amount = min(left - refunded, int(refundable or 0))
        if amount <= 0:
            continue
        refund = create_refund(session, SYSTEM, intent_id, amount=amount, reason="transit fare re-priced")
        charges.append(_charge(item, ChargeKind.REFUND, -amount, intent_id=intent_id, refund_id=refund.id))
        refunded += amount
        if refunded == left:
            break
    return refunded


def _mark(session: Session, due: Sequence[_Due], paid: dict[tuple[str, date], int]) -> None:
    session.execute(
        text(
            """
            UPDATE transit_fare_day f SET charged_amount = f.charged_amount + k.amount, closed = true,
                   charged_at = now()
            FROM unnest(CAST(:cards AS text[]), CAST(:days AS date[]), CAST(:amounts AS bigint[]))
                 AS k(card_id, day, amount)
            WHERE f.card_id = k.card_id AND f.service_day = k.day
            """
        ),
        {
            "cards": [d.card_id for d in due],
            "days": [d.day for d in due],
            "amounts": [paid.get((d.card_id, d.day), 0) for d in due],
        },
    )


def debt_of(session: Session, card_id: str) -> int:
    """What the card owes: closed days charged less than their total."""
    owed = session.scalar(
        text(
            "SELECT coalesce(sum(total_amount - charged_amount), 0) FROM transit_fare_day "
            "WHERE card_id = :card AND closed AND total_amount > charged_amount"
        ),
        {"card": card_id},
    )
    return int(owed or 0)


def pay_debt(session: Session, who: Principal, card_id: str) -> ChargeRun:
    """The rider pays what the card owes from its wallet, in full (402 if the wallet cannot cover it)."""
    card = get_card(session, who, card_id, for_update=True)
    due = _due(
        session,
        "f.card_id = :card AND f.closed AND f.total_amount > f.charged_amount",
        {"card": card.id, "limit": 1_000},
        skip_locked=False,  # a charge run holding the card's days: wait for it, then see what is left
    )
    if not due:
        raise NoDebt(f"Card {card.id} owes nothing.")
    return _settle(session, due, allow_partial=False, later=ChargeKind.DEBT_PAYMENT)
