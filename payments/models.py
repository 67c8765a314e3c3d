"""Merchants, wallets, payment intents, refunds and the double-entry ledger."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hanoipay.db import Base, CreatedAt

Id = String(40)


class IntentStatus(StrEnum):
    """Where a payment intent stands, as Stripe names it."""

    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"


class CaptureMethod(StrEnum):
    """Take the money at once, or authorize now and capture (part of) it later."""

    AUTOMATIC = "automatic"
    MANUAL = "manual"


class RefundStatus(StrEnum):
    """A refund is pending until its provider confirms it."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class BankTransactionStatus(StrEnum):
    """What became of money the bank said arrived."""

    RECEIVED = "received"
    APPLIED = "applied"
    PARTIAL = "partial"
    UNAPPLIED = "unapplied"
    LATE = "late"
    EXCESS = "excess"
    HELD = "held"  # no reference: kept for the merchant whose account it reached to confirm
    RETURNED = "returned"  # held, then sent back to the account it came from


class PayoutStatus(StrEnum):
    """A transfer the platform owes, until the bank confirms it."""

    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"


class Merchant(CreatedAt, Base):
    """A payee as the core needs it: currency, fee, payable account and overpayment policy.

    Who the payee is (a parking or transit operator, a market vendor, a school), its staff and its bank
    account are the merchants domain's, in tables of its own keyed by this id.
    """

    __tablename__ = "merchant"
    __table_args__ = (CheckConstraint("fee_bps BETWEEN 0 AND 10000", name="fee_bps_range"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    fee_bps: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_account.id"), unique=True)
    # What to do with the excess of a bank transfer larger than its intent: credit the payer's wallet, or
    # keep it aside for finance to refund.
    overpayment_policy: Mapped[str] = mapped_column(
        String(16), server_default=text("'refund'"), default="refund"
    )


class LedgerAccount(CreatedAt, Base):
    """An account of the ledger. `checked` accounts are locked and kept non-negative at write time;
    `deferred` (hot) accounts take appended deltas that a roll-up folds into their balance row."""

    __tablename__ = "ledger_account"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    balance_mode: Mapped[str] = mapped_column(String(16))
    merchant_id: Mapped[str | None] = mapped_column(Id, index=True)


class AccountBalance(Base):
    """The cached balance of one account, in the account's normal direction; rebuildable from lines."""

    __tablename__ = "account_balance"
    __table_args__ = (
        CheckConstraint("NOT non_negative OR posted - held >= 0", name="non_negative"),
        CheckConstraint("held >= 0", name="held_non_negative"),
    )

    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_account.id"), primary_key=True)
    posted: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    held: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    non_negative: Mapped[bool]
    updated_at: Mapped[datetime]


class BalanceDelta(Base):
    """A change to a deferred account's balance not yet rolled up into its balance row."""

    __tablename__ = "balance_delta"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_account.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)


class JournalEntry(Base):
    """One balanced, append-only movement of money; `dedupe_key` makes each posting happen once."""

    __tablename__ = "journal_entry"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    dedupe_key: Mapped[str] = mapped_column(Text, unique=True)
    intent_id: Mapped[str | None] = mapped_column(Id, index=True)
    refund_id: Mapped[str | None] = mapped_column(Id)
    description: Mapped[str] = mapped_column(Text)
    posted_at: Mapped[datetime]


class JournalLine(Base):
    """One leg of an entry: positive amounts are debits, negative are credits."""

    __tablename__ = "journal_line"
    __table_args__ = (
        Index("ix_journal_line_account_posted", "account_id", "posted_at"),
        CheckConstraint("amount <> 0", name="non_zero"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("journal_entry.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_account.id"))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    posted_at: Mapped[datetime]


class Hold(CreatedAt, Base):
    """Funds reserved on an account by an authorized, uncaptured intent, until capture, void or expiry."""

    __tablename__ = "hold"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_account.id"), index=True)
    # Checked at commit: a wallet hold placed at confirmation is written before its new intent's row.
    intent_id: Mapped[str] = mapped_column(
        ForeignKey("payment_intent.id", deferrable=True, initially="DEFERRED"), unique=True
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime]
    released_at: Mapped[datetime | None]


class Wallet(CreatedAt, Base):
    """A person's stored-value wallet; its money is the ledger account it points to."""

    __tablename__ = "wallet"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("app_user.id"))
    currency: Mapped[str] = mapped_column(String(3))
    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_account.id"), unique=True)

    __table_args__ = (Index("uq_wallet_owner_currency", "owner_id", "currency", unique=True),)


class PaymentIntent(CreatedAt, Base):
    """A payment for a purpose, carried by its provider from creation to success, cancel or refund."""

    __tablename__ = "payment_intent"
    __table_args__ = (
        Index("ix_payment_intent_merchant_id_id", "merchant_id", "id"),
        Index("ix_payment_intent_payer_id_id", "payer_id", "id"),
        Index("ix_payment_intent_purpose_ref", "purpose", "purpose_ref"),
        Index(
            "ix_payment_intent_provider_ref",
            "provider",
            "provider_ref",
            postgresql_where=text("provider_ref IS NOT NULL"),
        ),
        Index(
            "ix_payment_intent_capture_before",
            "capture_before",
            postgresql_where=text("status = 'requires_capture'"),
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("amount_received <= amount", name="received_le_amount"),
        CheckConstraint("amount_refunded <= amount_received", name="refunded_le_received"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchant.id"))
    payer_id: Mapped[str | None] = mapped_column(ForeignKey("app_user.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    purpose_ref: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))
    capture_method: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str | None] = mapped_column(String(16))
    wallet_id: Mapped[str | None] = mapped_column(ForeignKey("wallet.id"))
    provider_ref: Mapped[str | None] = mapped_column(Text)
    amount_capturable: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_received: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    capture_before: Mapped[datetime | None]
    succeeded_at: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]
    cancellation_reason: Mapped[str | None] = mapped_column(String(32))
    last_payment_error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    next_action: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    reference: Mapped[str | None] = mapped_column(String(25), unique=True)
    expires_at: Mapped[datetime | None]
    amount_collected: Mapped[int] = mapped_column(BigInteger, server_default=text("0"), default=0)
    description: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    created_by: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime]


class Refund(CreatedAt, Base):
    """Money returned against a succeeded intent, partial or whole."""

    __tablename__ = "refund"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    intent_id: Mapped[str] = mapped_column(ForeignKey("payment_intent.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    fee_refunded: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(40))


class Event(CreatedAt, Base):
    """Something that happened to a money object, kept for the API and delivered after commit."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_merchant_id_id", "merchant_id", "id"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    merchant_id: Mapped[str | None] = mapped_column(Id)
    object_id: Mapped[str] = mapped_column(Id)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    delivered_at: Mapped[datetime | None]


class IdempotencyKey(CreatedAt, Base):
    """The first response to a money POST, replayed for the same key and body for 24 hours."""

    __tablename__ = "idempotency_key"

    owner: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ProviderEvent(Base):
    """A notification from a provider, recorded once: its id is the key that makes retries harmless."""

    __tablename__ = "provider_event"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class BankTransaction(CreatedAt, Base):
    """Money a bank said arrived on one of the platform's accounts, and what it was applied to."""

    __tablename__ = "bank_transaction"
    __table_args__ = (Index("ix_bank_transaction_status", "status"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    bank_txn_id: Mapped[str] = mapped_column(String(128), unique=True)
    account: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime]
    counter_bank_bin: Mapped[str | None] = mapped_column(String(8))
    counter_account: Mapped[str | None] = mapped_column(String(32))
    intent_id: Mapped[str | None] = mapped_column(ForeignKey("payment_intent.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)


class CollectionAccount(CreatedAt, Base):
    """A bank account the platform collects on besides its main one (a stall's own account, for example).

    A bank notification is applied only when its receiving account is the main collection account
    (`HANOIPAY_VIETQR_ACCOUNT`), one listed in `HANOIPAY_VIETQR_COLLECTION_ACCOUNTS`, or an open row here.
    """

    __tablename__ = "collection_account"

    account: Mapped[str] = mapped_column(String(32), primary_key=True)
    bank_bin: Mapped[str] = mapped_column(String(8))
    label: Mapped[str] = mapped_column(Text)
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchant.id"), index=True)
    closed_at: Mapped[datetime | None]


class Payout(CreatedAt, Base):
    """A transfer the platform owes someone (a refund, an overpayment, a merchant's settlement).

    Queuing it moves the money from its source account (unapplied receipts, a merchant's payable) to
    payout clearing; the bank's confirmation moves it out of the platform's bank account, and a failure
    returns it to the source.
    """

    __tablename__ = "payout"
    __table_args__ = (
        Index("ix_payout_merchant_id_id", "merchant_id", "id"),
        Index(
            "ix_payout_unexported", "id", postgresql_where=text("exported_at IS NULL AND status = 'pending'")
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    intent_id: Mapped[str | None] = mapped_column(ForeignKey("payment_intent.id"), index=True)
    refund_id: Mapped[str | None] = mapped_column(ForeignKey("refund.id"), unique=True)
    bank_bin: Mapped[str] = mapped_column(String(8))
    account: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    paid_at: Mapped[datetime | None]
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchant.id"))
    source_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_account.id"))
    account_name: Mapped[str | None] = mapped_column(Text)
    exported_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(Text)
