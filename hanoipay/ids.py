"""Opaque, prefixed, time-ordered ids: `pi_01JD3...` says what it names and sorts by creation time."""

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, as ULID


def new_id(prefix: str) -> str:
    """A new id: the prefix, 48 bits of milliseconds and 80 random bits, 26 base32 characters."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"
