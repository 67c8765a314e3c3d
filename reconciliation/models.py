"""What reconciliation keeps: provider lines, runs and chunks, results per line, cases and their trail."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hanoipay.db import Base, CreatedAt

Id = String(40)
# Lines and ledger items are spread over this many buckets by a hash of their reference, so that both
# sides of a match fall in the same bucket and a chunk (a range of buckets) can be matched on its own.
BUCKETS = 64
BUCKET_OF_REF = f"abs(hashtext(coalesce(ref, ''))) % {BUCKETS}"


class Provider(StrEnum):
    """Whose statements are reconciled: Stripe's balance, and the bank account VietQR transfers land on."""

    STRIPE = "stripe"
    VIETQR = "vietqr"


class LineKind(StrEnum):
    """What a provider line or a ledger item moved."""

    PAYMENT = "payment"
    REFUND = "refund"
    PAYOUT = "payout"
    PAYOUT_BATCH = "payout_batch"
    FEE = "fee"
    ADJUSTMENT = "adjustment"


class Result(StrEnum):
    """How a line ended in a run."""

    MATCHED = "matched"
    MISSING_IN_LEDGER = "missing_in_ledger"
    MISSING_AT_PROVIDER = "missing_at_provider"
    AMOUNT_MISMATCH = "amount_mismatch"
    FEE_MISMATCH = "fee_mismatch"
    DUPLICATE = "duplicate"
    CURRENCY_MISMATCH = "currency_mismatch"
    SETTLED_OTHER_DAY = "settled_other_day"


class RunStatus(StrEnum):
    """queued → running → completed, or failed (an engine error, reported apart from data breaks)."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class CaseStatus(StrEnum):
    """open → acknowledged → resolved; a resolved case never changes again."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    """How finance closed a case."""

    WRITE_OFF = "write_off"
    MANUAL_MATCH = "manual_match"
    REFUND = "refund"


class SourceFile(CreatedAt, Base):
    """A statement file uploaded by finance, known by the SHA-256 of its bytes so it loads once."""

    __tablename__ = "recon_source_file"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(24))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[int] = mapped_column(Integer)
    first_day: Mapped[date | None] = mapped_column(Date)
    last_day: Mapped[date | None] = mapped_column(Date)
    uploaded_by: Mapped[str] = mapped_column(Id)


class ProviderLine(Base):
    """One line of what a provider says happened: a Stripe balance transaction, a bank statement entry.

    `ref` is the provider's reference for the object the line is about (the Stripe PaymentIntent, our
    refund, the bank's transaction id, our payout id), `hint` a reference found in its description.
    Amounts are signed from the provider balance's side: money in is positive, money out negative.
    """

    __tablename__ = "recon_provider_line"
    __table_args__ = (
        Index("uq_recon_provider_line_external", "provider", "external_id", "occurrence", unique=True),
        Index("ix_recon_provider_line_day_bucket", "provider", "business_day", "bucket"),
        Index("ix_recon_provider_line_ref", "provider", "ref"),
        Index(
            "ix_recon_provider_line_group_ref",
            "provider",
            "group_ref",
            postgresql_where=text("group_ref IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    occurrence: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
    source: Mapped[str] = mapped_column(String(24))
    file_id: Mapped[str | None] = mapped_column(ForeignKey("recon_source_file.id"))
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str | None] = mapped_column(String(128))
    hint: Mapped[str | None] = mapped_column(String(128))
    group_ref: Mapped[str | None] = mapped_column(String(128))
    members: Mapped[list[str] | None] = mapped_column(JSONB)
    amount: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    currency: Mapped[str] = mapped_column(String(3))
    occurred_at: Mapped[datetime]
    business_day: Mapped[date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(Text, server_default=text("''"))
    bucket: Mapped[int] = mapped_column(SmallInteger, Computed(BUCKET_OF_REF, persisted=True))


class Run(CreatedAt, Base):
    """One reconciliation of a provider's business day (Asia/Ho_Chi_Minh), split into chunks."""

    __tablename__ = "recon_run"
    __table_args__ = (
        # One active run per provider and day: a second one is refused while the first is queued or running.
        Index(
            "uq_recon_run_active",
            "provider",
            "business_day",
            unique=True,
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        Index("ix_recon_run_day", "business_day", "provider"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    business_day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(Id)
    rules: Mapped[dict[str, Any]] = mapped_column(JSONB)
    parallelism: Mapped[int] = mapped_column(SmallInteger)
    chunks_total: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    chunks_done: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    provider_lines: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    ledger_items: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class Chunk(Base):
    """A piece of a run, done in one transaction by whichever worker claims it first.

    A `stage` chunk stages the ledger items of a slice of the day; once all are done, each `match` chunk
    matches a range of buckets.
    """

    __tablename__ = "recon_chunk"

    run_id: Mapped[str] = mapped_column(ForeignKey("recon_run.id"), primary_key=True)
    no: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    phase: Mapped[str] = mapped_column(String(8))
    bucket_lo: Mapped[int] = mapped_column(SmallInteger)
    bucket_hi: Mapped[int] = mapped_column(SmallInteger)
    slice_from: Mapped[datetime | None]
    slice_to: Mapped[datetime | None]
    done: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # Per result: [count, provider amount, ledger amount, drifting matches, drift], as the chunk wrote them.
    counts: Mapped[dict[str, list[int]] | None] = mapped_column(JSONB)
    worker: Mapped[str | None] = mapped_column(String(128))
    done_at: Mapped[datetime | None]


class ChunkAttempt(Base):
    """A worker started a chunk (written apart from the chunk's own transaction, so a crash leaves it)."""

    __tablename__ = "recon_chunk_attempt"
    __table_args__ = (Index("ix_recon_chunk_attempt_run_no", "run_id", "no"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(Id)
    no: Mapped[int] = mapped_column(SmallInteger)
    worker: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class LedgerItem(Base):
    """The ledger's side of a run: one line on the provider's clearing account, with what it refers to."""

    __tablename__ = "recon_ledger_item"
    __table_args__ = (Index("ix_recon_ledger_item_run_bucket", "run_id", "bucket"),)

    # No foreign keys on the run's bulk rows: checking one per row costs a fifth of a chunk's time.
    run_id: Mapped[str] = mapped_column(Id, primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # the journal line's id
    entry_id: Mapped[str] = mapped_column(Id)
    kind: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[str | None] = mapped_column(String(128))
    ref: Mapped[str | None] = mapped_column(String(128))
    hint: Mapped[str | None] = mapped_column(String(128))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    posted_at: Mapped[datetime]
    business_day: Mapped[date] = mapped_column(Date)
    state: Mapped[str | None] = mapped_column(String(32))
    bucket: Mapped[int] = mapped_column(SmallInteger, Computed(BUCKET_OF_REF, persisted=True))


class ResultLine(Base):
    """How one provider line, one ledger item, or one pair of them ended in a run, and why."""

    __tablename__ = "recon_result"
    __table_args__ = (
        # Exceptions are few: index them alone, so a million matched lines cost no extra index.
        Index("ix_recon_result_run_exceptions", "run_id", postgresql_where=text("result <> 'matched'")),
        Index(
            "uq_recon_result_run_provider_line",
            "run_id",
            "provider_line_id",
            unique=True,
            postgresql_where=text("provider_line_id IS NOT NULL AND rule <> 'group'"),
        ),
        Index(
            "uq_recon_result_run_ledger_item",
            "run_id",
            "ledger_item_id",
            unique=True,
            postgresql_where=text("ledger_item_id IS NOT NULL"),
        ),
        Index("ix_recon_result_case_id", "case_id", postgresql_where=text("case_id IS NOT NULL")),
        Index("ix_recon_result_run_residue", "run_id", postgresql_where=text("rule <> 'exact'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(Id)
    result: Mapped[str] = mapped_column(String(24))
    rule: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    provider_line_id: Mapped[int | None] = mapped_column(BigInteger)
    ledger_item_id: Mapped[int | None] = mapped_column(BigInteger)
    ledger_entry_id: Mapped[str | None] = mapped_column(Id)
    ledger_object: Mapped[str | None] = mapped_column(String(128))
    provider_amount: Mapped[int | None] = mapped_column(BigInteger)
    ledger_amount: Mapped[int | None] = mapped_column(BigInteger)
    drift: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    provider_fee: Mapped[int | None] = mapped_column(BigInteger)
    expected_fee: Mapped[int | None] = mapped_column(BigInteger)
    provider_currency: Mapped[str | None] = mapped_column(String(3))
    ledger_currency: Mapped[str | None] = mapped_column(String(3))
    provider_at: Mapped[datetime | None]
    ledger_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text)
    case_id: Mapped[str | None] = mapped_column(Id)


class Case(CreatedAt, Base):
    """An exception for finance: the lines on each side, why they did not match, and what was done."""

    __tablename__ = "recon_case"
    __table_args__ = (Index("ix_recon_case_status_day", "status", "business_day"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    # The line the case is about, whatever run finds it again: `p:<provider line id>` or `l:<journal line>`.
    case_key: Mapped[str] = mapped_column(String(80), unique=True)
    provider: Mapped[str] = mapped_column(String(16))
    business_day: Mapped[date] = mapped_column(Date)
    result: Mapped[str] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    provider_line_id: Mapped[int | None] = mapped_column(BigInteger)
    ledger_item_id: Mapped[int | None] = mapped_column(BigInteger)
    ledger_entry_id: Mapped[str | None] = mapped_column(Id)
    ledger_object: Mapped[str | None] = mapped_column(String(128))
    provider_amount: Mapped[int | None] = mapped_column(BigInteger)
    ledger_amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    first_run_id: Mapped[str] = mapped_column(Id)
    last_run_id: Mapped[str] = mapped_column(Id)
    assignee_id: Mapped[str | None] = mapped_column(Id)
    acknowledged_by: Mapped[str | None] = mapped_column(Id)
    acknowledged_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    resolution_entry_id: Mapped[str | None] = mapped_column(Id)
    resolution_object: Mapped[str | None] = mapped_column(String(128))
    resolved_by: Mapped[str | None] = mapped_column(Id)
    resolved_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class CaseEvent(Base):
    """The audit trail of a case: who did what, when, and why."""

    __tablename__ = "recon_case_event"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("recon_case.id"), index=True)
    actor_id: Mapped[str] = mapped_column(Id)
    action: Mapped[str] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    at: Mapped[datetime] = mapped_column(server_default=text("now()"))
