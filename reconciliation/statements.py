"""Statement files finance uploads: Stripe's balance report, a bank statement as CSV or camt.053.

A file is known by the SHA-256 of its bytes: uploading it again changes nothing and says so. A file with
any bad line is refused whole, with the line numbers, before anything is stored.
"""

from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal, Role
from hanoipay.pagination import Page, paginate
from reconciliation.exceptions import StatementTooLarge
from reconciliation.models import Provider, SourceFile
from reconciliation.sources import ParsedLine, bank_csv, camt053, stripe_csv
from reconciliation.sources.store import Stored, claim_file, record_file_lines, store_lines

MAX_BYTES = 256 * 1024 * 1024
Parser = Callable[[bytes], Sequence[ParsedLine]]
FORMATS: dict[str, tuple[Provider, Parser]] = {
    "stripe_balance_csv": (Provider.STRIPE, stripe_csv.parse),
    "bank_csv": (Provider.VIETQR, bank_csv.parse),
    "camt053": (Provider.VIETQR, camt053.parse),
}


def upload_statement(session: Session, who: Principal, *, format: str, filename: str, data: bytes) -> Stored:
    """Store a statement file's lines once; the same bytes again are recognised and change nothing."""
    who.require(Role.FINANCE)
    if len(data) > MAX_BYTES:
        raise StatementTooLarge(f"A statement file may be at most {MAX_BYTES // 2**20} MiB.")
    provider, parse = FORMATS[format]
    file, duplicate = claim_file(
        session, data=data, provider=provider, format=format, filename=filename, uploaded_by=who.id
    )
    if duplicate:
        return Stored(file, True, 0)
    lines = parse(data)
    new = store_lines(session, provider, format, lines, file.id)
    record_file_lines(session, file, lines)
    return Stored(file, False, new)


def list_statements(
    session: Session, who: Principal, *, limit: int, starting_after: str | None
) -> Page[SourceFile]:
    """Uploaded statement files, newest first."""
    who.require(Role.FINANCE)
    return paginate(session, select(SourceFile), SourceFile.id, limit=limit, starting_after=starting_after)
