"""a parking session's operator, zone and tariff version are its quote's: checked through the quote

Revision ID: 0060
Revises: 0050
Create Date: 2026-11-26 15:20:00

A session copies these three from the quote it presents, in the statement that writes it, and never
changes them; the quote's own foreign keys hold them, and the session's foreign key to its quote holds the
quote. Checking each again on every start cost three more look-ups, two of them locking rows every start
shares (the operator and a tariff version used by many zones).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0060"
down_revision: str | None = "0050"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COPIED = (
    ("fk_parking_session_merchant_id_merchant", "merchant_id", "merchant"),
    ("fk_parking_session_zone_id_parking_zone", "zone_id", "parking_zone"),
    (
        "fk_parking_session_tariff_version_id_parking_tariff_version",
        "tariff_version_id",
        "parking_tariff_version",
    ),
)


def upgrade() -> None:
    for name, _, _ in _COPIED:
        op.drop_constraint(name, "parking_session", type_="foreignkey")


def downgrade() -> None:
    for name, column, table in _COPIED:
        op.create_foreign_key(name, "parking_session", table, [column], ["id"])
