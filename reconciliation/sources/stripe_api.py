"""Stripe balance transactions for a time range, through the official SDK with auto-pagination.

The only module of reconciliation that imports `stripe`; it uses the core's configured client
(`HANOIPAY_STRIPE_API_KEY`, `HANOIPAY_STRIPE_API_BASE`) and turns every `stripe.StripeError` into
`SourceUnavailable`, which a run reports as an engine error, never as a data break.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import stripe

from payments.providers.stripe import StripeProvider
from reconciliation.models import LineKind
from reconciliation.sources import ParsedLine, clean_text

KINDS = {
    "charge": LineKind.PAYMENT,
    "payment": LineKind.PAYMENT,
    "refund": LineKind.REFUND,
    "payment_refund": LineKind.REFUND,
    "payout": LineKind.PAYOUT,
    "stripe_fee": LineKind.FEE,
}


class SourceUnavailable(Exception):
    """A provider could not be read (network, authentication, an error answer)."""


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return None


def _line(txn: Mapping[str, Any]) -> ParsedLine:
    kind = KINDS.get(str(txn["type"]), LineKind.ADJUSTMENT)
    source = txn.get("source")
    source_id = source if isinstance(source, str) else _field(source, "id")
    metadata = _field(source, "metadata") or {}
    payment_intent = _field(source, "payment_intent")
    if kind == LineKind.REFUND:
        ref, hint = metadata.get("hanoipay_refund"), payment_intent
    elif kind == LineKind.PAYOUT:
        ref, hint = source_id, None
    else:
        ref, hint = payment_intent, metadata.get("hanoipay_intent")
    return ParsedLine(
        external_id=str(txn["id"]),
        kind=kind,
        amount=int(txn["amount"]),
        fee=int(txn.get("fee") or 0),
        currency=str(txn["currency"]).upper(),
        occurred_at=datetime.fromtimestamp(int(txn["created"]), UTC),
        ref=ref,
        hint=hint,
        description=clean_text(str(txn.get("description") or ""), 1000),
    )


def _list(client: stripe.StripeClient, params: dict[str, Any]) -> Iterable[Mapping[str, Any]]:
    page = client.v1.balance_transactions.list(params)  # type: ignore[arg-type]
    for txn in page.auto_paging_iter():
        yield txn.to_dict()


def balance_transactions(start: datetime, end: datetime) -> list[ParsedLine]:
    """Stripe's balance transactions created in [start, end), with the members of each payout among them.

    A payout's members (the transactions it paid out, which may be older) carry its id as `group_ref`.
    """
    client = StripeProvider().client()
    window = {"gte": int(start.timestamp()), "lt": int(end.timestamp())}
    try:
        lines = [
            _line(t) for t in _list(client, {"created": window, "limit": 100, "expand": ["data.source"]})
        ]
        by_id = {line.external_id: line for line in lines}
        for payout in [line for line in lines if line.kind == LineKind.PAYOUT and line.ref]:
            params = {"payout": payout.ref, "limit": 100, "expand": ["data.source"]}
            for member in (_line(t) for t in _list(client, params)):
                if member.kind == LineKind.PAYOUT:
                    continue
                member.group_ref = payout.ref
                by_id.setdefault(member.external_id, member).group_ref = payout.ref
        return list(by_id.values())
    except stripe.StripeError as error:
        raise SourceUnavailable(
            f"Stripe's balance transactions could not be read: {error.user_message or type(error).__name__}"
        ) from None
