"""Banks reachable through NAPAS 247 / VietQR: 6-digit acquirer BIN, short name and legal name."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bank:
    """One VietQR participant; `bin` is the acquirer id carried in field 38.01.00 of the QR."""

    bin: str
    short_name: str
    name: str


BANKS: tuple[Bank, ...] = (
    Bank("970436", "Vietcombank", "Ngân hàng TMCP Ngoại Thương Việt Nam"),
    Bank("970415", "VietinBank", "Ngân hàng TMCP Công thương Việt Nam"),
    Bank("970418", "BIDV", "Ngân hàng TMCP Đầu tư và Phát triển Việt Nam"),
    Bank("970405", "Agribank", "Ngân hàng Nông nghiệp và Phát triển Nông thôn Việt Nam"),
    Bank("970407", "Techcombank", "Ngân hàng TMCP Kỹ thương Việt Nam"),
    Bank("970422", "MBBank", "Ngân hàng TMCP Quân đội"),
    Bank("970416", "ACB", "Ngân hàng TMCP Á Châu"),
    Bank("970432", "VPBank", "Ngân hàng TMCP Việt Nam Thịnh Vượng"),
    Bank("970423", "TPBank", "Ngân hàng TMCP Tiên Phong"),
    Bank("970403", "Sacombank", "Ngân hàng TMCP Sài Gòn Thương Tín"),
    Bank("970437", "HDBank", "Ngân hàng TMCP Phát triển Thành phố Hồ Chí Minh"),
    Bank("970441", "VIB", "Ngân hàng TMCP Quốc tế Việt Nam"),
    Bank("970443", "SHB", "Ngân hàng TMCP Sài Gòn - Hà Nội"),
    Bank("970431", "Eximbank", "Ngân hàng TMCP Xuất Nhập khẩu Việt Nam"),
    Bank("970426", "MSB", "Ngân hàng TMCP Hàng Hải Việt Nam"),
    Bank("970440", "SeABank", "Ngân hàng TMCP Đông Nam Á"),
    Bank("970448", "OCB", "Ngân hàng TMCP Phương Đông"),
    Bank("970449", "LPBank", "Ngân hàng TMCP Lộc Phát Việt Nam"),
    Bank("970428", "NamABank", "Ngân hàng TMCP Nam Á"),
    Bank("970409", "BacABank", "Ngân hàng TMCP Bắc Á"),
    Bank("970425", "ABBANK", "Ngân hàng TMCP An Bình"),
    Bank("970427", "VietABank", "Ngân hàng TMCP Việt Á"),
    Bank("970412", "PVcomBank", "Ngân hàng TMCP Đại Chúng Việt Nam"),
    Bank("970438", "BaoVietBank", "Ngân hàng TMCP Bảo Việt"),
    Bank("970452", "KienLongBank", "Ngân hàng TMCP Kiên Long"),
    Bank("970429", "SCB", "Ngân hàng TMCP Sài Gòn"),
    Bank("970419", "NCB", "Ngân hàng TMCP Quốc Dân"),
    Bank("970400", "SaigonBank", "Ngân hàng TMCP Sài Gòn Công Thương"),
    Bank("970430", "PGBank", "Ngân hàng TMCP Thịnh vượng và Phát triển"),
    Bank("970433", "VietBank", "Ngân hàng TMCP Việt Nam Thương Tín"),
    Bank("970454", "BVBank", "Ngân hàng TMCP Bản Việt"),
    Bank("970408", "GPBank", "Ngân hàng Thương mại TNHH MTV Dầu Khí Toàn Cầu"),
    Bank("970414", "MBV", "Ngân hàng TNHH MTV Việt Nam Hiện Đại"),
    Bank("970444", "VCBNeo", "Ngân hàng TNHH MTV Ngoại thương Công nghệ số"),
    Bank("970406", "Vikki", "Ngân hàng TNHH MTV Số Vikki"),
    Bank("970446", "COOPBANK", "Ngân hàng Hợp tác xã Việt Nam"),
    Bank("999888", "VBSP", "Ngân hàng Chính sách Xã hội"),
    Bank("970421", "VRB", "Ngân hàng Liên doanh Việt - Nga"),
    Bank("970434", "IndovinaBank", "Ngân hàng TNHH Indovina"),
    Bank("970457", "Woori", "Ngân hàng TNHH MTV Woori Việt Nam"),
    Bank("970424", "ShinhanBank", "Ngân hàng TNHH MTV Shinhan Việt Nam"),
    Bank("970439", "PublicBank", "Ngân hàng TNHH MTV Public Việt Nam"),
    Bank("970442", "HongLeong", "Ngân hàng TNHH MTV Hong Leong Việt Nam"),
    Bank("970410", "StandardChartered", "Ngân hàng TNHH MTV Standard Chartered Bank Việt Nam"),
    Bank("458761", "HSBC", "Ngân hàng TNHH MTV HSBC (Việt Nam)"),
    Bank("422589", "CIMB", "Ngân hàng TNHH MTV CIMB Việt Nam"),
    Bank("970458", "UOB", "Ngân hàng United Overseas - Chi nhánh TP. Hồ Chí Minh"),
    Bank("668888", "KBank", "Ngân hàng Đại chúng TNHH Kasikornbank"),
    Bank("796500", "DBSBank", "DBS Bank Ltd - Chi nhánh Thành phố Hồ Chí Minh"),
    Bank("533948", "Citibank", "Ngân hàng Citibank, N.A. - Chi nhánh Hà Nội"),
    Bank("801011", "Nonghyup", "Ngân hàng Nonghyup - Chi nhánh Hà Nội"),
    Bank("970455", "IBKHN", "Ngân hàng Công nghiệp Hàn Quốc - Chi nhánh Hà Nội"),
    Bank("970456", "IBKHCM", "Ngân hàng Công nghiệp Hàn Quốc - Chi nhánh TP. Hồ Chí Minh"),
    Bank("970462", "KookminHN", "Ngân hàng Kookmin - Chi nhánh Hà Nội"),
    Bank("970463", "KookminHCM", "Ngân hàng Kookmin - Chi nhánh TP. Hồ Chí Minh"),
    Bank("970467", "KEBHanaHN", "Ngân hàng KEB Hana - Chi nhánh Hà Nội"),
    Bank("970466", "KEBHanaHCM", "Ngân hàng KEB Hana - Chi nhánh TP. Hồ Chí Minh"),
    Bank("546034", "CAKE", "Ngân hàng số CAKE by VPBank"),
    Bank("546035", "Ubank", "Ngân hàng số Ubank by VPBank"),
    Bank("963388", "Timo", "Ngân hàng số Timo by Ban Viet Bank"),
)

# Former names (still on cards, in apps and in merchants' records) and VietQR's own spellings.
_ALIASES: dict[str, str] = {
    "lienvietpostbank": "970449",
    "vietcapitalbank": "970454",
    "oceanbank": "970414",
    "cbbank": "970444",
    "dongabank": "970406",
    "unitedoverseas": "970458",
}


def _key(name: str) -> str:
    # "Nam A Bank", "NamABank" and "nam-a-bank" are the same bank to a user typing it.
    return "".join(ch for ch in name.casefold() if ch.isalnum())


_BY_BIN: dict[str, Bank] = {bank.bin: bank for bank in BANKS}
_BY_NAME: dict[str, Bank] = {
    **{alias: _BY_BIN[bin_] for alias, bin_ in _ALIASES.items()},
    **{_key(bank.short_name): bank for bank in BANKS},
}


def bank_by_bin(bin: str) -> Bank | None:
    """The bank with this 6-digit NAPAS BIN, or None."""
    return _BY_BIN.get(bin)


def bank_by_short_name(name: str) -> Bank | None:
    """The bank with this short name or alias, ignoring case, spaces and punctuation; or None."""
    return _BY_NAME.get(_key(name))
