"""Issuer keys: from settings (`HANOIPAY_TRANSIT_ISSUER_KEYS`), or generated in the data directory when
running embedded, as the runtime does for JWT keys. Every key listed verifies; the active one signs."""

import contextlib
import json
import os
import threading
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hanoipay.settings import get_settings
from tickets.credentials import MAX_KID, b64url, load_private_key, public_key_bytes
from tickets.exceptions import IssuerKeysMissing

_local_lock = threading.Lock()


@dataclass(frozen=True)
class IssuerKeys:
    """The issuer's key pairs by key id, and which one signs new credentials."""

    keys: dict[str, Ed25519PrivateKey]
    active: str

    def public(self) -> dict[str, bytes]:
        """Key id → the 32 raw bytes of its public key, what validators sync."""
        return {kid: public_key_bytes(key.public_key()) for kid, key in self.keys.items()}


def issuer_keys() -> IssuerKeys:
    """The configured issuer keys (or the embedded local one); 503 issuer_keys_missing without any."""
    settings = get_settings()
    configured = settings.transit_issuer_keys
    if not configured:
        if not settings.embedded:
            raise IssuerKeysMissing("Set HANOIPAY_TRANSIT_ISSUER_KEYS (key id → base64url Ed25519 seed).")
        configured = _local_keys()
    return _load(tuple(sorted(configured.items())), settings.transit_issuer_active_kid)


@lru_cache(maxsize=8)
def _load(configured: tuple[tuple[str, str], ...], active: str | None) -> IssuerKeys:
    keys = {}
    for kid, encoded in configured:
        if not 1 <= len(kid.encode()) <= MAX_KID or not kid.isascii():
            raise IssuerKeysMissing(f"Issuer key id {kid!r} must be 1 to {MAX_KID} ASCII characters.")
        try:
            keys[kid] = load_private_key(encoded)
        except ValueError:
            raise IssuerKeysMissing(f"Issuer key {kid!r} is not a base64url Ed25519 seed.") from None
    chosen = active or configured[-1][0]
    if chosen not in keys:
        raise IssuerKeysMissing(f"HANOIPAY_TRANSIT_ISSUER_ACTIVE_KID names no configured key: {chosen!r}.")
    return IssuerKeys(keys, chosen)


def _local_keys() -> dict[str, str]:
    data_dir = get_settings().data_dir.resolve()
    path = data_dir / "transit_issuer_keys.json"
    with _local_lock:
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            seed = Ed25519PrivateKey.generate().private_bytes_raw()
            draft = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
            draft.write_text(json.dumps({"local-1": b64url(seed)}))
            draft.chmod(0o600)
            # A hard link appears whole or not at all, and only once: another process that got there first
            # keeps its key, and this one reads it.
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
            draft.unlink()
        keys: dict[str, str] = json.loads(path.read_text())
    return keys


def new_issuer_key() -> str:
    """A fresh issuer key seed in the form settings take (for operators rotating keys)."""
    return b64url(Ed25519PrivateKey.generate().private_bytes_raw())
