"""The rider's side, as a reference for phone apps: a device key, its credential, one code per time slot.

A phone app in any language does the same (docs/transit-qr.md): keep an Ed25519 key that never leaves
the device, hold the credential the platform issued for it, and for the current slot sign the
credential with the slot number and a counter that only grows. This module is used by the tests, the
demo and the benchmark, and shows the QR as a PNG.
"""

import io
import time
from dataclasses import dataclass, field

import qrcode
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from qrcode.constants import ERROR_CORRECT_M

from tickets.credentials import make_code, parse_credential, public_key_bytes

MAX_QR_VERSION = 10


@dataclass
class RiderDevice:
    """A rider's phone: its private key, the credential issued for it, and its code counter."""

    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    credential: bytes = b""
    counter: int = 0

    @property
    def public_key(self) -> bytes:
        """The 32 raw bytes of the device's public key, sent when the device is registered."""
        return public_key_bytes(self.key.public_key())

    def code(self, now: float | None = None) -> bytes:
        """The QR payload for the slot that contains `now` (unix seconds); each call counts up."""
        if not self.credential:
            raise RuntimeError("the device has no credential yet; register it first")
        slot_seconds = parse_credential(self.credential)[0].slot_seconds
        self.counter += 1
        moment = time.time() if now is None else now
        return make_code(self.credential, int(moment // slot_seconds), self.counter, self.key)


def qr_matrix(payload: bytes) -> qrcode.QRCode:
    """The QR symbol for a payload: byte mode, error correction M, the smallest version that fits."""
    symbol = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=6, border=4)
    symbol.add_data(payload, optimize=0)
    symbol.make(fit=True)
    if symbol.version > MAX_QR_VERSION:
        raise ValueError(f"a {len(payload)}-byte code needs QR version {symbol.version}")
    return symbol


def qr_png(payload: bytes, *, box_size: int = 6) -> bytes:
    """A PNG of the QR code for a payload, as a validator's camera should see it."""
    symbol = qr_matrix(payload)
    symbol.box_size = box_size
    image = symbol.make_image(fill_color="black", back_color="white")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
