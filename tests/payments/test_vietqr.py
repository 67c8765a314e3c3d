"""VietQR codec, bank list and PNG rendering: checksums, round trips, refusals, and a real scan of the PNG."""

import io
import string

import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from payments.providers.vietqr.banks import BANKS, Bank, bank_by_bin, bank_by_short_name
from payments.providers.vietqr.codec import (
    MAX_AMOUNT,
    VietQrError,
    VietQrPayload,
    build_payload,
    crc16_ccitt_false,
    parse_payload,
)
from payments.providers.vietqr.image import format_vnd, render_png

VCB = "970436"


def crc_bitwise(data: bytes) -> int:
    """CRC-16/CCITT-FALSE the slow way, one bit at a time, to check the module's implementation against."""
    crc = 0xFFFF
    for byte in data:
        for bit in range(7, -1, -1):
            feedback = ((crc >> 15) & 1) ^ ((byte >> bit) & 1)
            crc = (crc << 1) & 0xFFFF
            if feedback:
                crc ^= 0x1021
    return crc


def seal(body: str) -> str:
    """Append a correct field 63 to `body`, so that a test reaches the checks after the checksum."""
    with_tag = body + "6304"
    return with_tag + f"{crc_bitwise(with_tag.encode()):04X}"


def tlv(field_id: str, value: str) -> str:
    return f"{field_id}{len(value):02d}{value}"


def code_of(text: str) -> str:
    with pytest.raises(VietQrError) as caught:
        parse_payload(text)
    return caught.value.code


# A dynamic Vietcombank transfer of 250,000 VND, laid out by hand field by field.
HAND_BUILT_BODY = (
    "000201"  # 00 payload format indicator
    "010212"  # 01 point of initiation: dynamic
    "3857"  # 38 NAPAS merchant account information, 57 characters:
    "0010A000000727"  # 38.00 NAPAS GUID
    "0127"  # 38.01 beneficiary organization, 27 characters:
    "0006970436"  # 38.01.00 acquirer BIN (Vietcombank)
    "01130011001234567"  # 38.01.01 account number
    "0208QRIBFTTA"  # 38.02 service: transfer to account
    "5303704"  # 53 currency VND
    "5406250000"  # 54 amount
    "5802VN"  # 58 country
    "5908HANOIPAY"  # 59 merchant name
    "6006HA NOI"  # 60 merchant city
    "62160812HANOIPAY 123"  # 62 additional data, 08 purpose of transaction
)
HAND_BUILT = seal(HAND_BUILT_BODY)

# The pieces of a valid dynamic payload (without field 62 and 63), for tests to break one at a time.
HEAD = "000201" + "010212"
NAPAS_VCB = tlv(
    "38",
    tlv("00", "A000000727") + tlv("01", tlv("00", VCB) + tlv("01", "0011001234567")) + tlv("02", "QRIBFTTA"),
)
TAIL = "5303704" + "5406250000" + "5802VN"


def test_crc16_matches_the_standard_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert crc16_ccitt_false(b"") == 0xFFFF


@pytest.mark.parametrize("data", [b"A", b"HanoiPay", bytes(range(256)), HAND_BUILT_BODY.encode()])
def test_crc16_agrees_with_a_bitwise_crc(data: bytes) -> None:
    assert crc16_ccitt_false(data) == crc_bitwise(data)


def test_hand_built_payload_parses_and_is_what_build_produces() -> None:
    assert parse_payload(HAND_BUILT) == VietQrPayload(
        bank_bin=VCB,
        account="0011001234567",
        amount=250_000,
        reference="HANOIPAY 123",
        point_of_initiation="dynamic",
        service_code="QRIBFTTA",
        merchant_name="HANOIPAY",
        merchant_city="HA NOI",
    )
    built = build_payload(
        bank_bin=VCB,
        account="0011001234567",
        amount=250_000,
        reference="HANOIPAY 123",
        merchant_name="HANOIPAY",
        merchant_city="HA NOI",
    )
    assert built == HAND_BUILT


def test_static_round_trip_has_no_amount_and_says_static() -> None:
    text = build_payload(bank_bin="970415", account="113366668888")
    assert text.startswith("000201010211")
    assert parse_payload(text) == VietQrPayload(
        bank_bin="970415", account="113366668888", amount=None, reference=None, point_of_initiation="static"
    )


def test_dynamic_round_trip_keeps_amount_and_reference() -> None:
    text = build_payload(bank_bin="970422", account="0987654321", amount=1_500_000, reference="PARK HK 0042")
    parsed = parse_payload(text)
    assert parsed.point_of_initiation == "dynamic"
    assert (parsed.bank_bin, parsed.account) == ("970422", "0987654321")
    assert (parsed.amount, parsed.reference) == (1_500_000, "PARK HK 0042")
    assert (parsed.merchant_name, parsed.merchant_city) == (None, None)


def test_wrong_crc_is_refused() -> None:
    wrong = "0000" if not HAND_BUILT.endswith("0000") else "FFFF"
    assert code_of(HAND_BUILT[:-4] + wrong) == "qr_bad_crc"


def test_any_changed_character_is_refused() -> None:
    assert code_of(HAND_BUILT.replace("250000", "950000")) == "qr_bad_crc"
    assert code_of(HAND_BUILT.replace("0011001234567", "0011001234568")) == "qr_bad_crc"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(HAND_BUILT_BODY, id="missing"),
        pytest.param(HAND_BUILT + "6402VI", id="not-last"),
        pytest.param(HAND_BUILT[:-4] + "12G4", id="not-hex"),
        pytest.param(HAND_BUILT_BODY + "6303ABC", id="wrong-length"),
    ],
)
def test_missing_or_misplaced_crc_is_refused(text: str) -> None:
    assert code_of(text) == "qr_bad_crc"


def test_lowercase_crc_digits_are_accepted() -> None:
    assert parse_payload(HAND_BUILT[:-4] + HAND_BUILT[-4:].lower()) == parse_payload(HAND_BUILT)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param(HAND_BUILT[:-2], id="cut-in-crc"),
        pytest.param(HAND_BUILT[:40], id="cut-in-template"),
        pytest.param(HAND_BUILT[:5], id="cut-in-value"),
        pytest.param(HAND_BUILT[:8], id="cut-in-header"),
        pytest.param(HAND_BUILT[:-8] + "6305" + HAND_BUILT[-4:], id="length-runs-past-end"),
        pytest.param("00AB01" + HAND_BUILT[6:], id="non-digit-length"),
        pytest.param(seal("000201010211" + "3800" + TAIL), id="zero-length"),
        pytest.param(
            seal(HEAD + tlv("38", tlv("00", "A000000727") + "0199" + "0006970436") + TAIL), id="nested"
        ),
    ],
)
def test_truncated_or_bad_length_is_refused(text: str) -> None:
    assert code_of(text) == "qr_bad_length"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(seal(HEAD + TAIL), id="no-napas-template"),
        pytest.param(seal(HEAD + NAPAS_VCB.replace("A000000727", "A000000999") + TAIL), id="other-guid"),
        pytest.param(seal(HEAD + NAPAS_VCB + TAIL.replace("5303704", "5303840")), id="usd"),
        pytest.param(seal(HEAD + NAPAS_VCB + TAIL.replace("5802VN", "5802TH")), id="thailand"),
        pytest.param(seal(HEAD + NAPAS_VCB + TAIL.replace("5303704", "")), id="no-currency"),
        pytest.param(seal("000202010212" + NAPAS_VCB + TAIL), id="format-02"),
        pytest.param(seal("010212000201" + NAPAS_VCB + TAIL), id="format-not-first"),
        pytest.param(seal("000201010213" + NAPAS_VCB + TAIL), id="initiation-13"),
        pytest.param(seal("000201" + NAPAS_VCB + TAIL), id="no-initiation"),
        pytest.param(seal(HEAD + NAPAS_VCB + "53037045802VN"), id="dynamic-without-amount"),
        pytest.param(seal(HEAD + NAPAS_VCB + "53037045409250000.005802VN"), id="decimal-amount"),
        pytest.param(seal(HEAD + NAPAS_VCB + "530370454010" + "5802VN"), id="zero-amount"),
        pytest.param(seal(HEAD + NAPAS_VCB.replace("QRIBFTTA", "QRPUSHXX") + TAIL), id="unknown-service"),
        pytest.param(seal(HEAD + NAPAS_VCB.replace("0006970436", "00069704AB") + TAIL), id="bin-not-digits"),
        pytest.param(seal(HEAD + NAPAS_VCB + TAIL + "5802VN"), id="duplicate-field"),
        pytest.param(
            seal(
                HEAD + tlv("38", tlv("00", "A000000727") + tlv("01", tlv("00", VCB)) + "0208QRIBFTTA") + TAIL
            ),
            id="no-account",
        ),
    ],
)
def test_missing_or_wrong_mandatory_fields_are_refused(text: str) -> None:
    assert code_of(text) == "qr_bad_layout"


def test_unknown_bank_is_refused_on_build_and_parse() -> None:
    with pytest.raises(VietQrError) as caught:
        build_payload(bank_bin="999999", account="123456")
    assert caught.value.code == "qr_unknown_bank"
    assert code_of(seal(HEAD + NAPAS_VCB.replace("970436", "999999") + TAIL)) == "qr_unknown_bank"


def test_static_code_with_an_amount_parses_as_static() -> None:
    parsed = parse_payload(seal("000201010211" + NAPAS_VCB + TAIL))
    assert (parsed.point_of_initiation, parsed.amount) == ("static", 250_000)


def test_other_templates_and_card_transfers_are_tolerated() -> None:
    other_scheme = tlv("26", tlv("00", "MOMO1234"))
    language = tlv("64", tlv("00", "VI") + tlv("01", "NGUYEN VAN A"))
    text = seal(HEAD + other_scheme + NAPAS_VCB.replace("QRIBFTTA", "QRIBFTTC") + TAIL + language)
    parsed = parse_payload(text)
    assert parsed.service_code == "QRIBFTTC"
    assert (parsed.bank_bin, parsed.account, parsed.amount) == (VCB, "0011001234567", 250_000)


@pytest.mark.parametrize(
    ("additional", "reference"),
    [("62090105BILL7", "BILL7"), ("62090505REF55", "REF55"), ("62180105BILL70805PURPO", "PURPO")],
)
def test_reference_is_read_from_purpose_then_reference_label_then_bill_number(
    additional: str, reference: str
) -> None:
    assert parse_payload(seal(HEAD + NAPAS_VCB + TAIL + additional)).reference == reference


@pytest.mark.parametrize("amount", [0, -1, -250_000, MAX_AMOUNT + 1, 10**13, True])
def test_invalid_amounts_are_refused(amount: int) -> None:
    with pytest.raises(VietQrError) as caught:
        build_payload(bank_bin=VCB, account="0011001234567", amount=amount)
    assert caught.value.code == "qr_bad_amount"


def test_largest_amount_fits_thirteen_digits() -> None:
    assert parse_payload(build_payload(bank_bin=VCB, account="1", amount=MAX_AMOUNT)).amount == 10**12


@pytest.mark.parametrize(
    "reference",
    ["A" * 26, "", "phí gửi xe", "INV-2024/01", " PADDED", "PADDED ", "TAB\tBED"],
)
def test_invalid_references_are_refused(reference: str) -> None:
    with pytest.raises(VietQrError) as caught:
        build_payload(bank_bin=VCB, account="0011001234567", reference=reference)
    assert caught.value.code == "qr_bad_reference"


def test_reference_of_25_characters_is_accepted() -> None:
    text = build_payload(bank_bin=VCB, account="0011001234567", reference="A" * 25)
    assert parse_payload(text).reference == "A" * 25


@pytest.mark.parametrize("account", ["", "1" * 20, "0011-0012", "00110012 34"])
def test_invalid_accounts_are_refused(account: str) -> None:
    with pytest.raises(VietQrError) as caught:
        build_payload(bank_bin=VCB, account=account)
    assert caught.value.code == "qr_bad_account"


@pytest.mark.parametrize(
    ("name", "city", "code"),
    [
        ("N" * 26, None, "qr_bad_merchant_name"),
        ("Chợ Đồng Xuân", None, "qr_bad_merchant_name"),
        (None, "THANH PHO HA NOI", "qr_bad_merchant_city"),
        (None, "", "qr_bad_merchant_city"),
    ],
)
def test_merchant_name_and_city_are_limited_to_emvco_sizes(
    name: str | None, city: str | None, code: str
) -> None:
    with pytest.raises(VietQrError) as caught:
        build_payload(bank_bin=VCB, account="0011001234567", merchant_name=name, merchant_city=city)
    assert caught.value.code == code


def test_error_exposes_code_and_detail() -> None:
    with pytest.raises(VietQrError) as caught:
        parse_payload(HAND_BUILT[:-4] + "0000")
    assert caught.value.code == "qr_bad_crc"
    assert "63" in caught.value.detail
    assert str(caught.value).startswith("qr_bad_crc: ")


def scan(png: bytes) -> str:
    """Decode the only QR code in a PNG with ZXing, as a payer's phone would."""
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    results = zxingcpp.read_barcodes(image)
    assert len(results) == 1
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode
    assert results[0].ec_level == "M"
    text: str = results[0].text
    return text


@pytest.mark.parametrize(
    ("amount", "reference"), [(250_000, "HANOIPAY 123"), (None, None), (MAX_AMOUNT, "X" * 25)]
)
def test_rendered_png_scans_back_to_the_same_payment(amount: int | None, reference: str | None) -> None:
    payload = build_payload(
        bank_bin=VCB, account="0011001234567", amount=amount, reference=reference, merchant_name="HANOIPAY"
    )
    png = render_png(
        payload,
        bank_short_name="Vietcombank",
        account_holder="Nguyễn Văn Đức",
        amount=amount,
        reference=reference,
    )
    scanned = scan(png)
    assert scanned == payload
    parsed = parse_payload(scanned)
    assert (parsed.bank_bin, parsed.account, parsed.amount, parsed.reference) == (
        VCB,
        "0011001234567",
        amount,
        reference,
    )
    assert parsed.merchant_name == "HANOIPAY"


def test_box_size_scales_the_image_and_it_still_scans() -> None:
    payload = build_payload(bank_bin="970418", account="12010000123456", amount=35_000, reference="BUS 32")
    small, large = (
        render_png(
            payload,
            bank_short_name="BIDV",
            account_holder="TRAN THI B",
            amount=35_000,
            reference="BUS 32",
            box_size=box_size,
        )
        for box_size in (4, 10)
    )
    assert Image.open(io.BytesIO(large)).width > Image.open(io.BytesIO(small)).width
    assert scan(small) == scan(large) == payload


def test_holder_name_is_folded_to_ascii_before_drawing() -> None:
    payload = build_payload(bank_bin=VCB, account="0011001234567")
    accented, folded = (
        render_png(payload, bank_short_name="VCB", account_holder=name, amount=None, reference=None)
        for name in ("Nguyễn Văn Đức", "Nguyen Van Duc")
    )
    assert accented == folded


def test_caption_that_disagrees_with_the_payload_is_refused() -> None:
    payload = build_payload(bank_bin=VCB, account="0011001234567", amount=250_000)
    with pytest.raises(ValueError, match="disagrees"):
        render_png(payload, bank_short_name="VCB", account_holder="A", amount=25_000, reference=None)


@pytest.mark.parametrize(
    ("amount", "text"),
    [(250_000, "250.000 VND"), (1_000, "1.000 VND"), (999, "999 VND"), (12_345_678, "12.345.678 VND")],
)
def test_amounts_are_written_with_dot_thousands(amount: int, text: str) -> None:
    assert format_vnd(amount) == text


def test_missing_amount_reads_any_amount() -> None:
    assert format_vnd(None) == "any amount"


def test_bank_list_has_unique_six_digit_bins_and_names() -> None:
    assert len(BANKS) >= 40
    assert all(len(bank.bin) == 6 and bank.bin.isdigit() for bank in BANKS)
    assert len({bank.bin for bank in BANKS}) == len(BANKS)
    assert len({bank.short_name.casefold() for bank in BANKS}) == len(BANKS)


@pytest.mark.parametrize(
    ("bin_", "short_name"),
    [("970436", "Vietcombank"), ("970415", "VietinBank"), ("970418", "BIDV"), ("970405", "Agribank")],
)
def test_bank_by_bin(bin_: str, short_name: str) -> None:
    bank = bank_by_bin(bin_)
    assert bank is not None
    assert bank.short_name == short_name


def test_unknown_bin_is_none() -> None:
    assert bank_by_bin("999999") is None
    assert bank_by_bin("97043") is None


@pytest.mark.parametrize(
    ("name", "bin_"),
    [
        ("vietcombank", "970436"),
        ("MBBANK", "970422"),
        ("Nam A Bank", "970428"),
        ("LienVietPostBank", "970449"),
    ],
)
def test_bank_by_short_name_ignores_case_and_spacing_and_knows_former_names(name: str, bin_: str) -> None:
    bank = bank_by_short_name(name)
    assert bank is not None
    assert bank.bin == bin_


def test_unknown_short_name_is_none() -> None:
    assert bank_by_short_name("Bank of Atlantis") is None


ACCOUNTS = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=19)
AMOUNTS = st.none() | st.integers(min_value=1, max_value=MAX_AMOUNT)
REFERENCES = st.none() | st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9 ]{0,23}[A-Za-z0-9])?", fullmatch=True)
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


@settings(database=None, max_examples=300)
@given(
    bank=st.sampled_from(BANKS),
    account=ACCOUNTS,
    amount=AMOUNTS,
    reference=REFERENCES,
    merchant_name=st.none() | st.text(alphabet=PRINTABLE, min_size=1, max_size=25),
    merchant_city=st.none() | st.text(alphabet=PRINTABLE, min_size=1, max_size=15),
)
def test_valid_inputs_round_trip(
    bank: Bank,
    account: str,
    amount: int | None,
    reference: str | None,
    merchant_name: str | None,
    merchant_city: str | None,
) -> None:
    text = build_payload(
        bank_bin=bank.bin,
        account=account,
        amount=amount,
        reference=reference,
        merchant_name=merchant_name,
        merchant_city=merchant_city,
    )
    assert parse_payload(text) == VietQrPayload(
        bank_bin=bank.bin,
        account=account,
        amount=amount,
        reference=reference,
        point_of_initiation="static" if amount is None else "dynamic",
        merchant_name=merchant_name,
        merchant_city=merchant_city,
    )


@settings(database=None, max_examples=300)
@given(
    account=ACCOUNTS,
    amount=AMOUNTS,
    reference=REFERENCES,
    position=st.integers(min_value=0),
    replacement=PRINTABLE,
)
def test_no_single_character_change_yields_a_different_payment(
    account: str, amount: int | None, reference: str | None, position: int, replacement: str
) -> None:
    text = build_payload(bank_bin=VCB, account=account, amount=amount, reference=reference)
    index = position % len(text)
    changed = text[:index] + replacement + text[index + 1 :]
    outcome: VietQrPayload | str
    try:
        outcome = parse_payload(changed)
    except VietQrError as error:
        outcome = error.code
    assert outcome == parse_payload(text) or outcome in {"qr_bad_crc", "qr_bad_length", "qr_bad_layout"}
