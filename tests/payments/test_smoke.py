from tests.factories import make_merchant, make_user, make_wallet, pay


def test_wallet_payment(api):
    user = make_user()
    merchant = make_merchant()
    wallet = make_wallet(user, balance=50_000)
    r = pay(api, user, merchant, wallet, 8_000)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "succeeded"
