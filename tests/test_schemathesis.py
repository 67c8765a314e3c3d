"""Schemathesis over the whole OpenAPI document, as an admin and as a customer: no answer is a 5xx.

Marked `schemathesis` (CI runs it with the rest); a bounded number of examples per operation keeps it
under two minutes.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from city.app import create_app
from tests.conftest import LiveServer
from tests.factories import auth, make_merchant, make_user, make_wallet

EXAMPLES_PER_OPERATION = 12


# The document the live server serves, read from the same app factory (the server runs per session).
schema = schemathesis.openapi.from_dict(create_app().openapi())


@pytest.fixture
def admin() -> dict[str, str]:
    make_merchant()
    return auth(make_user(["admin"]))


@pytest.fixture
def customer() -> dict[str, str]:
    """A customer with a funded wallet, and a merchant to pay."""
    make_merchant()
    user = make_user()
    make_wallet(user, balance=1_000_000)
    return auth(user)


def assert_no_server_error(case, headers: dict[str, str], live_server: LiveServer) -> None:
    response = case.call(base_url=live_server.url, headers=headers, timeout=30)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    )
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith("application/problem+json"), response.text
        assert response.json()["code"], response.text


BOUNDED = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.schemathesis
@schema.parametrize()
@BOUNDED
def test_no_operation_answers_an_admin_with_a_server_error(case, admin, live_server):
    assert_no_server_error(case, admin, live_server)


@pytest.mark.schemathesis
@schema.parametrize()
@BOUNDED
def test_no_operation_answers_a_customer_with_a_server_error(case, customer, live_server):
    assert_no_server_error(case, customer, live_server)
