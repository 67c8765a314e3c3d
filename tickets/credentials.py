"""Signed rider credentials and the dynamic QR code that carries them, in a compact binary form.

Apart from the VietQR code in `payments/`: this is the transit ticket. The platform's issuer key signs
a credential (key id, card id, device public key, rider category, slot length, validity); the rider's
device signs, for each time slot, the credential with the slot number and a counter. A validator checks
both signatures with the published issuer public keys and needs no secret. The byte layout is in
docs/transit-qr.md; every offset below is documented there.
"""

import base64
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

CREDENTIAL_VERSION = 1
CODE_VERSION = 1
CREDENTIAL_CONTEXT = b"HPT-CRED"
CODE_CONTEXT = b"HPT-CODE"
MAX_KID = 8
SIGNATURE = 64
PUBLIC_KEY = 32
# version, kid length, card id (16), device key (32), category, slot seconds, valid from, valid until
_FIXED_AFTER_KID = struct.Struct(">16s32sBBII")
_CODE_TAIL = struct.Struct(">II")  # slot, counter
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUES = {c: i for i, c in enumerate(_ALPHABET)}
CARD_PREFIX = "card_"
MAX_CODE = 1 + 2 + MAX_KID + _FIXED_AFTER_KID.size + SIGNATURE + _CODE_TAIL.size + SIGNATURE


class CodeError(ValueError):
    """A code or credential that cannot be read: `reason` is the validator's stable rejection code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def card_id_to_bytes(card_id: str) -> bytes:
    """The 128-bit value behind a `card_…` id (26 Crockford base32 characters), as 16 bytes."""
    body = card_id.removeprefix(CARD_PREFIX)
    if len(body) != 26 or not card_id.startswith(CARD_PREFIX) or any(c not in _VALUES for c in body):
        raise ValueError(f"{card_id!r} is not a card id")
    value = 0
    for char in body:
        value = value << 5 | _VALUES[char]
    return value.to_bytes(16, "big")


def card_id_from_bytes(raw: bytes) -> str:
    """The `card_…` id of 16 bytes read from a credential."""
    value = int.from_bytes(raw, "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return CARD_PREFIX + "".join(reversed(chars))


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def b64url(raw: bytes) -> str:
    """Unpadded base64url, how keys and codes travel in JSON."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    """Bytes from (padded or unpadded) base64url; ValueError if it is not."""
    cleaned = text.strip()
    if not cleaned or any(
        c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=" for c in cleaned
    ):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))


@dataclass(frozen=True)
class Credential:
    """What the issuer vouches for: this device key may show this card, in this category, for a while."""

    kid: str
    card_id: str
    device_key: bytes
    category: int
    slot_seconds: int
    valid_from: int
    valid_until: int

    def body(self) -> bytes:
        """The signed part of the credential."""
        kid = self.kid.encode("ascii")
        if not 1 <= len(kid) <= MAX_KID:
            raise ValueError(f"issuer key ids are 1 to {MAX_KID} ASCII characters")
        fixed = _FIXED_AFTER_KID.pack(
            card_id_to_bytes(self.card_id),
            self.device_key,
            self.category,
            self.slot_seconds,
            self.valid_from,
            self.valid_until,
        )
        return bytes([CREDENTIAL_VERSION, len(kid)]) + kid + fixed


def sign_credential(credential: Credential, issuer_key: Ed25519PrivateKey) -> bytes:
    """The credential's bytes followed by the issuer's signature over them."""
    body = credential.body()
    return body + issuer_key.sign(CREDENTIAL_CONTEXT + body)


def parse_credential(raw: bytes) -> tuple[Credential, bytes, bytes]:
    """The credential in `raw`, its signed body and its signature (no signature is checked here)."""
    if len(raw) < 2:
        raise CodeError("truncated", "The credential is cut short.")
    if raw[0] != CREDENTIAL_VERSION:
        raise CodeError("unsupported_version", f"Credential version {raw[0]} is not supported.")
    kid_len = raw[1]
    if not 1 <= kid_len <= MAX_KID:
        raise CodeError("malformed", "The credential's key id length is out of range.")
    end = 2 + kid_len + _FIXED_AFTER_KID.size
    if len(raw) < end + SIGNATURE:
        raise CodeError("truncated", "The credential is cut short.")
    if len(raw) > end + SIGNATURE:
        raise CodeError("oversized", "The credential is longer than its layout.")
    try:
        kid = raw[2 : 2 + kid_len].decode("ascii")
    except UnicodeDecodeError:
        raise CodeError("malformed", "The credential's key id is not ASCII.") from None
    card, device, category, slot_seconds, valid_from, valid_until = _FIXED_AFTER_KID.unpack(
        raw[2 + kid_len : end]
    )
    if slot_seconds == 0 or valid_until <= valid_from:
        raise CodeError("malformed", "The credential's slot length or validity is impossible.")
    credential = Credential(
        kid, card_id_from_bytes(card), device, category, slot_seconds, valid_from, valid_until
    )
    return credential, raw[:end], raw[end:]


def credential_length(raw: bytes, offset: int) -> int:
    """How many bytes the credential starting at `offset` takes (read from its key id length)."""
    if len(raw) < offset + 2:
        raise CodeError("truncated", "The code is cut short.")
    kid_len = raw[offset + 1]
    if not 1 <= kid_len <= MAX_KID:
        raise CodeError("malformed", "The credential's key id length is out of range.")
    return 2 + kid_len + _FIXED_AFTER_KID.size + SIGNATURE


def verify_issuer_signature(body: bytes, signature: bytes, issuer_key: Ed25519PublicKey) -> bool:
    """True when the issuer signed this credential body."""
    try:
        issuer_key.verify(signature, CREDENTIAL_CONTEXT + body)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class Code:
    """One dynamic QR code as read: the credential bytes, the slot, the counter and the device signature."""

    credential: bytes
    slot: int
    counter: int
    signed: bytes
    signature: bytes


def make_code(credential: bytes, slot: int, counter: int, device_key: Ed25519PrivateKey) -> bytes:
    """The QR payload for one slot: the credential, the slot and counter, signed with the device key."""
    signed = bytes([CODE_VERSION]) + credential + _CODE_TAIL.pack(slot, counter)
    return signed + device_key.sign(CODE_CONTEXT + signed)


def parse_code(raw: bytes) -> Code:
    """Split a QR payload into its parts, or CodeError with the reason it cannot be read."""
    if not raw:
        raise CodeError("malformed", "The code is empty.")
    if raw[0] != CODE_VERSION:
        if raw[0] > CODE_VERSION and raw[0] < 0x10:
            raise CodeError("unsupported_version", f"Code version {raw[0]} is not supported.")
        raise CodeError("malformed", "This is not a HanoiPay transit code.")
    if len(raw) > MAX_CODE:
        raise CodeError("oversized", f"The code is {len(raw)} bytes; a code is at most {MAX_CODE}.")
    cred_len = credential_length(raw, 1)
    end = 1 + cred_len + _CODE_TAIL.size
    if len(raw) < end + SIGNATURE:
        raise CodeError("truncated", "The code is cut short.")
    if len(raw) > end + SIGNATURE:
        raise CodeError("oversized", "The code is longer than its layout.")
    slot, counter = _CODE_TAIL.unpack(raw[1 + cred_len : end])
    return Code(raw[1 : 1 + cred_len], slot, counter, raw[:end], raw[end:])


def verify_device_signature(code: Code, device_key: Ed25519PublicKey) -> bool:
    """True when the device key in the credential signed this slot and counter."""
    try:
        device_key.verify(code.signature, CODE_CONTEXT + code.signed)
    except InvalidSignature:
        return False
    return True


def load_private_key(encoded: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from its 32 raw bytes in base64url (how settings hold issuer keys)."""
    raw = from_b64url(encoded)
    if len(raw) != 32:
        raise ValueError("an Ed25519 private key is 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_public_key(raw: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from its 32 raw bytes; ValueError if they are not one."""
    if len(raw) != PUBLIC_KEY:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)
