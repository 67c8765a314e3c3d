"""Many wallet payments in one transaction: a day's transit fares for thousands of riders at once.

`pay_from_wallets` keeps every invariant a single wallet payment keeps, for a whole batch:

- **idempotent per payment**: each payment has a key; the key is claimed in `wallet_batch_payment`
  (primary key) before any money moves, so a batch run twice, or two runs racing, pay each key once. A
  concurrent claim of the same key waits for the first transaction and then sees it as a duplicate.
- **never negative**: the wallets' balance rows are locked in one statement (in account order, so two
  batches cannot deadlock), each payment is checked against what is left, and the posting itself goes
  through `ledger.post_entry`, whose conditional update refuses to take a checked account below zero.
- **ledger balanced**: one journal entry per batch, built by `ledger.post_entry` (which refuses an
  unbalanced entry): each wallet debited its payments, the merchant's payable credited their sum less
  the fees, fee revenue credited the fees. Each payment is a succeeded intent of its own, with its own
  fee (`fee_for` per intent, as a single payment), so it can be refunded on its own later.

A payment the wallet cannot cover is refused (`insufficient_funds`), or with `allow_partial` takes what
the wallet holds; its key is released so a later batch can try again.
"""

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import String, Text, delete, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from hanoipay.auth.service import Principal, Role
from hanoipay.db import Base, CreatedAt
from hanoipay.errors import InvalidRequest
from hanoipay.ids import new_id
from payments import accounts, events, ledger
from payments.exceptions import CurrencyMismatch, MerchantNotFound, UnknownProvider, WalletNotFound
from payments.merchants import get_merchant, payable_account
from payments.models import Merchant, PaymentIntent, Wallet
from payments.money import MAX_AMOUNT, fee_for
from payments.purposes import Purpose, get_purpose
from payments.wallets import wallet_account

Outcome = Literal["succeeded", "duplicate", "insufficient_funds"]


class WalletBatchPayment(CreatedAt, Base):
    """A payment key claimed by a batch, and the intent that paid it."""

    __tablename__ = "wallet_batch_payment"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    intent_id: Mapped[str] = mapped_column(String(40))


@dataclass(frozen=True)
class WalletPayment:
    """One payment of a batch: from which wallet, how much, and the key that makes it happen once."""

    key: str
    wallet_id: str
    amount: int
    purpose_ref: str | None = None
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentResult:
    """What became of one payment: the intent that paid it (new or earlier) and the amount it took."""

    key: str
    outcome: Outcome
    intent_id: str | None
    amount: int


def pay_from_wallets(
    session: Session,
    who: Principal,
    payments: Sequence[WalletPayment],
    *,
    purpose: str,
    currency: str,
    merchant_id: str | None = None,
    allow_partial: bool = False,
) -> list[PaymentResult]:
    """Pay many wallet payments in the caller's transaction, each once; results in the payments' order."""
    who.require(Role.ADMIN, Role.FINANCE)
    spec = get_purpose(purpose)
    if spec.providers is not None and "wallet" not in spec.providers:
        raise UnknownProvider(f"Purpose {purpose} cannot be paid from a wallet.")
    merchant = _merchant_for(session, spec.requires_merchant, merchant_id, currency)
    _check_payments(payments)
    if not payments:
        return []
    wallets = _wallets(session, {p.wallet_id for p in payments}, currency)
    ordered = sorted(payments, key=lambda p: p.key)
    claimed = _claim(session, ordered)
    earlier = _earlier(session, [p.key for p in ordered if p.key not in claimed])
    available = _lock_balances(session, sorted({wallets[p.wallet_id].account_id for p in ordered}))

    results: dict[str, PaymentResult] = {}
    paid: list[tuple[WalletPayment, str, int]] = []
    for payment in ordered:
        if payment.key not in claimed:
            intent_id, amount = earlier.get(payment.key, (None, 0))
            results[payment.key] = PaymentResult(payment.key, "duplicate", intent_id, amount)
            continue
        account_id = wallets[payment.wallet_id].account_id
        amount = min(payment.amount, available[account_id]) if allow_partial else payment.amount
        if amount <= 0 or amount > available[account_id]:
            results[payment.key] = PaymentResult(payment.key, "insufficient_funds", None, 0)
            continue
        available[account_id] -= amount
        paid.append((payment, claimed[payment.key], amount))
        results[payment.key] = PaymentResult(payment.key, "succeeded", claimed[payment.key], amount)

    refused = [key for key, result in results.items() if result.outcome == "insufficient_funds"]
    if refused:
        session.execute(delete(WalletBatchPayment).where(WalletBatchPayment.key.in_(refused)))
    if paid:
        _record(session, who, paid, wallets, merchant, purpose, currency)
    return [results[p.key] for p in payments]


def _merchant_for(
    session: Session, requires_merchant: bool, merchant_id: str | None, currency: str
) -> Merchant | None:
    if not requires_merchant:
        if merchant_id is not None:
            raise MerchantNotFound("This purpose is not paid to a merchant.")
        return None
    if merchant_id is None:
        raise MerchantNotFound("This purpose needs a merchant_id.")
    merchant = get_merchant(session, merchant_id)
    if merchant.currency != currency:
        raise CurrencyMismatch(f"Merchant {merchant.id} is paid in {merchant.currency}, not {currency}.")
    return merchant


def _check_payments(payments: Sequence[WalletPayment]) -> None:
    keys = [p.key for p in payments]
    if len(set(keys)) != len(keys):
        raise InvalidRequest("Every payment of a batch needs its own key.")
    for payment in payments:
        if not 0 < payment.amount <= MAX_AMOUNT:
            raise InvalidRequest(f"Payment {payment.key}: amount {payment.amount} is out of range.")


def _wallets(session: Session, wallet_ids: set[str], currency: str) -> dict[str, Wallet]:
    # Plain rows made into transient objects: thousands of wallets in the session's identity map would make
    # each of the ledger's ORM updates scan them all.
    rows = session.execute(
        select(Wallet.id, Wallet.owner_id, Wallet.currency, Wallet.account_id).where(
            Wallet.id.in_(wallet_ids)
        )
    ).all()
    wallets = {row[0]: Wallet(id=row[0], owner_id=row[1], currency=row[2], account_id=row[3]) for row in rows}
    missing = wallet_ids - wallets.keys()
    if missing:
        raise WalletNotFound(f"No wallet {sorted(missing)[0]}.")
    for wallet in wallets.values():
        if wallet.currency != currency:
            raise CurrencyMismatch(f"Wallet {wallet.id} holds {wallet.currency}, not {currency}.")
    return wallets


def _claim(session: Session, ordered: Sequence[WalletPayment]) -> dict[str, str]:
    """Claim the keys (in key order); returns key → the new intent id for the keys this batch now owns."""
    keys = [p.key for p in ordered]
    wanted = {key: new_id("pi") for key in keys}
    claimed = session.execute(
        text(
            "INSERT INTO wallet_batch_payment (key, intent_id, created_at)"
            " SELECT k.key, k.intent_id, now() FROM unnest(CAST(:keys AS text[]), CAST(:ids AS text[]))"
            " WITH ORDINALITY AS k(key, intent_id, n) ORDER BY k.n"
            " ON CONFLICT (key) DO NOTHING RETURNING key"
        ),
        {"keys": keys, "ids": [wanted[key] for key in keys]},
    ).scalars()
    return {key: wanted[key] for key in claimed}


def _earlier(session: Session, keys: list[str]) -> dict[str, tuple[str, int]]:
    """For keys paid before: the intent that paid each, and what it received."""
    if not keys:
        return {}
    rows = session.execute(
        select(WalletBatchPayment.key, PaymentIntent.id, PaymentIntent.amount_received)
        .join(PaymentIntent, PaymentIntent.id == WalletBatchPayment.intent_id)
        .where(WalletBatchPayment.key.in_(keys))
    ).all()
    return {row[0]: (row[1], int(row[2])) for row in rows}


def _lock_balances(session: Session, account_ids: list[str]) -> dict[str, int]:
    """Lock the wallets' balance rows in account order; returns what each has available."""
    rows = session.execute(
        text(
            "SELECT account_id, posted - held FROM account_balance WHERE account_id = ANY(:ids)"
            " ORDER BY account_id FOR UPDATE"
        ),
        {"ids": account_ids},
    ).all()
    return {row[0]: int(row[1]) for row in rows}


def _record(
    session: Session,
    who: Principal,
    paid: list[tuple[WalletPayment, str, int]],
    wallets: dict[str, Wallet],
    merchant: Merchant | None,
    purpose: str,
    currency: str,
) -> None:
    """Insert the succeeded intents and post the batch's one balanced entry."""
    spec = get_purpose(purpose)
    debits: dict[str, int] = defaultdict(int)
    credits: dict[accounts.AccountRef, int] = defaultdict(int)
    fees = 0
    columns: dict[str, list[Any]] = defaultdict(list)
    for payment, intent_id, amount in paid:
        wallet = wallets[payment.wallet_id]
        fee = fee_for(amount, merchant.fee_bps) if merchant is not None and spec.credit_account is None else 0
        fees += fee
        debits[wallet.id] += amount
        for column, value in (
            ("id", intent_id),
            ("payer_id", wallet.owner_id),
            ("purpose_ref", payment.purpose_ref),
            ("amount", amount),
            ("wallet_id", wallet.id),
            ("fee_amount", fee),
            ("description", payment.description),
            ("metadata", json.dumps({**payment.metadata, "batch_key": payment.key})),
        ):
            columns[column].append(value)
    _insert_intents(session, columns, merchant, purpose, currency, who.id)
    intent_ids = columns["id"]
    intents = _intents_for_hooks(session, spec, intent_ids)
    if spec.credit_account is not None:
        for intent in intents:
            credits[spec.credit_account(session, intent)] -= intent.amount
    else:
        assert merchant is not None
        total = sum(debits.values())
        credits[payable_account(merchant)] -= total - fees
        credits[ledger.fee_revenue_account(session, currency)] -= fees
    lines = [(wallet_account(wallets[wallet_id]), amount) for wallet_id, amount in debits.items()]
    lines += list(credits.items())
    batch_id = new_id("wbt")
    entry_id = ledger.post_entry(
        session,
        kind="payment_batch",
        dedupe_key=f"wallet_batch:{batch_id}",
        description=f"{purpose}: {len(intent_ids)} wallet payments in one batch",
        lines=lines,
    )
    if spec.on_succeeded is not None:
        for intent in intents:
            spec.on_succeeded(session, intent)
    events.publish(
        session,
        "payment_intents.batch_succeeded",
        object_id=entry_id or batch_id,
        merchant_id=merchant.id if merchant else None,
        data={
            "purpose": purpose,
            "count": len(intent_ids),
            "amount": sum(debits.values()),
            "currency": currency,
        },
    )


def _insert_intents(
    session: Session,
    columns: dict[str, list[Any]],
    merchant: Merchant | None,
    purpose: str,
    currency: str,
    created_by: str,
) -> None:
    """The batch's succeeded intents, in one statement over arrays (a multi-row VALUES of 10 000 rows
    costs more to build than to run)."""
    session.execute(
        text(
            """
            INSERT INTO payment_intent (id, merchant_id, payer_id, purpose, purpose_ref, amount, currency,
                status, capture_method, provider, wallet_id, amount_capturable, amount_received,
                amount_refunded, fee_amount, description, metadata, created_by, succeeded_at, updated_at,
                created_at)
            SELECT k.id, :merchant, k.payer, :purpose, k.ref, k.amount, :currency, 'succeeded', 'automatic',
                   'wallet', k.wallet, 0, k.amount, 0, k.fee, k.description, k.metadata, :created_by,
                   now(), now(), now()
            FROM unnest(CAST(:ids AS text[]), CAST(:payers AS text[]), CAST(:refs AS text[]),
                        CAST(:amounts AS bigint[]), CAST(:wallets AS text[]), CAST(:fees AS bigint[]),
                        CAST(:descriptions AS text[]), CAST(:metadata AS jsonb[]))
                 AS k(id, payer, ref, amount, wallet, fee, description, metadata)
            """
        ),
        {
            "merchant": merchant.id if merchant else None,
            "purpose": purpose,
            "currency": currency,
            "created_by": created_by,
            "ids": columns["id"],
            "payers": columns["payer_id"],
            "refs": columns["purpose_ref"],
            "amounts": columns["amount"],
            "wallets": columns["wallet_id"],
            "fees": columns["fee_amount"],
            "descriptions": columns["description"],
            "metadata": columns["metadata"],
        },
    )


def _intents_for_hooks(session: Session, spec: Purpose, intent_ids: list[str]) -> list[PaymentIntent]:
    """The new intents as objects, only when the purpose has a hook or a credit account that needs them."""
    if spec.on_succeeded is None and spec.credit_account is None:
        return []
    return list(session.scalars(select(PaymentIntent).where(PaymentIntent.id.in_(intent_ids))))
