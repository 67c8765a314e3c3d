"""VietQR payloads: the NAPAS 247 profile of EMVCo merchant-presented QR codes, built, parsed and checksummed.

A payload is a string of TLV fields (two-digit id, two-digit length, value); templates nest the same way.
Errors carry a stable `code`:

- `qr_bad_crc`: the checksum (field 63) is missing, not the last field, malformed or wrong;
- `qr_bad_length`: a field header is not four digits, a length is 00 or runs past the end (truncation);
- `qr_bad_layout`: a mandatory field is missing or holds a value VietQR does not allow;
- `qr_unknown_bank`: the acquirer BIN is not in `payments.providers.vietqr.banks`;
- `qr_bad_account`, `qr_bad_amount`, `qr_bad_reference`, `qr_bad_merchant_name`, `qr_bad_merchant_city`:
  `build_payload` was given a value it cannot encode.
"""

import binascii
import re
from dataclasses import dataclass
from typing import Literal

from payments.providers.vietqr.banks import bank_by_bin

NAPAS_GUID = "A000000727"
SERVICE_TO_ACCOUNT = "QRIBFTTA"
SERVICE_TO_CARD = "QRIBFTTC"
MAX_AMOUNT = 10**12
MAX_REFERENCE_LENGTH = 25
MAX_MERCHANT_NAME_LENGTH = 25
MAX_MERCHANT_CITY_LENGTH = 15

_FORMAT = "00"
_INITIATION = "01"
_NAPAS = "38"
_CURRENCY = "53"
_AMOUNT = "54"
_COUNTRY = "58"
_MERCHANT_NAME = "59"
_MERCHANT_CITY = "60"
_ADDITIONAL = "62"
_CRC = "63"

_STATIC = "11"
_DYNAMIC = "12"
_VND = "704"
_VIETNAM = "VN"
# Sub-fields of 62 that may carry the payment reference, most specific first.
_REFERENCE_IDS = ("08", "05", "01")

_HEADER = re.compile(r"[0-9]{4}")
_BIN = re.compile(r"[0-9]{6}")
_ACCOUNT = re.compile(r"[0-9A-Za-z]{1,19}")
_DIGITS = re.compile(r"[0-9]+")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_REFERENCE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 ]*[A-Za-z0-9])?")

PointOfInitiation = Literal["static", "dynamic"]


class VietQrError(Exception):
    """A payload that cannot be built or parsed: `code` is stable, `detail` is for people."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


@dataclass(frozen=True, slots=True)
class VietQrPayload:
    """The fields of a VietQR transfer: who is paid, how much (None: the payer types it), and what for."""

    bank_bin: str
    account: str
    amount: int | None
    reference: str | None
    point_of_initiation: PointOfInitiation
    service_code: str = SERVICE_TO_ACCOUNT
    merchant_name: str | None = None
    merchant_city: str | None = None


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, unreflected, no final xor) of `data`."""
    # crc_hqx is exactly this CRC when seeded with 0xFFFF, and runs in C.
    return binascii.crc_hqx(data, 0xFFFF)


def build_payload(
    *,
    bank_bin: str,
    account: str,
    amount: int | None = None,
    reference: str | None = None,
    merchant_name: str | None = None,
    merchant_city: str | None = None,
) -> str:
    """A VietQR string, static if amount is None; reference fills NAPAS's 25-character purpose field 62.08."""
    if bank_by_bin(bank_bin) is None:
        raise VietQrError("qr_unknown_bank", f"no VietQR bank has BIN {bank_bin!r}")
    if not _ACCOUNT.fullmatch(account):
        raise VietQrError("qr_bad_account", "account must be 1 to 19 ASCII letters or digits")
    if amount is not None:
        _check_amount(amount)
    if reference is not None:
        _check_reference(reference)
    if merchant_name is not None:
        _check_text(merchant_name, "qr_bad_merchant_name", "merchant name", MAX_MERCHANT_NAME_LENGTH)
    if merchant_city is not None:
        _check_text(merchant_city, "qr_bad_merchant_city", "merchant city", MAX_MERCHANT_CITY_LENGTH)

    beneficiary = _tlv("00", bank_bin) + _tlv("01", account)
    napas = _tlv("00", NAPAS_GUID) + _tlv("01", beneficiary) + _tlv("02", SERVICE_TO_ACCOUNT)
    fields = [
        _tlv(_FORMAT, "01"),
        _tlv(_INITIATION, _STATIC if amount is None else _DYNAMIC),
        _tlv(_NAPAS, napas),
        _tlv(_CURRENCY, _VND),
    ]
    if amount is not None:
        fields.append(_tlv(_AMOUNT, str(amount)))
    fields.append(_tlv(_COUNTRY, _VIETNAM))
    if merchant_name is not None:
        fields.append(_tlv(_MERCHANT_NAME, merchant_name))
    if merchant_city is not None:
        fields.append(_tlv(_MERCHANT_CITY, merchant_city))
    if reference is not None:
        fields.append(_tlv(_ADDITIONAL, _tlv("08", reference)))
    # The checksum covers its own id and length, so they are written before it is computed.
    body = "".join(fields) + _CRC + "04"
    return body + f"{crc16_ccitt_false(body.encode('ascii')):04X}"


def parse_payload(text: str) -> VietQrPayload:
    """Decode a checked VietQR string; raise `VietQrError` (qr_bad_*, qr_unknown_bank) if it is not one."""
    if not text:
        raise VietQrError("qr_bad_length", "the payload is empty")
    fields = _read_fields(text, "payload")
    _check_crc(text, fields)
    top = _unique(fields, "payload")
    if fields[0] != (_FORMAT, "01"):
        raise VietQrError("qr_bad_layout", "the payload must open with field 00 (format indicator) = '01'")

    initiation = top.get(_INITIATION)
    if initiation not in (_STATIC, _DYNAMIC):
        raise VietQrError(
            "qr_bad_layout", f"field 01 (point of initiation) is {initiation!r}, not '11' or '12'"
        )
    bank_bin, account, service_code = _parse_napas(top.get(_NAPAS))
    if top.get(_CURRENCY) != _VND:
        raise VietQrError("qr_bad_layout", f"field 53 (currency) is {top.get(_CURRENCY)!r}, not '704' (VND)")
    if top.get(_COUNTRY) != _VIETNAM:
        raise VietQrError("qr_bad_layout", f"field 58 (country) is {top.get(_COUNTRY)!r}, not 'VN'")

    raw_amount = top.get(_AMOUNT)
    if raw_amount is None and initiation == _DYNAMIC:
        raise VietQrError("qr_bad_layout", "a dynamic QR (01 = '12') must carry an amount in field 54")
    # EMVCo lets a static QR carry an amount; it is kept, and the QR stays static.
    amount = None if raw_amount is None else _parse_amount(raw_amount)

    reference = None
    if _ADDITIONAL in top:
        additional = _unique(_read_fields(top[_ADDITIONAL], "field 62"), "field 62")
        reference = next((additional[i] for i in _REFERENCE_IDS if i in additional), None)

    if bank_by_bin(bank_bin) is None:
        raise VietQrError("qr_unknown_bank", f"no VietQR bank has BIN {bank_bin!r}")
    return VietQrPayload(
        bank_bin=bank_bin,
        account=account,
        amount=amount,
        reference=reference,
        point_of_initiation="static" if initiation == _STATIC else "dynamic",
        service_code=service_code,
        merchant_name=top.get(_MERCHANT_NAME),
        merchant_city=top.get(_MERCHANT_CITY),
    )


def _tlv(field_id: str, value: str) -> str:
    return f"{field_id}{len(value):02d}{value}"


def _check_amount(amount: int) -> None:
    # bool is an int to Python, and True would otherwise encode as an amount of 1 VND.
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise VietQrError("qr_bad_amount", f"amount must be a whole number of VND, not {amount!r}")
    if not 1 <= amount <= MAX_AMOUNT:
        raise VietQrError("qr_bad_amount", f"amount must be between 1 and {MAX_AMOUNT} VND, not {amount}")


def _check_reference(reference: str) -> None:
    if not 1 <= len(reference) <= MAX_REFERENCE_LENGTH:
        raise VietQrError(
            "qr_bad_reference",
            f"reference is {len(reference)} characters; NAPAS allows 1 to {MAX_REFERENCE_LENGTH}",
        )
    # Banking apps trim and fold the purpose text, so anything else would not come back as sent.
    if not _REFERENCE.fullmatch(reference):
        raise VietQrError(
            "qr_bad_reference", "reference may hold only ASCII letters, digits and spaces between them"
        )


def _check_text(value: str, code: str, label: str, limit: int) -> None:
    if not 1 <= len(value) <= limit:
        raise VietQrError(code, f"{label} is {len(value)} characters; EMVCo allows 1 to {limit}")
    if not all(" " <= ch <= "~" for ch in value):
        raise VietQrError(code, f"{label} may hold only printable ASCII")


def _read_fields(text: str, where: str) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        header = text[pos : pos + 4]
        if not _HEADER.fullmatch(header):
            raise VietQrError("qr_bad_length", f"{where}: no id and length (4 digits) at offset {pos}")
        field_id, length = header[:2], int(header[2:])
        if length == 0:
            raise VietQrError("qr_bad_length", f"{where}: field {field_id} has length 00")
        end = pos + 4 + length
        if end > len(text):
            raise VietQrError(
                "qr_bad_length",
                f"{where}: field {field_id} claims {length} characters, {len(text) - pos - 4} remain",
            )
        fields.append((field_id, text[pos + 4 : end]))
        pos = end
    return fields


def _unique(fields: list[tuple[str, str]], where: str) -> dict[str, str]:
    by_id: dict[str, str] = {}
    for field_id, value in fields:
        if field_id in by_id:
            raise VietQrError("qr_bad_layout", f"{where}: field {field_id} appears more than once")
        by_id[field_id] = value
    return by_id


def _check_crc(text: str, fields: list[tuple[str, str]]) -> None:
    if fields[-1][0] != _CRC or any(field_id == _CRC for field_id, _ in fields[:-1]):
        raise VietQrError("qr_bad_crc", "field 63 (CRC) must be present, once, as the last field")
    stated = fields[-1][1]
    if not _HEX4.fullmatch(stated):
        raise VietQrError("qr_bad_crc", f"field 63 (CRC) is {stated!r}, not 4 hex digits")
    computed = crc16_ccitt_false(text[:-4].encode("utf-8"))
    if int(stated, 16) != computed:
        raise VietQrError(
            "qr_bad_crc", f"field 63 (CRC) says {stated.upper()}, the payload gives {computed:04X}"
        )


def _parse_napas(template: str | None) -> tuple[str, str, str]:
    if template is None:
        raise VietQrError("qr_bad_layout", "no NAPAS merchant account template (field 38)")
    napas = _unique(_read_fields(template, "field 38"), "field 38")
    if napas.get("00", "").upper() != NAPAS_GUID:
        raise VietQrError(
            "qr_bad_layout", f"field 38.00 is {napas.get('00')!r}, not the NAPAS id {NAPAS_GUID}"
        )
    if "01" not in napas:
        raise VietQrError("qr_bad_layout", "field 38 has no beneficiary (38.01)")
    beneficiary = _unique(_read_fields(napas["01"], "field 38.01"), "field 38.01")
    bank_bin, account = beneficiary.get("00"), beneficiary.get("01")
    if bank_bin is None or not _BIN.fullmatch(bank_bin):
        raise VietQrError("qr_bad_layout", f"field 38.01.00 (acquirer) is {bank_bin!r}, not a 6-digit BIN")
    if account is None or not _ACCOUNT.fullmatch(account):
        raise VietQrError("qr_bad_layout", "field 38.01.01 (account) must be 1 to 19 ASCII letters or digits")
    service_code = napas.get("02")
    if service_code not in (SERVICE_TO_ACCOUNT, SERVICE_TO_CARD):
        raise VietQrError(
            "qr_bad_layout", f"field 38.02 (service) is {service_code!r}, not QRIBFTTA or QRIBFTTC"
        )
    return bank_bin, account, service_code


def _parse_amount(raw: str) -> int:
    if not _DIGITS.fullmatch(raw):
        raise VietQrError("qr_bad_layout", f"field 54 (amount) is {raw!r}, not whole VND digits")
    amount = int(raw)
    if not 1 <= amount <= MAX_AMOUNT:
        raise VietQrError("qr_bad_layout", f"field 54 (amount) is {amount}, outside 1 to {MAX_AMOUNT}")
    return amount
