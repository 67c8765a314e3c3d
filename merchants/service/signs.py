"""The printable stall sign, as PNG and as PDF (A6): the stall's static VietQR code, its name and code,
the market, "Quét mã để thanh toán", and the account holder's name exactly as the buyer's bank app shows
it, so a buyer can spot a fake sticker pasted over the vendor's code."""

import io
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from hanoipay.fonts import font_path
from merchants.models import Market, Stall
from merchants.service.markets import static_payload
from payments.providers.vietqr.banks import bank_by_bin
from payments.providers.vietqr.image import qr_code_image

SCAN_TO_PAY = "Quét mã để thanh toán"
HOLDER_LABEL = "Chủ tài khoản"
CODE_LABEL = "Mã sạp"
# A6 at 300 dots per inch.
PNG_SIZE = (1240, 1748)
_MARGIN = 80


@dataclass(frozen=True)
class SignText:
    """What a sign says, besides its code."""

    title: str
    stall: str
    code: str
    market: str
    holder: str
    bank: str


def sign_text(stall: Stall, market: Market) -> SignText:
    """The lines of a stall's sign, in the order they are printed."""
    found = bank_by_bin(stall.collection_bank_bin)
    bank = found.short_name if found else stall.collection_bank_bin
    return SignText(
        title=SCAN_TO_PAY,
        stall=stall.name,
        code=f"{CODE_LABEL}: {stall.code}",
        market=market.name,
        holder=stall.account_name,
        bank=f"{bank} · {stall.collection_account}",
    )


@lru_cache(maxsize=16)
def _font(size: int, bold: bool) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(bold=bold)), size)


def _fit(draw: ImageDraw.ImageDraw, text: str, size: int, bold: bool, width: int) -> ImageFont.FreeTypeFont:
    """The font at `size`, or smaller until `text` fits in `width` pixels."""
    while size > 20 and draw.textlength(text, font=_font(size, bold)) > width:
        size -= 4
    return _font(size, bold)


def render_sign_png(stall: Stall, market: Market) -> bytes:
    """The sign as an A6 PNG at 300 dpi."""
    text = sign_text(stall, market)
    width = PNG_SIZE[0]
    canvas = Image.new("L", PNG_SIZE, 255)
    draw = ImageDraw.Draw(canvas)
    inner = width - 2 * _MARGIN
    y = _MARGIN

    def line(value: str, size: int, bold: bool, gap: int) -> None:
        nonlocal y
        font = _fit(draw, value, size, bold, inner)
        draw.text(((width - draw.textlength(value, font=font)) / 2, y), value, fill=0, font=font)
        y += int(font.size * 1.25) + gap

    line(text.title, 84, True, 30)
    modules = qr_code_image(static_payload(stall), box_size=1)
    box = max(1, 860 // modules.width)
    qr = modules.resize((modules.width * box, modules.width * box), Image.Resampling.NEAREST)
    canvas.paste(qr, ((width - qr.width) // 2, y))
    y += qr.height + 30
    line(text.stall, 72, True, 10)
    line(text.code, 56, False, 10)
    line(text.market, 48, False, 40)
    draw.line((_MARGIN, y, width - _MARGIN, y), fill=0, width=4)
    y += 30
    line(HOLDER_LABEL, 40, False, 0)
    line(text.holder, 64, True, 10)
    line(text.bank, 40, False, 0)
    out = io.BytesIO()
    canvas.save(out, format="PNG", dpi=(300, 300))
    return out.getvalue()


def render_sign_pdf(stall: Stall, market: Market) -> bytes:
    """The sign as a one-page A6 PDF, text in DejaVu Sans so every Vietnamese mark prints."""
    from fpdf import FPDF  # here, not at the top: fpdf and fontTools add 0.4 s to a worker's start

    text = sign_text(stall, market)
    pdf = FPDF(orientation="P", unit="mm", format=(105, 148))  # A6
    pdf.set_margins(8, 8, 8)
    pdf.set_auto_page_break(False)
    pdf.add_font("DejaVu", "", str(font_path()))
    pdf.add_font("DejaVu", "B", str(font_path(bold=True)))
    pdf.set_title(f"{text.stall} ({stall.code})")
    pdf.add_page()
    full = pdf.epw

    def line(value: str, size: float, bold: bool, height: float) -> None:
        pdf.set_font("DejaVu", "B" if bold else "", size)
        while size > 6 and pdf.get_string_width(value) > full:
            size -= 0.5
            pdf.set_font("DejaVu", "B" if bold else "", size)
        pdf.cell(full, height, value, align="C", new_x="LMARGIN", new_y="NEXT")

    line(text.title, 17, True, 9)
    qr = qr_code_image(static_payload(stall), box_size=10)
    side = 70.0
    buffer = io.BytesIO()
    qr.save(buffer, format="PNG")
    pdf.image(buffer, x=(pdf.w - side) / 2, y=pdf.get_y() + 1, w=side, h=side)
    pdf.set_y(pdf.get_y() + side + 3)
    line(text.stall, 14, True, 7)
    line(text.code, 11, False, 6)
    line(text.market, 10, False, 6)
    pdf.line(8, pdf.get_y() + 1, pdf.w - 8, pdf.get_y() + 1)
    pdf.set_y(pdf.get_y() + 3)
    line(HOLDER_LABEL, 8, False, 5)
    line(text.holder, 13, True, 7)
    line(text.bank, 8, False, 5)
    return bytes(pdf.output())
