"""Dynamic QR codes: the compact format fits a version-10 QR at level M, and every bad code has its reason.

Each bad input of the issue is checked twice: by the offline validator library and by the online API,
which must give the same reason code, never an exception or a 500.
"""

import base64
import io
import time
from datetime import UTC, datetime

import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from hanoipay.ids import new_id
from tests.factories import auth, make_user
from tests.tickets.conftest import make_gate, make_rider
from tickets.credentials import Credential, b64url, public_key_bytes, sign_credential
from tickets.rider import RiderDevice, qr_matrix, qr_png
from tickets.validator import DenyList, Reason, Validator

ISSUER = Ed25519PrivateKey.generate()
KEYS = {"k1": public_key_bytes(ISSUER.public_key())}
NOW = 1_795_000_000.0


def rider(
    valid_from: float = NOW - 3600,
    valid_until: float = NOW + 86_400,
    kid: str = "k1",
    issuer: Ed25519PrivateKey = ISSUER,
) -> RiderDevice:
    device = RiderDevice()
    credential = Credential(kid, new_id("card"), device.public_key, 0, 10, int(valid_from), int(valid_until))
    device.credential = sign_credential(credential, issuer)
    return device


class TestFormat:
    def test_a_code_is_at_most_205_bytes_and_fits_qr_version_10_at_level_m(self):
        device = rider(kid="k" * 8)
        code = device.code(NOW)
        assert len(code) == 205
        assert qr_matrix(code).version <= 10

    def test_the_png_decodes_back_to_the_same_bytes(self):
        code = rider().code(NOW)
        decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr_png(code))))
        assert [r.bytes for r in decoded] == [code]
        assert Validator(KEYS).check(bytes(decoded[0].bytes), NOW).accepted

    def test_each_slot_has_its_own_code_and_the_counter_grows(self):
        device = rider()
        first, second = device.code(NOW), device.code(NOW + 10)
        assert first != second
        v = Validator(KEYS)
        assert v.check(first, NOW).slot + 1 == v.check(second, NOW + 10, vehicle_id="other").slot


def flipped(code: bytes, index: int) -> bytes:
    return code[:index] + bytes([code[index] ^ 0x01]) + code[index + 1 :]


def bad_codes() -> list[tuple[str, bytes, float, Reason]]:
    good = rider()
    code = good.code(NOW)
    other_issuer = Ed25519PrivateKey.generate()
    unknown_key = rider(kid="k9")
    expired = rider(valid_from=NOW - 90_000, valid_until=NOW - 3600)
    forged = rider(issuer=other_issuer)
    wrong_device = RiderDevice(credential=good.credential)
    return [
        ("a byte of the device signature changed", flipped(code, len(code) - 1), NOW, Reason.BAD_SIGNATURE),
        ("a byte of the slot changed", flipped(code, len(code) - 70), NOW, Reason.BAD_SIGNATURE),
        ("a byte of the card id changed", flipped(code, 6), NOW, Reason.BAD_CREDENTIAL_SIGNATURE),
        ("the key id changed", flipped(code, 3), NOW, Reason.UNKNOWN_KEY),
        ("a later format version", b"\x02" + code[1:], NOW, Reason.UNSUPPORTED_VERSION),
        ("the first byte changed", flipped(code, 0), NOW, Reason.MALFORMED),
        ("truncated", code[:-10], NOW, Reason.TRUNCATED),
        ("cut in the credential", code[:40], NOW, Reason.TRUNCATED),
        ("oversized", code + b"\x00" * 4, NOW, Reason.OVERSIZED),
        ("far too long", code * 3, NOW, Reason.OVERSIZED),
        ("garbage text", b"hello, validator", NOW, Reason.MALFORMED),
        ("empty", b"", NOW, Reason.MALFORMED),
        ("an expired credential", expired.code(NOW), NOW, Reason.CREDENTIAL_EXPIRED),
        (
            "a credential not yet valid",
            rider(valid_from=NOW + 3600).code(NOW),
            NOW,
            Reason.CREDENTIAL_NOT_YET_VALID,
        ),
        ("an unknown key id", unknown_key.code(NOW), NOW, Reason.UNKNOWN_KEY),
        ("a credential signed by another issuer", forged.code(NOW), NOW, Reason.BAD_CREDENTIAL_SIGNATURE),
        (
            "signed by a device the credential does not name",
            wrong_device.code(NOW),
            NOW,
            Reason.BAD_SIGNATURE,
        ),
        ("a screenshot shown after its slot", good.code(NOW - 60), NOW, Reason.CODE_EXPIRED),
        ("a timestamp in the future beyond the skew", good.code(NOW + 60), NOW, Reason.CODE_FROM_FUTURE),
    ]


class TestOfflineValidator:
    @pytest.mark.parametrize(
        ("label", "payload", "at", "reason"), bad_codes(), ids=lambda v: v if isinstance(v, str) else ""
    )
    def test_every_bad_code_has_its_own_reason(self, label, payload, at, reason):
        decision = Validator(KEYS).check(payload, at, vehicle_id="bus-1")
        assert decision.reason == reason, label
        assert not decision.accepted

    def test_every_single_byte_change_is_rejected_without_an_exception(self):
        code = rider().code(NOW)
        v = Validator(KEYS)
        reasons = {v.check(flipped(code, i), NOW, vehicle_id=f"bus-{i}").reason for i in range(len(code))}
        assert Reason.ACCEPTED not in reasons

    def test_within_the_skew_a_code_is_still_good(self):
        device = rider()
        assert Validator(KEYS).check(device.code(NOW - 25), NOW).accepted  # slot ended 15 s ago, skew 20 s
        assert Validator(KEYS).check(device.code(NOW + 15), NOW).accepted

    def test_replays_on_the_same_vehicle_are_already_scanned_but_not_on_another(self):
        device = rider()
        v = Validator(KEYS)
        code = device.code(NOW)
        assert v.check(code, NOW, vehicle_id="bus-1").accepted
        assert v.check(code, NOW + 1, vehicle_id="bus-1").reason == Reason.ALREADY_SCANNED
        assert v.check(device.code(NOW + 2), NOW + 2, vehicle_id="bus-1").reason == Reason.ALREADY_SCANNED
        assert v.check(code, NOW + 3, vehicle_id="bus-2").accepted

    def test_the_replay_cache_forgets_the_oldest_when_full_and_stays_correct_for_the_rest(self):
        v = Validator(KEYS, replay_cache=20)
        riders = [rider() for _ in range(30)]
        for i, device in enumerate(riders):
            assert v.check(device.code(NOW + i), NOW + i, vehicle_id="bus-1").accepted
        assert len(v._last_seen) <= 20
        assert (
            v.check(riders[-1].code(NOW + 31), NOW + 31, vehicle_id="bus-1").reason == Reason.ALREADY_SCANNED
        )
        assert v.check(
            riders[0].code(NOW + 31), NOW + 31, vehicle_id="bus-1"
        ).accepted  # forgotten: let through

    def test_the_deny_list_refuses_revoked_devices_cards_and_debtors(self):
        device = rider()
        card = Validator(KEYS).check(device.code(NOW), NOW).card_id
        assert card is not None
        for deny, reason in (
            (DenyList(devices={device.public_key}), Reason.DEVICE_REVOKED),
            (DenyList(cards={card: Reason.CARD_REVOKED}), Reason.CARD_REVOKED),
            (DenyList(cards={card: Reason.CARD_IN_DEBT}), Reason.CARD_IN_DEBT),
        ):
            assert Validator(KEYS, deny).check(device.code(NOW), NOW).reason == reason

    def test_key_rotation_keeps_old_credentials_valid_until_their_end(self):
        old, new = ISSUER, Ed25519PrivateKey.generate()
        before = rider(issuer=old, kid="k1")
        after = rider(issuer=new, kid="k2")
        both = Validator({"k1": public_key_bytes(old.public_key()), "k2": public_key_bytes(new.public_key())})
        assert both.check(before.code(NOW), NOW, vehicle_id="a").accepted
        assert both.check(after.code(NOW), NOW, vehicle_id="a").accepted
        assert both.check(before.code(NOW + 86_400 + 100), NOW + 86_400 + 100, vehicle_id="b").reason == (
            Reason.CREDENTIAL_EXPIRED
        )
        only_new = Validator({"k2": public_key_bytes(new.public_key())})
        assert only_new.check(before.code(NOW), NOW).reason == Reason.UNKNOWN_KEY


class TestOnlineCheck:
    def test_the_api_gives_the_same_reasons(self, api, operator):
        gate = make_gate(api)
        r = make_rider(api)
        now = time.time()
        good = r.device.code(now)
        signature_changed = flipped(good, len(good) - 1)
        cases = [
            (b64url(signature_changed), "bad_signature"),
            (b64url(good[:-10]), "truncated"),
            (b64url(good + b"\x00"), "oversized"),
            ("not*base64!", "malformed"),
            (b64url(b"garbage text"), "malformed"),
            (b64url(r.device.code(now - 120)), "code_expired"),
            (b64url(r.device.code(now + 120)), "code_from_future"),
            (b64url(rider(kid="k9").code(now)), "unknown_key"),
            (b64url(rider().code(now)), "bad_credential_signature"),
        ]
        for payload, reason in cases:
            answer = api.post(
                "/v1/transit/validate", json={"payload": payload, "route_id": "09"}, headers=gate.headers
            )
            assert answer.status_code == 200, answer.text
            assert (answer.json()["accepted"], answer.json()["reason"]) == (False, reason)
        first = api.post(
            "/v1/transit/validate", json={"payload": b64url(good), "route_id": "09"}, headers=gate.headers
        )
        assert first.json()["accepted"] is True
        assert first.json()["card_id"] == r.card_id
        replay = api.post(
            "/v1/transit/validate", json={"payload": b64url(good), "route_id": "09"}, headers=gate.headers
        )
        assert replay.json()["reason"] == "already_scanned"

    def test_revoking_a_lost_phone_denies_it_at_once_online_and_in_the_deny_list(self, api, operator):
        gate = make_gate(api)
        r = make_rider(api)
        revoked = api.post(f"/v1/transit/devices/{r.device_id}/revoke", headers=r.headers)
        assert revoked.json()["status"] == "revoked"
        answer = api.post(
            "/v1/transit/validate",
            json={"payload": b64url(r.device.code()), "route_id": "09"},
            headers=gate.headers,
        )
        assert answer.json()["reason"] == "device_revoked"
        deny = api.get("/v1/transit/deny_list", headers=gate.headers).json()
        assert deny["revoked_devices"] == [b64url(r.device.public_key)]
        api.post(f"/v1/transit/cards/{r.card_id}/revoke", headers=r.headers)
        deny = api.get("/v1/transit/deny_list", headers=gate.headers).json()
        assert deny["revoked_cards"] == [r.card_id]

    def test_the_same_card_on_two_vehicles_within_a_minute_is_flagged(self, api, operator):
        bus1, bus2 = make_gate(api, "bus-1"), make_gate(api, "bus-2")
        r = make_rider(api)
        first = api.post(
            "/v1/transit/validate",
            json={"payload": b64url(r.device.code()), "route_id": "09"},
            headers=bus1.headers,
        )
        second = api.post(
            "/v1/transit/validate",
            json={"payload": b64url(r.device.code()), "route_id": "34"},
            headers=bus2.headers,
        )
        assert (first.json()["flag"], second.json()["flag"]) == (None, "two_vehicles")
        assert second.json()["accepted"] is True

    def test_validator_credentials_are_checked(self, api, operator):
        gate = make_gate(api)
        body = {"payload": "AA", "route_id": "09"}
        assert api.post("/v1/transit/validate", json=body).json()["code"] == "invalid_validator_credentials"
        wrong = {"Authorization": f"Bearer {gate.id}.wrong"}
        assert api.post("/v1/transit/validate", json=body, headers=wrong).status_code == 401
        admin = make_user(["admin"])
        api.post(f"/v1/transit/validators/{gate.id}/revoke", headers=auth(admin))
        assert api.post("/v1/transit/validate", json=body, headers=gate.headers).status_code == 401
        bad_route = api.post(
            "/v1/transit/validate", json={**body, "route_id": "nope"}, headers=make_gate(api).headers
        )
        assert bad_route.json()["code"] == "unknown_route"

    def test_the_published_keys_verify_the_credentials_the_platform_issues(self, api, operator):
        keys = api.get("/v1/transit/keys").json()
        assert [k["kid"] for k in keys["keys"]] == ["k1"]
        assert keys["keys"][0]["active"]
        r = make_rider(api)
        synced = {k["kid"]: base64.urlsafe_b64decode(k["public_key"] + "=") for k in keys["keys"]}
        assert Validator(synced).check(r.device.code(), datetime.now(UTC).timestamp()).accepted
