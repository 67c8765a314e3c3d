"""Storing provider lines: files known by their hash load once; a line already stored is not stored again."""

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from hanoipay.ids import new_id
from reconciliation.models import ProviderLine, SourceFile
from reconciliation.sources import ParsedLine

COLUMNS = (
    "provider",
    "external_id",
    "occurrence",
    "source",
    "file_id",
    "kind",
    "ref",
    "hint",
    "group_ref",
    "members",
    "amount",
    "fee",
    "currency",
    "occurred_at",
    "business_day",
    "description",
)


@dataclass(frozen=True)
class Stored:
    """What storing a file did: its row, whether it had been uploaded before, how many lines are new."""

    file: SourceFile
    duplicate: bool
    new_lines: int


def claim_file(
    session: Session, *, data: bytes, provider: str, format: str, filename: str, uploaded_by: str
) -> tuple[SourceFile, bool]:
    """The file's row, inserted if its hash is new; True when the same bytes were uploaded before."""
    digest = hashlib.sha256(data).hexdigest()
    file_id = session.execute(
        pg_insert(SourceFile)
        .values(
            id=new_id("rsf"),
            sha256=digest,
            provider=provider,
            format=format,
            filename=filename,
            size=len(data),
            lines=0,
            uploaded_by=uploaded_by,
        )
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(SourceFile.id)
    ).scalar()
    row = session.scalars(select(SourceFile).where(SourceFile.sha256 == digest)).one()
    return row, file_id is None


def store_lines(
    session: Session, provider: str, source: str, lines: Sequence[ParsedLine], file_id: str | None = None
) -> int:
    """Store lines not stored before (by provider, external id and occurrence); returns how many are new.

    A line repeated inside one batch keeps both copies (occurrence 1, 2, ...), so a statement that lists
    a transaction twice shows it as a duplicate instead of hiding it. Lines go in by COPY.
    """
    if not lines:
        return 0
    seen: Counter[str] = Counter()
    connection = session.connection().connection.driver_connection
    assert connection is not None
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS recon_incoming ON COMMIT DELETE ROWS AS"  # noqa: S608 (constants)
            f" SELECT {', '.join(COLUMNS)} FROM recon_provider_line WITH NO DATA"
        )
        cursor.execute("TRUNCATE recon_incoming")
        with cursor.copy(f"COPY recon_incoming ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for line in lines:
                seen[line.external_id] += 1
                copy.write_row(
                    (
                        provider,
                        line.external_id,
                        seen[line.external_id],
                        source,
                        file_id,
                        line.kind,
                        line.ref,
                        line.hint,
                        line.group_ref,
                        None if line.members is None else _json(line.members),
                        line.amount,
                        line.fee,
                        line.currency,
                        line.occurred_at,
                        line.business_day,
                        line.description,
                    )
                )
    columns = ", ".join(COLUMNS)
    inserted = session.execute(
        text(
            f"INSERT INTO recon_provider_line ({columns}) SELECT {columns} FROM recon_incoming"  # noqa: S608
            " ON CONFLICT (provider, external_id, occurrence) DO NOTHING"
        )
    ).rowcount  # type: ignore[attr-defined]
    # A payout's members may have been stored before the payout was known: record which payout paid them.
    session.execute(
        text(
            "UPDATE recon_provider_line p SET group_ref = i.group_ref FROM recon_incoming i"
            " WHERE p.provider = i.provider AND p.external_id = i.external_id AND p.occurrence = i.occurrence"
            " AND i.group_ref IS NOT NULL AND p.group_ref IS DISTINCT FROM i.group_ref"
        )
    )
    return int(inserted or 0)


def _json(members: list[str]) -> str:
    return json.dumps(members)


def record_file_lines(session: Session, file: SourceFile, lines: Sequence[ParsedLine]) -> None:
    """Note on the file's row how many lines it had and which business days they cover."""
    days: list[date] = [line.business_day for line in lines]
    file.lines = len(lines)
    file.first_day = min(days) if days else None
    file.last_day = max(days) if days else None
    session.flush()


def lines_on(session: Session, provider: str, day: date) -> int:
    """How many lines of the provider are stored for a business day."""
    return int(
        session.scalar(
            select(func.count()).where(ProviderLine.provider == provider, ProviderLine.business_day == day)
        )
        or 0
    )
