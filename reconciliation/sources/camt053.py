"""ISO 20022 camt.053 (bank-to-customer statement) XML, parsed with defusedxml.

defusedxml refuses entity expansion (billion laughs), external entities and DTDs, so a hostile file is
refused before anything is read. Any camt.053 version is read (the namespace is taken from the root).
Booked entries (`Sts` `BOOK`) become lines; pending ones are skipped:

- `Amt` with its `Ccy`, `CdtDbtInd` (`CRDT` money in, `DBIT` money out), `BookgDt/DtTm` (or `Dt`, read
  as midnight in Hanoi), the bank's reference `AcctSvcrRef` (or `NtryRef`), charges
  `Chrgs/TtlChrgsAndTaxAmt` (or the sum of `Chrgs/Rcrd/Amt`), and the text of `RmtInf/Ustrd`;
- a debit entry with several `TxDtls` (a batch) is one `payout_batch` line whose members are the
  transfers' `Refs/EndToEndId` (our payout ids).
"""

from datetime import datetime, time
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from hanoipay.localtime import HANOI
from payments.money import CURRENCIES
from reconciliation.exceptions import MalformedStatement
from reconciliation.models import LineKind
from reconciliation.sources import ParsedLine, Problems, clean_text, parse_amount
from reconciliation.sources.bank_csv import bank_line


class _Reader:
    def __init__(self, namespace: str) -> None:
        self.ns = namespace

    def path(self, steps: str) -> str:
        return "/".join(f"{self.ns}{step}" for step in steps.split("/"))

    def find(self, node: Element, steps: str) -> Element | None:
        return node.find(self.path(steps))

    def text(self, node: Element, steps: str) -> str | None:
        found = node.find(self.path(steps))
        return found.text.strip() if found is not None and found.text else None

    def all(self, node: Element, steps: str) -> list[Element]:
        return node.findall(self.path(steps))


def _booked_at(reader: _Reader, entry: Element) -> datetime:
    stamp = reader.text(entry, "BookgDt/DtTm")
    if stamp:
        parsed = datetime.fromisoformat(stamp)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=HANOI)
    day = reader.text(entry, "BookgDt/Dt")
    if not day:
        raise ValueError("no BookgDt")
    return datetime.combine(datetime.fromisoformat(day).date(), time(), HANOI)


def _money(reader: _Reader, node: Element | None, currency: str) -> int:
    if node is None or not node.text:
        raise ValueError("an amount is missing")
    if (node.get("Ccy") or currency).upper() != currency:
        raise ValueError("an amount is in another currency than its entry")
    return parse_amount(node.text, currency)


def _fee(reader: _Reader, entry: Element, currency: str) -> int:
    total = reader.find(entry, "Chrgs/TtlChrgsAndTaxAmt")
    if total is not None:
        return _money(reader, total, currency)
    return sum(_money(reader, r, currency) for r in reader.all(entry, "Chrgs/Rcrd/Amt"))


def _entry(reader: _Reader, entry: Element, currency: str) -> ParsedLine:
    amount = _money(reader, reader.find(entry, "Amt"), currency)
    if amount <= 0:
        raise ValueError("Amt must be positive (the sign is CdtDbtInd)")
    sign = {"CRDT": 1, "DBIT": -1}.get(reader.text(entry, "CdtDbtInd") or "")
    if sign is None:
        raise ValueError("CdtDbtInd must be CRDT or DBIT")
    ref = reader.text(entry, "AcctSvcrRef") or reader.text(entry, "NtryRef")
    if not ref or len(ref) > 128:
        raise ValueError("no AcctSvcrRef or NtryRef of at most 128 characters")
    booked_at, fee = _booked_at(reader, entry), _fee(reader, entry, currency)
    details = reader.all(entry, "NtryDtls/TxDtls")
    texts = [t.text or "" for d in details for t in reader.all(d, "RmtInf/Ustrd")]
    texts += [t.text or "" for t in reader.all(entry, "AddtlNtryInf")]
    description = clean_text(" ".join(t.strip() for t in texts if t.strip()), 1000)
    if sign < 0 and len(details) > 1:
        members = [reader.text(d, "Refs/EndToEndId") or "" for d in details]
        if not all(members) or any(len(m) > 128 for m in members):
            raise ValueError("a batch transfer has no Refs/EndToEndId")
        return ParsedLine(
            ref,
            LineKind.PAYOUT_BATCH,
            -amount,
            currency,
            booked_at,
            fee=fee,
            ref=ref,
            members=members,
            description=description,
        )
    line = bank_line(ref, booked_at, sign * amount, fee, currency, description)
    end_to_end = reader.text(details[0], "Refs/EndToEndId") if len(details) == 1 else None
    if sign < 0 and end_to_end and end_to_end.startswith("po_"):
        line.ref = line.hint = end_to_end
    return line


def parse(data: bytes) -> list[ParsedLine]:
    """Every booked entry of every statement in the file, or MalformedStatement naming the bad ones."""
    try:
        root = fromstring(data)
    except DefusedXmlException as error:
        raise MalformedStatement(
            f"The camt.053 file was refused as unsafe XML ({type(error).__name__})."
        ) from None
    except ParseError as error:
        raise MalformedStatement(f"The camt.053 file is not well-formed XML: {error}.") from None
    namespace = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    if root.tag != f"{namespace}Document" or "camt.053" not in namespace:
        raise MalformedStatement(
            "The file is not an ISO 20022 camt.053 statement (Document in a camt.053 namespace)."
        )
    reader, problems, lines = _Reader(namespace), Problems(), []
    number = 0
    for statement in reader.all(root, "BkToCstmrStmt/Stmt"):
        account_currency = (reader.text(statement, "Acct/Ccy") or "").upper()
        for entry in reader.all(statement, "Ntry"):
            number += 1
            status = reader.text(entry, "Sts/Cd") or reader.text(entry, "Sts")
            if status != "BOOK":
                continue
            amount = reader.find(entry, "Amt")
            currency = ((amount.get("Ccy") if amount is not None else None) or account_currency).upper()
            if currency not in CURRENCIES:
                problems.wrong_currency(number, currency)
                continue
            try:
                lines.append(_entry(reader, entry, currency))
            except ValueError as error:
                problems.add(number, f"entry {number}: {error}")
    if number == 0:
        raise MalformedStatement("The camt.053 file has no statement entries (Ntry).")
    problems.raise_any("camt.053 statement")
    return lines
