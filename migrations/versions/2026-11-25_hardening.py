"""hardening: collection accounts, the last payment error, replayed responses kept as sent

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 22:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "collection_account",
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("bank_bin", sa.String(length=8), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchant.id"], name=op.f("fk_collection_account_merchant_id_merchant")
        ),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_collection_account")),
    )
    op.create_index(
        op.f("ix_collection_account_merchant_id"), "collection_account", ["merchant_id"], unique=False
    )
    op.add_column(
        "payment_intent",
        sa.Column("last_payment_error", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.execute(
        "UPDATE payment_intent SET last_payment_error = jsonb_build_object("
        "'type', 'payment_error', 'code', 'payment_failed', 'decline_code', NULL, 'message', last_error) "
        "WHERE last_error IS NOT NULL"
    )
    op.drop_column("payment_intent", "last_error")
    op.add_column("idempotency_key", sa.Column("response_body", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE idempotency_key SET response_body = convert_to(response::text, 'UTF8') "
        "WHERE response IS NOT NULL"
    )
    op.drop_column("idempotency_key", "response")


def downgrade() -> None:
    op.add_column(
        "idempotency_key",
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.execute(
        "UPDATE idempotency_key SET response = convert_from(response_body, 'UTF8')::jsonb "
        "WHERE response_body IS NOT NULL"
    )
    op.drop_column("idempotency_key", "response_body")
    op.add_column("payment_intent", sa.Column("last_error", sa.Text(), nullable=True))
    op.execute("UPDATE payment_intent SET last_error = last_payment_error->>'message'")
    op.drop_column("payment_intent", "last_payment_error")
    op.drop_index(op.f("ix_collection_account_merchant_id"), table_name="collection_account")
    op.drop_table("collection_account")
