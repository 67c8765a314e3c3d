"""The vendor's live feed: a payment made by the bank's webhook appears on an open stream; a dropped
stream resumes from its last event id and misses nothing; nobody reads another vendor's feed."""

from tests.factories import auth, make_merchant, make_staff, make_user, member_id
from tests.merchants.conftest import EventStream, drain, transfer
from tests.merchants.helpers import make_stall


def sell(api, stall, cashier, amount: int) -> dict:
    r = api.post(f"/v1/stalls/{stall.id}/sales", json={"amount": amount}, headers=auth(cashier))
    assert r.status_code == 201, r.text
    return r.json()


def next_payment(stream: EventStream) -> dict:
    while True:
        event = stream.next()
        assert event is not None, "the stream ended"
        if event["type"] == "payment_intent.succeeded":
            return event


class TestLiveFeed:
    def test_a_payment_made_by_the_banks_webhook_appears_on_the_open_feed(self, api):
        vendor = make_merchant()
        stall, cashier = make_stall(vendor), make_staff(vendor, "cashier")
        stream = EventStream(api, f"/v1/merchants/{vendor.id}/feed", auth(cashier))
        try:
            assert stream.status_code == 200
            sale = sell(api, stall, cashier, 45_000)
            assert transfer(api, 45_000, sale["reference"]).json()["status"] == "applied"
            drain()
            event = next_payment(stream)
            assert (event["data"]["id"], event["data"]["amount_received"]) == (sale["payment_intent"], 45_000)
            assert event["sse_id"] == event["id"]
        finally:
            stream.close()

    def test_a_transfer_to_the_static_code_appears_at_once_for_the_vendor_to_confirm(self, api):
        vendor = make_merchant()
        stall, owner = make_stall(vendor), make_staff(vendor)
        stream = EventStream(api, f"/v1/merchants/{vendor.id}/feed", auth(owner))
        try:
            transfer(api, 20_000, "CK rau", account=stall.collection_account)
            drain()
            event = stream.next()
            assert event is not None
            assert (event["type"], event["data"]["amount"]) == ("bank_transfer.held", 20_000)
        finally:
            stream.close()

    def test_a_dropped_feed_resumes_from_its_last_event_and_misses_nothing(self, api):
        vendor = make_merchant()
        stall, cashier = make_stall(vendor), make_staff(vendor, "cashier")
        path = f"/v1/merchants/{vendor.id}/feed"
        first = EventStream(api, path, auth(cashier))
        sale = sell(api, stall, cashier, 10_000)
        transfer(api, 10_000, sale["reference"])
        drain()
        seen = next_payment(first)
        first.close()
        missed = []
        for amount in (11_000, 12_000):
            sale = sell(api, stall, cashier, amount)
            transfer(api, amount, sale["reference"])
            missed.append(sale["payment_intent"])
        drain()
        resumed = EventStream(api, path, auth(cashier) | {"Last-Event-ID": seen["id"]})
        try:
            replayed = [next_payment(resumed)["data"]["id"] for _ in missed]
            assert replayed == missed
            sale = sell(api, stall, cashier, 13_000)
            transfer(api, 13_000, sale["reference"])
            drain()
            assert next_payment(resumed)["data"]["id"] == sale["payment_intent"]
        finally:
            resumed.close()

    def test_nobody_reads_another_vendors_feed(self, api):
        vendor, other = make_merchant(), make_merchant(name="Gà Đông Tảo")
        for who in (make_staff(other), make_user()):
            r = api.get(f"/v1/merchants/{vendor.id}/feed", headers=auth(who))
            assert (r.status_code, r.json()["code"]) == (404, "merchant_not_found")
        assert api.get(f"/v1/merchants/{vendor.id}/feed").status_code == 401

    def test_a_removed_cashiers_open_feed_is_closed(self, api):
        vendor = make_merchant()
        owner, cashier = make_staff(vendor), make_staff(vendor, "cashier")
        stream = EventStream(api, f"/v1/merchants/{vendor.id}/feed", auth(cashier))
        assert stream.status_code == 200
        r = api.delete(f"/v1/merchants/{vendor.id}/members/{member_id(cashier)}", headers=auth(owner))
        assert r.status_code == 204
        drain()
        assert stream.next() is None
