"""What the API refuses before any endpoint sees it: oversized bodies, text PostgreSQL cannot store."""

import json

import pytest

from hanoipay.settings import get_settings
from tests.factories import ADMIN, auth, make_merchant, make_user, make_wallet
from tests.hanoipay.test_errors import assert_problem, counts, intent_body

LONE_SURROGATES = ["\udfff", "\ud800", "a\ud83db", "\udc00x"]


def post_ascii_json(api, path, body, headers):
    """POST JSON written with \\u escapes, as most clients write non-ASCII text (httpx would send UTF-8)."""
    return api.post(
        path, content=json.dumps(body).encode(), headers={**headers, "content-type": "application/json"}
    )


@pytest.fixture
def payer():
    user, merchant = make_user(), make_merchant()
    return user, merchant, make_wallet(user, balance=100_000)


class TestUnstorableText:
    @pytest.mark.parametrize("text", LONE_SURROGATES, ids=ascii)
    def test_a_lone_surrogate_in_metadata_is_422_and_writes_nothing(self, api, payer, text):
        user, merchant, wallet = payer
        before = counts()
        for metadata in ({"k": text}, {text: "v"}, {"nested": "ok", "k2": f"x{text}"}):
            body = intent_body(merchant, wallet, confirm=True, metadata=metadata)
            r = post_ascii_json(api, "/v1/payment_intents", body, auth(user))
            problem = assert_problem(r, 422, "invalid_characters")
            assert "metadata" in problem["detail"]
            r = post_ascii_json(api, "/v1/payment_intents", body, {**auth(user), "Idempotency-Key": "k1"})
            assert_problem(r, 422, "invalid_characters")
        assert counts() == before

    def test_a_valid_surrogate_pair_is_an_emoji_and_is_stored(self, api, payer):
        user, merchant, wallet = payer
        body = intent_body(merchant, wallet, confirm=True, metadata={"note": "\U0001f35c phở"})
        r = api.post("/v1/payment_intents", json=body, headers=auth(user))
        assert r.status_code == 201, r.text
        assert r.json()["metadata"] == {"note": "\U0001f35c phở"}

    @pytest.mark.parametrize(
        ("path", "body"),
        [
            (
                "/v1/users/signup",
                {"email": "a@example.vn", "password": "long enough pw", "full_name": "\ud800"},
            ),
            ("/v1/refunds", {"payment_intent": "pi_1", "reason": "\udfff"}),
            ("/v1/vietqr/decode", {"payload": "0002\udfff"}),
            ("/v1/wallets", {"currency": "VND", "owner_id": "\x00"}),
        ],
        ids=lambda v: v if isinstance(v, str) else "",
    )
    def test_every_json_endpoint_refuses_it_the_same_way(self, api, payer, path, body):
        user, _, _ = payer
        before = counts()
        assert_problem(post_ascii_json(api, path, body, auth(user)), 422, "invalid_characters")
        assert counts() == before

    def test_a_nul_in_a_query_string_or_path_is_422(self, api, payer):
        user, _, _ = payer
        r = api.get("/v1/payment_intents?status=%00", headers=auth(user))
        assert_problem(r, 422, "invalid_characters")
        assert_problem(api.get("/v1/payment_intents/pi_%00", headers=auth(user)), 422, "invalid_characters")


class TestMetadataLimits:
    @pytest.mark.parametrize(
        "metadata",
        [
            {f"k{i}": "v" for i in range(51)},
            {"k" * 41: "v"},
            {"k": "v" * 501},
            {"k": 1},
            {"k": None},
            {"k": ["a"]},
            {"": "v"},
        ],
        ids=["51 keys", "key of 41", "value of 501", "number", "null", "list", "empty key"],
    )
    def test_stripes_limits_are_refused_with_a_validation_error(self, api, payer, metadata):
        user, merchant, wallet = payer
        before = counts()
        body = intent_body(merchant, wallet, confirm=True, metadata=metadata)
        assert_problem(
            api.post("/v1/payment_intents", json=body, headers=auth(user)), 422, "validation_error"
        )
        assert counts() == before

    def test_the_limits_themselves_are_accepted(self, api, payer):
        user, merchant, wallet = payer
        metadata = {f"{i:02d}".ljust(40, "k"): "v" * 500 for i in range(50)}
        body = intent_body(merchant, wallet, confirm=True, metadata=metadata)
        r = api.post("/v1/payment_intents", json=body, headers=auth(user))
        assert r.status_code == 201, r.text
        assert r.json()["metadata"] == metadata


class TestBodyLimit:
    def test_a_declared_length_over_the_limit_is_413_before_reading(self, api, payer):
        user, merchant, wallet = payer
        limit = get_settings().max_body_bytes
        body = intent_body(merchant, wallet, confirm=True, description="x" * limit)
        before = counts()
        r = api.post("/v1/payment_intents", json=body, headers=auth(user))
        problem = assert_problem(r, 413, "payload_too_large")
        assert str(limit) in problem["detail"]
        assert counts() == before

    def test_a_streamed_body_is_cut_off_at_the_limit(self, api, payer):
        user, merchant, wallet = payer
        chunk = json.dumps(intent_body(merchant, wallet, confirm=True))[:-1].encode()

        def stream():
            yield chunk
            yield b', "description": "'
            for _ in range(2_000):
                yield b"y" * 1_000
            yield b'"}'

        r = api.post(
            "/v1/payment_intents",
            content=stream(),
            headers={**auth(user), "content-type": "application/json"},
        )
        assert_problem(r, 413, "payload_too_large")
        assert counts() == (1, 1, 0)  # only the test's own funding

    def test_ten_megabytes_of_metadata_is_413(self, api, payer):
        user, merchant, wallet = payer
        metadata = {f"k{i}": "v" * 200_000 for i in range(50)}
        body = intent_body(merchant, wallet, confirm=True, metadata=metadata)
        assert_problem(
            api.post("/v1/payment_intents", json=body, headers=auth(user)), 413, "payload_too_large"
        )

    def test_the_admin_api_is_limited_too(self, api):
        admin = make_user(["admin"])
        assert ADMIN
        body = {"email": "b@example.vn", "password": "p" * 2_000_000, "full_name": "B", "roles": ["customer"]}
        assert_problem(api.post("/v1/users", json=body, headers=auth(admin)), 413, "payload_too_large")
