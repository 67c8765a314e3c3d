"""payment core

Revision ID: 0001
Revises:
Create Date: 2026-11-23 19:43:00.963760
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=True),
        sa.Column("object_id", sa.String(length=40), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event")),
    )
    op.create_index("ix_event_merchant_id_id", "event", ["merchant_id", "id"], unique=False)
    op.create_table(
        "idempotency_key",
        sa.Column("owner", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("owner", "key", name=op.f("pk_idempotency_key")),
    )
    op.create_index(op.f("ix_idempotency_key_expires_at"), "idempotency_key", ["expires_at"], unique=False)
    op.create_table(
        "journal_entry",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("dedupe_key", sa.Text(), nullable=False),
        sa.Column("intent_id", sa.String(length=40), nullable=True),
        sa.Column("refund_id", sa.String(length=40), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_entry")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_journal_entry_dedupe_key")),
    )
    op.create_index(op.f("ix_journal_entry_intent_id"), "journal_entry", ["intent_id"], unique=False)
    op.create_table(
        "merchant",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("fee_bps", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payout_bank_bin", sa.String(length=8), nullable=False),
        sa.Column("payout_account", sa.String(length=32), nullable=False),
        sa.Column("payout_account_name", sa.Text(), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("fee_bps BETWEEN 0 AND 10000", name=op.f("ck_merchant_fee_bps_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant")),
        sa.UniqueConstraint("account_id", name=op.f("uq_merchant_account_id")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("job", sa.String(length=200), nullable=False),
        sa.Column("kwargs", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("relayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(
        "ix_outbox_unrelayed", "outbox", ["id"], unique=False, postgresql_where=sa.text("relayed_at IS NULL")
    )
    op.create_table(
        "api_key",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_api_key_merchant_id_merchant")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
    )
    op.create_index(op.f("ix_api_key_merchant_id"), "api_key", ["merchant_id"], unique=False)
    op.create_table(
        "app_user",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("roles", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_app_user_merchant_id_merchant")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("email", name=op.f("uq_app_user_email")),
    )
    op.create_index(op.f("ix_app_user_merchant_id"), "app_user", ["merchant_id"], unique=False)
    op.create_table(
        "ledger_account",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance_mode", sa.String(length=16), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_account")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_account_code")),
    )
    op.create_foreign_key(
        op.f("fk_merchant_account_id_ledger_account"), "merchant", "ledger_account", ["account_id"], ["id"]
    )
    op.create_index(op.f("ix_ledger_account_merchant_id"), "ledger_account", ["merchant_id"], unique=False)
    op.create_table(
        "account_balance",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("posted", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("held", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("non_negative", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "NOT non_negative OR posted - held >= 0", name=op.f("ck_account_balance_non_negative")
        ),
        sa.CheckConstraint("held >= 0", name=op.f("ck_account_balance_held_non_negative")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_account.id"], name=op.f("fk_account_balance_account_id_ledger_account")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_balance")),
    )
    op.create_table(
        "balance_delta",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_account.id"], name=op.f("fk_balance_delta_account_id_ledger_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_delta")),
    )
    op.create_index(op.f("ix_balance_delta_account_id"), "balance_delta", ["account_id"], unique=False)
    op.create_table(
        "journal_line",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_journal_line_non_zero")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_account.id"], name=op.f("fk_journal_line_account_id_ledger_account")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entry.id"], name=op.f("fk_journal_line_entry_id_journal_entry")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_line")),
    )
    op.create_index(
        "ix_journal_line_account_posted", "journal_line", ["account_id", "posted_at"], unique=False
    )
    op.create_index(op.f("ix_journal_line_entry_id"), "journal_line", ["entry_id"], unique=False)
    op.create_table(
        "wallet",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("owner_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_account.id"], name=op.f("fk_wallet_account_id_ledger_account")
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["app_user.id"], name=op.f("fk_wallet_owner_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet")),
        sa.UniqueConstraint("account_id", name=op.f("uq_wallet_account_id")),
    )
    op.create_index("uq_wallet_owner_currency", "wallet", ["owner_id", "currency"], unique=True)
    op.create_table(
        "payment_intent",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=True),
        sa.Column("payer_id", sa.String(length=40), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("purpose_ref", sa.Text(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("capture_method", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=True),
        sa.Column("wallet_id", sa.String(length=40), nullable=True),
        sa.Column("provider_ref", sa.Text(), nullable=True),
        sa.Column("amount_capturable", sa.BigInteger(), nullable=False),
        sa.Column("amount_received", sa.BigInteger(), nullable=False),
        sa.Column("amount_refunded", sa.BigInteger(), nullable=False),
        sa.Column("fee_amount", sa.BigInteger(), nullable=False),
        sa.Column("capture_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancellation_reason", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payment_intent_amount_positive")),
        sa.CheckConstraint("amount_received <= amount", name=op.f("ck_payment_intent_received_le_amount")),
        sa.CheckConstraint(
            "amount_refunded <= amount_received", name=op.f("ck_payment_intent_refunded_le_received")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_payment_intent_merchant_id_merchant")
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["app_user.id"], name=op.f("fk_payment_intent_payer_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["wallet.id"], name=op.f("fk_payment_intent_wallet_id_wallet")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_intent")),
    )
    op.create_index(
        "ix_payment_intent_capture_before",
        "payment_intent",
        ["capture_before"],
        unique=False,
        postgresql_where=sa.text("status = 'requires_capture'"),
    )
    op.create_index("ix_payment_intent_merchant_id_id", "payment_intent", ["merchant_id", "id"], unique=False)
    op.create_index("ix_payment_intent_payer_id_id", "payment_intent", ["payer_id", "id"], unique=False)
    op.create_index(
        "ix_payment_intent_purpose_ref", "payment_intent", ["purpose", "purpose_ref"], unique=False
    )
    op.create_table(
        "hold",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("intent_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_account.id"], name=op.f("fk_hold_account_id_ledger_account")
        ),
        sa.ForeignKeyConstraint(
            ["intent_id"], ["payment_intent.id"], name=op.f("fk_hold_intent_id_payment_intent")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hold")),
        sa.UniqueConstraint("intent_id", name=op.f("uq_hold_intent_id")),
    )
    op.create_index(op.f("ix_hold_account_id"), "hold", ["account_id"], unique=False)
    op.create_table(
        "refund",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("intent_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("fee_refunded", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["intent_id"], ["payment_intent.id"], name=op.f("fk_refund_intent_id_payment_intent")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund")),
    )
    op.create_index(op.f("ix_refund_intent_id"), "refund", ["intent_id"], unique=False)


def downgrade() -> None:
    op.drop_constraint(op.f("fk_merchant_account_id_ledger_account"), "merchant", type_="foreignkey")
    op.drop_index(op.f("ix_refund_intent_id"), table_name="refund")
    op.drop_table("refund")
    op.drop_index(op.f("ix_hold_account_id"), table_name="hold")
    op.drop_table("hold")
    op.drop_index("ix_payment_intent_purpose_ref", table_name="payment_intent")
    op.drop_index("ix_payment_intent_payer_id_id", table_name="payment_intent")
    op.drop_index("ix_payment_intent_merchant_id_id", table_name="payment_intent")
    op.drop_index(
        "ix_payment_intent_capture_before",
        table_name="payment_intent",
        postgresql_where=sa.text("status = 'requires_capture'"),
    )
    op.drop_table("payment_intent")
    op.drop_index("uq_wallet_owner_currency", table_name="wallet")
    op.drop_table("wallet")
    op.drop_index(op.f("ix_journal_line_entry_id"), table_name="journal_line")
    op.drop_index("ix_journal_line_account_posted", table_name="journal_line")
    op.drop_table("journal_line")
    op.drop_index(op.f("ix_balance_delta_account_id"), table_name="balance_delta")
    op.drop_table("balance_delta")
    op.drop_table("account_balance")
    op.drop_index(op.f("ix_ledger_account_merchant_id"), table_name="ledger_account")
    op.drop_table("ledger_account")
    op.drop_index(op.f("ix_app_user_merchant_id"), table_name="app_user")
    op.drop_table("app_user")
    op.drop_index(op.f("ix_api_key_merchant_id"), table_name="api_key")
    op.drop_table("api_key")
    op.drop_index("ix_outbox_unrelayed", table_name="outbox", postgresql_where=sa.text("relayed_at IS NULL"))
    op.drop_table("outbox")
    op.drop_table("merchant")
    op.drop_index(op.f("ix_journal_entry_intent_id"), table_name="journal_entry")
    op.drop_table("journal_entry")
    op.drop_index(op.f("ix_idempotency_key_expires_at"), table_name="idempotency_key")
    op.drop_table("idempotency_key")
    op.drop_index("ix_event_merchant_id_id", table_name="event")
    op.drop_table("event")
