"""a hold's intent is checked at commit, so a hold placed at confirmation can precede its intent's row

Revision ID: 0050
Revises: 0040
Create Date: 2026-11-26 05:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0050"
down_revision: str | None = "0040"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE hold ALTER CONSTRAINT fk_hold_intent_id_payment_intent DEFERRABLE INITIALLY DEFERRED"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE hold ALTER CONSTRAINT fk_hold_intent_id_payment_intent NOT DEFERRABLE")
