"""Every refusal is problem+json with a stable code; bad input is a 4xx that leaves nothing written."""

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from hanoipay.db import job_session
from payments.models import JournalEntry, PaymentIntent, Refund
from tests.factories import auth, make_merchant, make_user, make_wallet, pay

PROBLEM_JSON = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


def assert_problem(r: httpx.Response, status: int, code: str) -> dict:
    """A problem+json document with this status and code, and every RFC 9457 member HanoiPay promises."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON), r.headers
    body = r.json()
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"] == f"https://hanoipay.dev/problems/{code}"
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


def counts() -> tuple[int, int, int]:
    """Payment intents, journal entries and refunds in the database."""
    with job_session() as session:
        return (
            int(session.scalar(select(func.count()).select_from(PaymentIntent)) or 0),
            int(session.scalar(select(func.count()).select_from(JournalEntry)) or 0),
            int(session.scalar(select(func.count()).select_from(Refund)) or 0),
        )


@pytest.fixture
def payer():
    """A customer with an unfunded wallet and a merchant: the database starts with no intents or entries."""
    user, merchant = make_user(), make_merchant()
    wallet = make_wallet(user)
    assert counts() == (0, 0, 0)
    return user, merchant, wallet


def intent_body(merchant, wallet, **changes) -> dict:
    return {
        "amount": 8_000,
        "currency": "VND",
        "merchant_id": merchant.id,
        "purpose": "merchant_payment",
        "provider": "wallet",
        "wallet_id": wallet.id,
        **changes,
    }


class TestBody:
    def test_malformed_json_is_400(self, api, payer):
        user, _merchant, _wallet = payer
        r = api.post(
            "/v1/payment_intents",
            content=b'{"amount": 8000, "currency": ',
            headers={**auth(user), "Content-Type": "application/json"},
        )
        assert_problem(r, 400, "malformed_json")
        assert counts() == (0, 0, 0)

    @pytest.mark.parametrize(
        ("content_type", "content"),
        [
            ("text/plain", b'{"amount": 8000}'),
            ("application/x-www-form-urlencoded", b"amount=8000&currency=VND"),
            ("multipart/form-data; boundary=x", b"--x\r\n\r\n8000\r\n--x--\r\n"),
            ("application/jsonp", b'{"amount": 8000}'),
        ],
    )
    def test_wrong_content_type_is_415(self, api, payer, content_type, content):
        user, _merchant, _wallet = payer
        headers = {**auth(user), "Content-Type": content_type}
        r = api.post("/v1/payment_intents", content=content, headers=headers)
        body = assert_problem(r, 415, "unsupported_media_type")
        assert content_type.split(";")[0] in body["detail"]
        r = api.post("/v1/users/signup", content=content, headers=headers)
        assert_problem(r, 415, "unsupported_media_type")
        assert counts() == (0, 0, 0)

    def test_json_with_charset_is_accepted(self, api, payer):
        user, merchant, wallet = payer
        r = api.post(
            "/v1/payment_intents",
            content=json.dumps(intent_body(merchant, wallet)).encode(),
            headers={**auth(user), "Content-Type": "application/json; charset=utf-8"},
        )
        assert r.status_code == 201, r.text

    def test_missing_body_is_a_validation_error(self, api, payer):
        user, _, _ = payer
        r = api.post("/v1/payment_intents", headers=auth(user))
        body = assert_problem(r, 422, "validation_error")
        assert body["errors"]

    @pytest.mark.parametrize("body", [[], "a string", 8000, None])
    def test_body_that_is_not_an_object_is_a_validation_error(self, api, payer, body):
        user, _, _ = payer
        assert_problem(
            api.post("/v1/payment_intents", json=body, headers=auth(user)), 422, "validation_error"
        )


class TestIntentInput:
    @pytest.mark.parametrize(
        "amount",
        [-1, 0, 12.5, "8000", True, False, None, 10**12 + 1, 10**30, [8000], {"value": 8000}, 8000.0],
        ids=repr,
    )
    def test_bad_amounts_are_validation_errors_and_write_nothing(self, api, payer, amount):
        user, merchant, wallet = payer
        r = api.post(
            "/v1/payment_intents", json=intent_body(merchant, wallet, amount=amount), headers=auth(user)
        )
        body = assert_problem(r, 422, "validation_error")
        assert ["body", "amount"] in [e["loc"] for e in body["errors"]], body
        assert "amount" in body["detail"]
        assert counts() == (0, 0, 0)

    @pytest.mark.parametrize(
        ("changes", "status", "code", "field"),
        [
            ({"currency": "XYZ"}, 422, "unsupported_currency", None),
            ({"currency": "vnd"}, 422, "validation_error", "currency"),
            ({"currency": "VNDX"}, 422, "validation_error", "currency"),
            ({"currency": 704}, 422, "validation_error", "currency"),
            ({"colour": "red"}, 422, "validation_error", "colour"),
            ({"merchant_id": "mer_DOESNOTEXIST"}, 404, "merchant_not_found", None),
            ({"purpose": "bribe"}, 422, "unknown_purpose", None),
            ({"purpose": ""}, 422, "validation_error", "purpose"),
            ({"provider": "cash"}, 422, "unknown_provider", None),
            ({"capture_method": "later"}, 422, "validation_error", "capture_method"),
            ({"confirm": "yes"}, 422, "validation_error", "confirm"),
            ({"metadata": {"n": 1}}, 422, "validation_error", "metadata"),
        ],
        ids=lambda v: json.dumps(v) if isinstance(v, dict) else str(v),
    )
    def test_bad_fields_are_refused_and_write_nothing(self, api, payer, changes, status, code, field):
        user, merchant, wallet = payer
        body = intent_body(merchant, wallet, **{"confirm": True, **changes})
        r = api.post("/v1/payment_intents", json=body, headers=auth(user))
        problem = assert_problem(r, status, code)
        if field is not None:
            assert any(field in e["loc"] for e in problem["errors"]), problem
        assert counts() == (0, 0, 0)

    @pytest.mark.parametrize(
        ("changes", "code"),
        [
            ({"description": "a\x00b", "confirm": False}, "invalid_characters"),
            ({"purpose_ref": "\x00", "confirm": False}, "invalid_characters"),
            ({"metadata": {"note": "a\x00b"}, "confirm": False}, "invalid_characters"),
            ({"metadata": {"a\x00": "b"}, "confirm": False}, "invalid_characters"),
            ({"merchant_id": "mer_\x00"}, "invalid_characters"),
            ({"wallet_id": "wal_\x00"}, "invalid_characters"),
            ({"wallet_id": "w" * 100, "confirm": False}, "validation_error"),
        ],
        ids=repr,
    )
    def test_values_that_cannot_be_stored_are_422_not_500(self, api, payer, changes, code):
        user, merchant, wallet = payer
        body = intent_body(merchant, wallet, **{"confirm": True, **changes})
        r = api.post("/v1/payment_intents", json=body, headers=auth(user))
        assert_problem(r, 422, code)
        r = api.post(
            "/v1/payment_intents", json=body, headers={**auth(user), "Idempotency-Key": f"nul-{code}"}
        )
        assert_problem(r, 422, code)
        assert counts() == (0, 0, 0)

    def test_nul_in_ids_on_lookups_is_422_not_500(self, api, payer):
        user, _, _ = payer
        assert_problem(api.get("/v1/payment_intents/pi_%00", headers=auth(user)), 422, "invalid_characters")
        assert_problem(api.get("/v1/wallets/wal_%00", headers=auth(user)), 422, "invalid_characters")
        r = api.post("/v1/refunds", json={"payment_intent": "pi_\x00"}, headers=auth(user))
        assert_problem(r, 422, "invalid_characters")
        assert counts() == (0, 0, 0)

    def test_unknown_wallet_on_an_unconfirmed_intent_is_refused(self, api, payer):
        user, merchant, wallet = payer
        body = intent_body(merchant, wallet, wallet_id="wal_DOESNOTEXIST", confirm=False)
        r = api.post("/v1/payment_intents", json=body, headers=auth(user))
        assert_problem(r, 404, "wallet_not_found")

    def test_refusals_with_an_idempotency_key_write_no_money(self, api, payer):
        user, merchant, wallet = payer
        r = api.post(
            "/v1/payment_intents",
            json=intent_body(merchant, wallet, currency="XYZ", confirm=True),
            headers={**auth(user), "Idempotency-Key": "bad-currency-1"},
        )
        assert_problem(r, 422, "unsupported_currency")
        assert counts() == (0, 0, 0)

    def test_the_same_body_with_a_good_field_succeeds(self, api):
        # The control for the tests above: what they refuse is the bad field, not the rest of the body.
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=8_000)
        before = counts()
        r = pay(api, user, merchant, wallet, 8_000)
        assert r.status_code == 201, r.text
        assert counts() == (before[0] + 1, before[1] + 1, 0)


class TestRoutes:
    def test_unknown_route_is_404_problem(self, api):
        assert_problem(api.get("/v1/nothing/here"), 404, "not_found")
        assert_problem(api.post("/v2/payment_intents", json={}), 404, "not_found")

    def test_wrong_method_is_405_with_allow(self, api):
        r = api.delete("/v1/payment_intents")
        assert_problem(r, 405, "method_not_allowed")
        allowed = {m.strip() for m in r.headers["allow"].split(",")}
        assert {"GET", "POST"} <= allowed  # both routes of the resource, not only the first one
        assert "DELETE" not in allowed
        r = api.put("/v1/auth/token")
        assert_problem(r, 405, "method_not_allowed")
        assert "POST" in r.headers["allow"]

    def test_bad_query_parameters_are_validation_errors(self, api):
        user = make_user()
        body = assert_problem(
            api.get("/v1/payment_intents", params={"limit": 0}, headers=auth(user)), 422, "validation_error"
        )
        assert ["query", "limit"] in [e["loc"] for e in body["errors"]]
        body = assert_problem(
            api.get("/v1/payment_intents", params={"created_gte": "yesterday"}, headers=auth(user)),
            422,
            "validation_error",
        )
        assert ["query", "created_gte"] in [e["loc"] for e in body["errors"]]

    def test_every_problem_has_the_rfc9457_members(self, api, payer):
        user, merchant, wallet = payer
        responses = [
            api.get("/v1/nothing"),
            api.delete("/v1/payment_intents"),
            api.get("/v1/users/me"),
            api.get("/v1/users/me", headers={"Authorization": "Bearer nope"}),
            api.get("/v1/ledger/entries", headers=auth(user)),
            api.get("/v1/payment_intents/pi_nope", headers=auth(user)),
            api.post("/v1/payment_intents", json={}, headers=auth(user)),
            api.post(
                "/v1/payment_intents",
                content=b"{",
                headers={**auth(user), "Content-Type": "application/json"},
            ),
            api.post(
                "/v1/payment_intents", content=b"x", headers={**auth(user), "Content-Type": "text/plain"}
            ),
            pay(api, user, merchant, wallet, 1_000),  # insufficient funds
            api.post("/v1/auth/token", data={"username": "x@example.vn", "password": "y"}),
        ]
        statuses = set()
        for r in responses:
            assert 400 <= r.status_code < 500, r.text
            assert r.headers["content-type"].startswith(PROBLEM_JSON), (r.request.url, r.headers)
            body = r.json()
            assert body.keys() >= PROBLEM_FIELDS, body
            assert body["status"] == r.status_code
            assert body["type"].endswith("/" + body["code"])
            assert all(isinstance(body[k], str) and body[k] for k in PROBLEM_FIELDS - {"status"})
            statuses.add(r.status_code)
        assert statuses == {400, 401, 402, 403, 404, 405, 415, 422}
        assert counts() == (1, 0, 0)  # the failed payment is kept on its intent; no money moved


# Fuzz ------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=20,
)
# Near-valid bodies reach past the schema into the services: the real field names with random values.
INTENT_FIELDS = [
    "amount", "currency", "purpose", "merchant_id", "purpose_ref", "capture_method", "provider",
    "wallet_id", "confirm", "description", "metadata",
]  # fmt: skip
field_values = (
    json_values
    | st.integers(min_value=-(10**13), max_value=10**13)
    | st.sampled_from(["VND", "USD", "merchant_payment", "wallet", "manual", "automatic", "wallet_topup"])
    | st.text(max_size=60)
    | st.sampled_from(["a\x00b", "\x00", "x" * 41, "x" * 600, "pi_" + "0" * 37, "wal_DOESNOTEXIST"])
)


def near_valid(base: dict, fields: list[str]) -> st.SearchStrategy[dict]:
    """`base` with up to four of `fields` set to random values and up to two of them dropped."""
    return st.builds(
        lambda changes, dropped: {k: v for k, v in {**base, **changes}.items() if k not in dropped},
        st.dictionaries(st.sampled_from(fields), field_values, max_size=4),
        st.sets(st.sampled_from(fields), max_size=2),
    )


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_no_5xx(r: httpx.Response, body: object) -> None:
    assert r.status_code < 500, (body, r.text)
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith(PROBLEM_JSON)
        assert r.json().keys() >= PROBLEM_FIELDS


class TestFuzz:
    @FUZZ
    @given(body=json_values)
    def test_random_json_never_5xx(self, api, payer, body):
        user, _, _ = payer
        for path in ("/v1/payment_intents", "/v1/refunds"):
            r = api.post(path, json=body, headers=auth(user))
            assert_no_5xx(r, body)
            assert r.status_code in {400, 404, 422}, (body, r.text)

    @FUZZ
    @given(data=st.data())
    def test_near_valid_intents_never_5xx(self, api, data):
        user, merchant = make_user(), make_merchant()
        wallet = make_wallet(user, balance=10**9)
        fields = list(INTENT_FIELDS)
        body = data.draw(near_valid(intent_body(merchant, wallet, confirm=True), fields))
        r = api.post("/v1/payment_intents", json=body, headers=auth(user))
        assert_no_5xx(r, body)

    @FUZZ
    @given(data=st.data())
    def test_near_valid_refunds_never_5xx(self, api, data):
        user, merchant = make_user(), make_merchant()
        vendor = make_user(["vendor"], merchant_id=merchant.id)
        wallet = make_wallet(user, balance=10**6)
        intent = pay(api, user, merchant, wallet, 50_000).json()
        base = {"payment_intent": intent["id"], "amount": 1_000, "reason": "returned"}
        body = data.draw(near_valid(base, ["payment_intent", "amount", "reason"]))
        r = api.post("/v1/refunds", json=body, headers=auth(vendor))
        assert_no_5xx(r, body)
