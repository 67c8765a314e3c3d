"""The validator: decides, offline, whether a dynamic QR code opens the gate, with a reason code.

A validator on a bus or at a metro gate holds what it last synced: the issuer public keys
(`GET /v1/transit/keys`) and the deny list (`GET /v1/transit/deny_list`). `Validator.check` never
raises: every payload, however broken, gets a `Decision` whose `reason` is `accepted` or one stable
rejection code. The online API runs the same class. Credentials are verified once and cached, so a
decision costs one Ed25519 verification (the device's signature over the slot).
"""

import itertools
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tickets.credentials import (
    CodeError,
    Credential,
    load_public_key,
    parse_code,
    parse_credential,
    verify_device_signature,
    verify_issuer_signature,
)


class Reason(StrEnum):
    """Why a code was accepted or rejected; stable once published (docs/tickets.md)."""

    ACCEPTED = "accepted"
    MALFORMED = "malformed"
    TRUNCATED = "truncated"
    OVERSIZED = "oversized"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_KEY = "unknown_key"
    BAD_CREDENTIAL_SIGNATURE = "bad_credential_signature"
    CREDENTIAL_NOT_YET_VALID = "credential_not_yet_valid"
    CREDENTIAL_EXPIRED = "credential_expired"
    BAD_SIGNATURE = "bad_signature"
    CODE_EXPIRED = "code_expired"
    CODE_FROM_FUTURE = "code_from_future"
    CARD_REVOKED = "card_revoked"
    CARD_IN_DEBT = "card_in_debt"
    DEVICE_REVOKED = "device_revoked"
    ALREADY_SCANNED = "already_scanned"


@dataclass(frozen=True)
class Decision:
    """A validator's answer for one code: accepted or not, why, and whom it named (when readable)."""

    reason: Reason
    card_id: str | None = None
    device_key: bytes | None = None
    category: int | None = None
    slot: int | None = None
    counter: int | None = None

    @property
    def accepted(self) -> bool:
        """True when the gate opens."""
        return self.reason is Reason.ACCEPTED


@dataclass
class DenyList:
    """Cards and device keys a validator must refuse, with the version the server gave it."""

    cards: dict[str, Reason] = field(default_factory=dict)
    devices: set[bytes] = field(default_factory=set)
    version: int = 0


@dataclass(frozen=True)
class _Checked:
    credential: Credential
    device_key: Ed25519PublicKey


class Validator:
    """One validator's offline state: keys, deny list, replay cache and a cache of checked credentials."""

    def __init__(
        self,
        issuer_keys: dict[str, bytes],
        deny_list: DenyList | None = None,
        *,
        skew_seconds: int = 20,
        rescan_seconds: int = 300,  # 0: no replay cache (the online check keeps its own in Redis)
        credential_cache: int = 50_000,
        replay_cache: int = 200_000,
    ) -> None:
        self.keys: dict[str, Ed25519PublicKey] = {}
        self.deny_list = deny_list or DenyList()
        self.skew = skew_seconds
        self.rescan = rescan_seconds
        self._cache_size = credential_cache
        self._replay_size = replay_cache
        self._credentials: OrderedDict[bytes, _Checked] = OrderedDict()
        self._last_seen: dict[str, float] = {}
        self.sync_keys(issuer_keys)

    def sync_keys(self, issuer_keys: dict[str, bytes]) -> None:
        """Replace the issuer public keys (key id → 32 raw bytes) with a fresh sync."""
        self.keys = {kid: load_public_key(raw) for kid, raw in issuer_keys.items()}
        self._credentials.clear()

    def sync_deny_list(self, deny_list: DenyList) -> None:
        """Replace the deny list with a fresh sync."""
        self.deny_list = deny_list

    def check(self, payload: bytes, now: float, *, vehicle_id: str = "") -> Decision:
        """Decide on one scanned payload at unix time `now`; never raises."""
        try:
            code = parse_code(payload)
            checked = self._credential(code.credential)
        except CodeError as error:
            return Decision(Reason(error.reason))
        credential = checked.credential
        accepted = Decision(
            Reason.ACCEPTED,
            card_id=credential.card_id,
            device_key=credential.device_key,
            category=credential.category,
            slot=code.slot,
            counter=code.counter,
        )
        if now < credential.valid_from - self.skew:
            return replace(accepted, reason=Reason.CREDENTIAL_NOT_YET_VALID)
        if now > credential.valid_until + self.skew:
            return replace(accepted, reason=Reason.CREDENTIAL_EXPIRED)
        if not verify_device_signature(code, checked.device_key):
            return replace(accepted, reason=Reason.BAD_SIGNATURE)
        slot_start = code.slot * credential.slot_seconds
        if now > slot_start + credential.slot_seconds + self.skew:
            return replace(accepted, reason=Reason.CODE_EXPIRED)
        if now < slot_start - self.skew:
            return replace(accepted, reason=Reason.CODE_FROM_FUTURE)
        if credential.device_key in self.deny_list.devices:
            return replace(accepted, reason=Reason.DEVICE_REVOKED)
        denied = self.deny_list.cards.get(credential.card_id)
        if denied is not None:
            return replace(accepted, reason=denied)
        if self.rescan:
            key = f"{vehicle_id}|{credential.card_id}"
            last = self._last_seen.get(key)
            if last is not None and abs(now - last) < self.rescan:
                return replace(accepted, reason=Reason.ALREADY_SCANNED)
            self._remember(key, now)
        return accepted

    def _credential(self, raw: bytes) -> _Checked:
        cached = self._credentials.get(raw)
        if cached is not None:
            return cached
        credential, body, signature = parse_credential(raw)
        issuer = self.keys.get(credential.kid)
        if issuer is None:
            raise CodeError("unknown_key", f"No issuer key {credential.kid!r} is known here.")
        if not verify_issuer_signature(body, signature, issuer):
            raise CodeError("bad_credential_signature", "The issuer did not sign this credential.")
        try:
            device_key = load_public_key(credential.device_key)
        except ValueError:
            raise CodeError("malformed", "The credential's device key is not an Ed25519 key.") from None
        checked = _Checked(credential, device_key)
        self._credentials[raw] = checked
        if len(self._credentials) > self._cache_size:
            self._credentials.popitem(last=False)
        return checked

    def _remember(self, key: str, now: float) -> None:
        self._last_seen.pop(key, None)
        self._last_seen[key] = now
        if len(self._last_seen) > self._replay_size:
            # Oldest first (insertion order): drop the expired, and at least a tenth, so pruning stays rare.
            cutoff = now - self.rescan
            drop = max(self._replay_size // 10, sum(1 for t in self._last_seen.values() if t < cutoff))
            for stale in list(itertools.islice(self._last_seen, drop)):
                del self._last_seen[stale]
