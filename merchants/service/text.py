"""Text as banks print it."""

import re
import unicodedata

# Đ/đ are letters of their own, not D/d with a combining mark, so NFKD would not fold them.
_STROKED_D = str.maketrans({"Đ": "D", "đ": "d"})


def bank_holder_name(name: str, *, limit: int = 50) -> str:
    """A name as Vietnamese banks print account holders: ASCII capitals and single spaces.

    "Nguyễn Thị Lan" becomes "NGUYEN THI LAN"; anything but letters, digits and spaces is dropped.
    """
    decomposed = unicodedata.normalize("NFKD", name.translate(_STROKED_D))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()
    return re.sub(r"\s+", " ", re.sub(r"[^A-Z0-9 ]", " ", plain)).strip()[:limit].strip()
