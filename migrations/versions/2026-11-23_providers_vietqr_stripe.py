"""providers vietqr stripe

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 20:42:28.110251
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_event",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("provider", "external_id", name=op.f("pk_provider_event")),
    )
    op.create_table(
        "bank_transaction",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("bank_txn_id", sa.String(length=128), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counter_bank_bin", sa.String(length=8), nullable=True),
        sa.Column("counter_account", sa.String(length=32), nullable=True),
        sa.Column("intent_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["intent_id"], ["payment_intent.id"], name=op.f("fk_bank_transaction_intent_id_payment_intent")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_transaction")),
        sa.UniqueConstraint("bank_txn_id", name=op.f("uq_bank_transaction_bank_txn_id")),
    )
    op.create_index(op.f("ix_bank_transaction_intent_id"), "bank_transaction", ["intent_id"], unique=False)
    op.create_index("ix_bank_transaction_status", "bank_transaction", ["status"], unique=False)
    op.create_table(
        "payout",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("intent_id", sa.String(length=40), nullable=True),
        sa.Column("refund_id", sa.String(length=40), nullable=True),
        sa.Column("bank_bin", sa.String(length=8), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["intent_id"], ["payment_intent.id"], name=op.f("fk_payout_intent_id_payment_intent")
        ),
        sa.ForeignKeyConstraint(["refund_id"], ["refund.id"], name=op.f("fk_payout_refund_id_refund")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout")),
        sa.UniqueConstraint("refund_id", name=op.f("uq_payout_refund_id")),
    )
    op.create_index(op.f("ix_payout_intent_id"), "payout", ["intent_id"], unique=False)
    op.add_column(
        "merchant",
        sa.Column(
            "overpayment_policy", sa.String(length=16), server_default=sa.text("'refund'"), nullable=False
        ),
    )
    op.add_column(
        "payment_intent", sa.Column("next_action", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column("payment_intent", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("payment_intent", sa.Column("reference", sa.String(length=25), nullable=True))
    op.create_index(
        "ix_payment_intent_provider_ref",
        "payment_intent",
        ["provider", "provider_ref"],
        postgresql_where=sa.text("provider_ref IS NOT NULL"),
    )
    op.create_unique_constraint(op.f("uq_payment_intent_reference"), "payment_intent", ["reference"])
    op.add_column(
        "payment_intent",
        sa.Column("amount_collected", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("payment_intent", "amount_collected")
    op.drop_constraint(op.f("uq_payment_intent_reference"), "payment_intent", type_="unique")
    op.drop_index("ix_payment_intent_provider_ref", table_name="payment_intent")
    op.drop_column("payment_intent", "reference")
    op.drop_column("payment_intent", "expires_at")
    op.drop_column("payment_intent", "next_action")
    op.drop_column("merchant", "overpayment_policy")
    op.drop_index(op.f("ix_payout_intent_id"), table_name="payout")
    op.drop_table("payout")
    op.drop_index("ix_bank_transaction_status", table_name="bank_transaction")
    op.drop_index(op.f("ix_bank_transaction_intent_id"), table_name="bank_transaction")
    op.drop_table("bank_transaction")
    op.drop_table("provider_event")
