"""The bank's "balance changed" webhook: verified, recorded once, matched to an intent by its reference.

Signature header (documented in docs/providers.md):

    X-HanoiPay-Signature: t=<unix seconds>,kid=<key id>,v1=<hex HMAC-SHA256(secret, f"{t}.{raw body}")>

Every transfer is applied once whatever the retries: its bank transaction id is a unique key, inserted
in the request's transaction, so concurrent deliveries wait for the first and then see a duplicate.
Money that arrives is first posted to the `unapplied_receipts:vietqr` account; applying it to an intent
moves it out. Unmatched, late and excess money stays there, flagged for reconciliation, never lost.

A domain that collects on accounts or references of its own (a market stall's account, a school's
invoice codes) registers a `Collector`: a transfer that names no intent's reference is offered to each
collector, which may apply it to an intent it creates (`apply_to_intent`) or keep it for a merchant to
confirm (`hold_for_merchant`). A stall's account is opened with `open_collection_account`, so
`collects_on` counts it as one the platform collects on.
"""

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hanoipay.db import inserted, locked
from hanoipay.ids import new_id
from hanoipay.settings import get_settings
from hanoipay.validation import describe, unstorable_paths
from payments import events, ledger
from payments.exceptions import InvalidSignature, MalformedWebhook, UnknownCollectionAccount
from payments.merchants import payee
from payments.models import (
    BankTransaction,
    BankTransactionStatus,
    CollectionAccount,
    IntentStatus,
    PaymentIntent,
    Wallet,
)
from payments.money import MAX_AMOUNT
from payments.payouts import queue_payout
from payments.providers.vietqr import REFERENCE_PREFIX
from payments.transitions import apply_provider_status, cancel_expired_batch, intent_data
from payments.wallets import wallet_account

SIGNATURE_HEADER = "X-HanoiPay-Signature"
# The reference is HP and 16 Crockford base32 characters; bank apps upper-case descriptions, strip
# spaces and punctuation and add prefixes and suffixes, so match it anywhere in the normalised text.
_REFERENCE = re.compile(rf"(?=({REFERENCE_PREFIX}[0-9A-HJKMNP-TV-Z]{{16}}))")


class BankNotification(BaseModel):
    """What the bank says arrived."""

    model_config = ConfigDict(extra="ignore")

    transaction_id: str = Field(min_length=1, max_length=128)
    account: str = Field(min_length=1, max_length=32)
    amount: StrictInt = Field(gt=0, le=MAX_AMOUNT)
    currency: str = Field(default="VND", pattern=r"^VND$")
    description: str = Field(default="", max_length=1000)
    occurred_at: AwareDatetime
    counter_bank_bin: str | None = Field(default=None, pattern=r"^\d{6}$")
    counter_account: str | None = Field(default=None, max_length=32)


@dataclass(frozen=True)
class Collector:
    """A domain's claim on transfers that no intent's reference matched (True when it took the transfer)."""

    name: str
    claim: Callable[[Session, BankTransaction], bool]


_collectors: dict[str, Collector] = {}


def register_collector(collector: Collector) -> None:
    """Offer unmatched transfers to `collector` (registered once per process by its domain)."""
    _collectors[collector.name] = collector


def sign(body: bytes, *, kid: str, secret: str, timestamp: int | None = None) -> str:
    """The signature header a bank sends with `body` (used by the demo and the tests to play the bank)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},kid={kid},v1={digest}"


def verify_signature(header: str | None, body: bytes, *, now: float | None = None) -> None:
    """Refuse a missing, forged or stale signature."""
    settings = get_settings()
    if not header:
        raise InvalidSignature(f"The {SIGNATURE_HEADER} header is missing.")
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    secret = settings.bank_webhook_secrets.get(parts.get("kid", ""))
    if secret is None or not parts.get("t", "").isdigit() or "v1" not in parts:
        raise InvalidSignature("The signature names an unknown key or is malformed.")
    if abs((time.time() if now is None else now) - int(parts["t"])) > settings.bank_webhook_tolerance_seconds:
        raise InvalidSignature(
            "The signature timestamp is outside the tolerance; the request may be a replay."
        )
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts["v1"]):
        raise InvalidSignature("The signature does not match the body.")


def parse_notification(body: bytes) -> BankNotification:
    """The notification in the body, or MalformedWebhook."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise MalformedWebhook(f"The notification is not valid JSON: {exc}") from None
    if unstorable := list(unstorable_paths(document)):
        raise MalformedWebhook(describe(unstorable))
    try:
        return BankNotification.model_validate(document)
    except ValidationError as exc:
        raise MalformedWebhook(f"The notification is not valid: {str(exc)[:300]}") from None


def collects_on(session: Session, account: str) -> bool:
    """True when `account` is one the platform collects on (main, configured, or an open registered one)."""
    settings = get_settings()
    if account == settings.vietqr_account or account in settings.vietqr_collection_accounts:
        return True
    return (
        session.scalar(
            select(CollectionAccount.account).where(
                CollectionAccount.account == account, CollectionAccount.closed_at.is_(None)
            )
        )
        is not None
    )


def open_collection_account(
    session: Session, *, account: str, bank_bin: str, label: str, merchant_id: str | None = None
) -> None:
    """Count `account` (a market stall's own account) as one the platform collects on, from now on."""
    session.add(CollectionAccount(account=account, bank_bin=bank_bin, label=label, merchant_id=merchant_id))
    session.flush()


def references_in(description: str) -> list[str]:
    """Every candidate intent reference in a transfer description, however the bank app mangled it."""
    normalised = re.sub(r"[^0-9A-Z]", "", description.upper())
    return [match.group(1) for match in _REFERENCE.finditer(normalised)]


# A notification's two statements on the webhook's hot path, hand-written (see `hanoipay.db.execute`):
# the intent its description names, locked, and the transfer recorded once per bank transaction id, with
# what became of it when an intent was found (decided first, so the row is written once).
_INTENT_BY_REFERENCE = "SELECT * FROM payment_intent WHERE reference = ANY(%s) LIMIT 1 FOR UPDATE"
_RECORD = """
INSERT INTO bank_transaction (id, bank_txn_id, account, amount, currency, description, occurred_at,
    counter_bank_bin, counter_account, status, note, intent_id)
VALUES (%(id)s, %(bank_txn_id)s, %(account)s, %(amount)s, %(currency)s, %(description)s, %(occurred_at)s,
    %(counter_bank_bin)s, %(counter_account)s, %(status)s, %(note)s, %(intent_id)s)
ON CONFLICT (bank_txn_id) DO NOTHING
RETURNING *
"""


def apply_notification(session: Session, note: BankNotification) -> dict[str, Any]:
    """Record the transfer once, post it, and apply it to the intent its reference names.

    Money into an account the platform does not hold never pays an intent: the notification is refused.
    A transfer that names no intent is offered to the collectors, and is unapplied if none takes it.
    """
    if not collects_on(session, note.account):
        raise UnknownCollectionAccount(
            f"Account {note.account} is not one the platform collects on; the transfer was not applied."
        )
    refs = references_in(note.description)
    intent = locked(session, PaymentIntent, _INTENT_BY_REFERENCE, (refs,)) if refs else None
    status, why, intent_id = (
        _verdict(intent, note.amount, note.occurred_at)
        if intent is not None
        else (BankTransactionStatus.RECEIVED, None, None)
    )
    txn = inserted(
        session,
        BankTransaction,
        _RECORD,
        {
            "id": new_id("btx"),
            "bank_txn_id": note.transaction_id,
            "account": note.account,
            "amount": note.amount,
            "currency": note.currency,
            "description": note.description,
            "occurred_at": note.occurred_at,
            "counter_bank_bin": note.counter_bank_bin,
            "counter_account": note.counter_account,
            "status": status,
            "note": why,
            "intent_id": intent_id,
        },
    )
    if txn is None:
        return {"received": True, "duplicate": True}
    receipts = ledger.receipts_account(session, "vietqr", note.currency)
    ledger.post_entry(
        session,
        kind="bank_receipt",
        dedupe_key=f"bank_receipt:{note.transaction_id}",
        description=f"bank transfer {note.transaction_id}",
        lines=[
            (ledger.clearing_account(session, "vietqr", note.currency), note.amount),
            (receipts, -note.amount),
        ],
    )
    if intent is not None:
        _carry_out(session, txn, intent)
    elif not any(c.claim(session, txn) for c in _collectors.values()):
        txn.status, txn.note = BankTransactionStatus.UNAPPLIED, _NO_INTENT
    return {"received": True, "duplicate": False, "status": txn.status, "payment_intent": txn.intent_id}


def apply_to_intent(session: Session, txn: BankTransaction, intent: PaymentIntent) -> None:
    """Apply a transfer that named no reference (or was held) to a VietQR intent its collector chose."""
    if txn.status not in (BankTransactionStatus.RECEIVED, BankTransactionStatus.HELD):
        raise ValueError(f"bank transaction {txn.id} is {txn.status}; it was applied already")
    txn.status, txn.note, txn.intent_id = _verdict(intent, txn.amount, txn.occurred_at)
    _carry_out(session, txn, intent)


def hold_for_merchant(session: Session, txn: BankTransaction, merchant_id: str, note: str) -> None:
    """Keep a transfer in unapplied receipts for a merchant to confirm, and tell the merchant now."""
    txn.status, txn.note = BankTransactionStatus.HELD, note
    events.publish(
        session,
        "bank_transfer.held",
        object_id=txn.id,
        merchant_id=merchant_id,
        data={
            "id": txn.id,
            "amount": txn.amount,
            "currency": txn.currency,
            "account": txn.account,
            "description": txn.description,
            "occurred_at": txn.occurred_at.isoformat(),
        },
    )


def return_held_transfer(session: Session, txn: BankTransaction, reason: str) -> None:
    """Send a held transfer back to the account it came from, as a payout."""
    if txn.status != BankTransactionStatus.HELD or not (txn.counter_bank_bin and txn.counter_account):
        raise ValueError(f"bank transaction {txn.id} cannot be returned")
    queue_payout(
        session,
        source=ledger.receipts_account(session, "vietqr", txn.currency),
        bank_bin=txn.counter_bank_bin,
        account=txn.counter_account,
        amount=txn.amount,
        currency=txn.currency,
        reason=f"return of bank transfer {txn.bank_txn_id}: {reason}",
    )
    txn.status, txn.note = BankTransactionStatus.RETURNED, reason


_NO_INTENT = "no payment intent matches the description"


def _verdict(intent: PaymentIntent, amount: int, occurred_at: datetime) -> tuple[str, str | None, str | None]:
    """What a transfer of `amount` does to the (locked) intent: the transfer's status, note and intent.

    An intent that is not a VietQR one leaves the transfer unapplied; one no longer waiting (paid,
    canceled) or past its QR's expiry makes it late; short of the amount, it is partial; else applied
    (an excess is settled after, see `_settle_excess`).
    """
    if intent.provider != "vietqr":
        return BankTransactionStatus.UNAPPLIED, _NO_INTENT, None
    if intent.status != IntentStatus.REQUIRES_ACTION or (
        intent.expires_at and occurred_at > intent.expires_at
    ):
        return (
            BankTransactionStatus.LATE,
            f"arrived when the intent was {intent.status} (expired or already paid)",
            intent.id,
        )
    collected = intent.amount_collected + amount
    if collected < intent.amount:
        return (
            BankTransactionStatus.PARTIAL,
            f"{collected} of {intent.amount} {intent.currency} received",
            intent.id,
        )
    return BankTransactionStatus.APPLIED, None, intent.id


def _carry_out(session: Session, txn: BankTransaction, intent: PaymentIntent) -> None:
    """Do what the transfer's verdict says to the intent: tell the merchant of a late or partial transfer,
    or pay the intent (and settle any excess)."""
    if txn.status == BankTransactionStatus.UNAPPLIED:
        return
    if txn.status == BankTransactionStatus.LATE:
        events.publish(
            session,
            "bank_transfer.late",
            object_id=txn.id,
            merchant_id=intent.merchant_id,
            data={"amount": txn.amount, "payment_intent": intent.id},
        )
        return
    intent.amount_collected += txn.amount
    if txn.status == BankTransactionStatus.PARTIAL:
        events.publish(
            session,
            "payment_intent.partially_funded",
            object_id=intent.id,
            merchant_id=intent.merchant_id,
            data=intent_data(intent) | {"amount_collected": intent.amount_collected},
        )
        return
    apply_provider_status(session, intent, "succeeded", amount=intent.amount)
    excess = intent.amount_collected - intent.amount
    if excess:
        _settle_excess(session, txn, intent, excess)


def _settle_excess(session: Session, txn: BankTransaction, intent: PaymentIntent, excess: int) -> None:
    """Credit the payer's wallet, or keep the excess for a refund payout, as the merchant chose."""
    policy = payee(session, intent.merchant_id).overpayment_policy if intent.merchant_id else None
    wallet = None
    if intent.purpose == "wallet_topup":
        wallet = session.get(Wallet, intent.purpose_ref)
    elif policy == "credit_wallet" and intent.payer_id:
        wallet = session.scalars(
            select(Wallet).where(Wallet.owner_id == intent.payer_id, Wallet.currency == intent.currency)
        ).first()
    if wallet is not None:
        ledger.post_entry(
            session,
            kind="overpayment_credit",
            dedupe_key=f"overpayment:{txn.id}",
            description=f"excess of {intent.id} credited to {wallet.id}",
            lines=[
                (ledger.receipts_account(session, "vietqr", intent.currency), excess),
                (wallet_account(wallet), -excess),
            ],
            intent_id=intent.id,
        )
        txn.note = f"excess {excess} {intent.currency} credited to wallet {wallet.id}"
        return
    txn.status = BankTransactionStatus.EXCESS
    txn.note = f"excess {excess} {intent.currency} kept for refund"
    if txn.counter_bank_bin and txn.counter_account:
        queue_payout(
            session,
            source=ledger.receipts_account(session, "vietqr", intent.currency),
            intent_id=intent.id,
            refund_id=None,
            bank_bin=txn.counter_bank_bin,
            account=txn.counter_account,
            amount=excess,
            currency=intent.currency,
            reason=f"overpayment of {intent.id} by bank transfer {txn.bank_txn_id}",
        )


def expire_waiting_intents(session: Session, *, limit: int = 500) -> int:
    """Cancel VietQR intents whose QR expired unpaid; money that came in part stays flagged unapplied."""
    expired = session.scalars(
        select(PaymentIntent)
        .where(
            PaymentIntent.provider == "vietqr",
            PaymentIntent.status == IntentStatus.REQUIRES_ACTION,
            PaymentIntent.expires_at < datetime.now(UTC),
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    canceled = cancel_expired_batch(session, expired)
    session.execute(
        update(BankTransaction)
        .where(BankTransaction.intent_id.in_([i.id for i in expired if i.status == IntentStatus.CANCELED]))
        .values(status=BankTransactionStatus.UNAPPLIED, note="the intent expired before it was paid in full")
    )
    return canceled


def list_transactions(session: Session, status: str | None, *, limit: int = 500) -> list[BankTransaction]:
    """Bank transactions, newest first, optionally of one status."""
    query = select(BankTransaction).order_by(BankTransaction.id.desc()).limit(limit)
    if status:
        query = query.where(BankTransaction.status == status)
    return list(session.scalars(query))
