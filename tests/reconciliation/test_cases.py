"""Cases: the lines on each side, the trail, and resolutions that correct the ledger through the core."""

import threading

from sqlalchemy import func, select

from hanoipay.db import job_session
from payments import balances
from payments.models import JournalEntry, LedgerAccount, PaymentIntent, Payout
from tests.factories import auth, make_user
from tests.reconciliation.conftest import BANK_RULES, bank_day, reconcile, today


def _cases(api, headers, **params):
    return api.get("/v1/reconciliation/cases", params={"limit": 100, **params}, headers=headers).json()[
        "data"
    ]


def _case_of(api, headers, external_id=None, result=None):
    for case in _cases(api, headers):
        detail = api.get(f"/v1/reconciliation/cases/{case['id']}", headers=headers).json()
        line = detail["provider_line"]
        if (external_id is None or (line and line["external_id"] == external_id)) and (
            result is None or detail["result"] == result
        ):
            return detail
    raise AssertionError(f"no case for {external_id} {result}")


def _resolve(api, headers, case_id, resolution, note="checked with the bank", key=None):
    extra = {"Idempotency-Key": key} if key else {}
    return api.post(
        f"/v1/reconciliation/cases/{case_id}/resolve",
        json={"resolution": resolution, "note": note},
        headers={**headers, **extra},
    )


def _balance(code):
    with job_session() as session:
        account = session.scalars(select(LedgerAccount).where(LedgerAccount.code == code)).one()
        return balances.balance(session, account.id).posted


def test_every_exception_is_a_case_with_the_exact_lines_on_each_side(
    api, finance_headers, redis_url, merchant
):
    bank_day(api, finance_headers, merchant)
    reconcile(api, finance_headers, redis_url, "vietqr", today(), rules=BANK_RULES)
    listed = _cases(api, finance_headers, status="open")
    assert sorted(c["result"] for c in listed) == sorted(
        [
            "duplicate",
            "missing_in_ledger",
            "duplicate",
            "fee_mismatch",
            "settled_other_day",
            "missing_in_ledger",
            "amount_mismatch",
            "currency_mismatch",
            "missing_at_provider",
        ]
    )
    g = _case_of(api, finance_headers, "FT-G")
    assert (g["provider_line"]["amount"], g["ledger_amount"]) == (65_000, 60_000)
    assert g["reason"] == "amount differs by 5000: provider 65000, ledger 60000, beyond the tolerance"
    lines = {line["account"].split(":")[0]: line["amount"] for line in g["ledger_entry"]["lines"]}
    assert lines == {"provider_clearing": 60_000, "unapplied_receipts": -60_000}
    assert [e["action"] for e in g["events"]] == ["opened"]
    missing = _case_of(api, finance_headers, result="missing_at_provider")
    assert missing["provider_line"] is None
    assert missing["ledger_entry"]["kind"] == "bank_receipt"


def test_assignment_acknowledgement_and_comments_make_a_trail(
    api, finance_headers, finance, redis_url, merchant
):
    bank_day(api, finance_headers, merchant)
    reconcile(api, finance_headers, redis_url, "vietqr", today(), rules=BANK_RULES)
    case = _case_of(api, finance_headers, "FT-D")
    colleague = make_user(["finance"])
    base = f"/v1/reconciliation/cases/{case['id']}"
    r = api.post(
        f"{base}/assign", json={"assignee_id": colleague.id, "note": "yours"}, headers=finance_headers
    )
    assert r.json()["assignee_id"] == colleague.id
    r = api.post(f"{base}/assign", json={"assignee_id": make_user(["customer"]).id}, headers=finance_headers)
    assert (r.status_code, r.json()["code"]) == (422, "assignee_not_finance")
    r = api.post(f"{base}/acknowledge", json={}, headers=auth(colleague))
    assert (r.json()["status"], r.json()["acknowledged_by"]) == ("acknowledged", colleague.id)
    r = api.post(
        f"{base}/comments", json={"note": "the bank raised its fee to 3 300 ₫"}, headers=auth(colleague)
    )
    trail = [(e["action"], e["actor_id"], e["note"]) for e in r.json()["events"]]
    assert trail == [
        ("opened", "system:reconciliation", None),
        ("assigned", finance.id, "yours"),
        ("acknowledged", colleague.id, None),
        ("commented", colleague.id, "the bank raised its fee to 3 300 ₫"),
    ]
    r = api.post(f"{base}/comments", json={"note": "bad\u0000note"}, headers=finance_headers)
    assert r.status_code == 422


def test_resolutions_post_correcting_entries_that_keep_the_ledger_balanced(
    api, finance_headers, redis_url, merchant
):
    paid = bank_day(api, finance_headers, merchant)
    reconcile(api, finance_headers, redis_url, "vietqr", today(), rules=BANK_RULES)
    clearing = _balance("provider_clearing:vietqr:VND")
    assert clearing == 100_000 + 70_000 * 2 + 30_000 + 40_000 + 60_000 + 20_000 + 15_000 + 80_000 + 25_000

    # G: the bank moved 5 000 more than the ledger booked; write the difference off.
    g = _resolve(api, finance_headers, _case_of(api, finance_headers, "FT-G")["id"], "write_off").json()
    assert g["status"] == "resolved"
    assert g["resolution_entry_id"].startswith("je_")
    # I: booked, but the bank never moved it; write it off.
    i = _case_of(api, finance_headers, result="missing_at_provider")
    _resolve(api, finance_headers, i["id"], "write_off")
    # C2: the same notification booked twice; the write-off reverses the phantom out of suspense.
    receipts = _balance("unapplied_receipts:vietqr:VND")
    c2 = next(
        c
        for c in _cases(api, finance_headers, status="open")
        if c["result"] == "duplicate" and c["provider_line_id"] is None
    )
    _resolve(api, finance_headers, c2["id"], "write_off")
    # A: the bank listed one transfer twice; nothing to write off, it is accepted as the same line.
    a_twice = _case_of(api, finance_headers, "FT-A")
    r = _resolve(api, finance_headers, a_twice["id"], "write_off")
    assert (r.status_code, r.json()["code"]) == (422, "resolution_not_applicable")
    assert _resolve(api, finance_headers, a_twice["id"], "manual_match").json()["resolution_entry_id"] is None
    assert _balance("unapplied_receipts:vietqr:VND") == receipts - 70_000
    # B: the lost webhook, booked through the core's bank path: the payment succeeds now.
    b = _resolve(api, finance_headers, _case_of(api, finance_headers, "FT-B")["id"], "manual_match").json()
    assert b["resolution_object"] == paid["B"].id
    # F: the transfer that paid nothing goes back to its sender as a payout.
    f = _resolve(api, finance_headers, _case_of(api, finance_headers, "FT-F")["id"], "refund").json()
    assert f["resolution_object"].startswith("po_")

    with job_session() as session:
        assert session.get(PaymentIntent, paid["B"].id).status == "succeeded"
        payout = session.get(Payout, f["resolution_object"])
        assert (payout.amount, payout.status, payout.account) == (25_000, "pending", "101010101010")
        assert session.scalar(select(func.count()).where(JournalEntry.kind == "adjustment")) == 3
        report = balances.verify(session)
        assert report.ok, report
    # The clearing account now says what the bank statement says, but for what is still open:
    # E (settled tomorrow, 40 000), H (20 000 reported in USD) and K's accepted drift (5).
    statement_vnd_today = 100_000 + 50_000 + 70_000 + 30_000 + 25_000 + 65_000 + 79_995
    assert _balance("provider_clearing:vietqr:VND") == statement_vnd_today + 40_000 + 20_000 + 5

    # A re-run finds B matched now; the resolved cases stay as they were.
    before = {c["id"]: c for c in _cases(api, finance_headers, status="resolved")}
    run = reconcile(api, finance_headers, redis_url, "vietqr", today(), rules=BANK_RULES)
    after = {c["id"]: c for c in _cases(api, finance_headers, status="resolved")}
    assert {k: after[k] for k in before} == before
    assert run["summary"]["results"]["matched"]["count"] == 4


def test_a_case_is_resolved_once_whoever_asks_and_however_often(api, finance_headers, redis_url, merchant):
    bank_day(api, finance_headers, merchant)
    reconcile(api, finance_headers, redis_url, "vietqr", today(), rules=BANK_RULES)
    case_id = _case_of(api, finance_headers, "FT-G")["id"]
    r = _resolve(api, auth(make_user(["admin"])), case_id, "write_off")
    assert (r.status_code, r.json()["code"]) == (403, "role_not_allowed")
    r = _resolve(api, finance_headers, _case_of(api, finance_headers, "FT-E")["id"], "write_off")
    assert (r.status_code, r.json()["code"]) == (422, "resolution_not_applicable")
    answers = []

    def resolve():
        answers.append(_resolve(api, finance_headers, case_id, "write_off"))

    threads = [threading.Thread(target=resolve) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200, 409, 409]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"case_resolved"}
    r = api.post(
        f"/v1/reconciliation/cases/{case_id}/comments", json={"note": "late"}, headers=finance_headers
    )
    assert (r.status_code, r.json()["code"]) == (409, "case_resolved")
    with job_session() as session:
        assert session.scalar(select(func.count()).where(JournalEntry.kind == "adjustment")) == 1


def test_a_resolution_retried_with_its_idempotency_key_replays_its_answer(
    api, finance_headers, redis_url, merchant
):
    bank_day(api, finance_headers, merchant)
    reconcile(api, finance_headers, redis_url, "vietqr", today(), rules=BANK_RULES)
    case_id = _case_of(api, finance_headers, "FT-G")["id"]
    first = _resolve(api, finance_headers, case_id, "write_off", key="resolve-g-1")
    again = _resolve(api, finance_headers, case_id, "write_off", key="resolve-g-1")
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = _resolve(api, finance_headers, case_id, "manual_match", key="resolve-g-1")
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")


def test_reports_the_daily_close_and_exports_lines_and_cases_as_csv(
    api, finance_headers, redis_url, merchant
):
    bank_day(api, finance_headers, merchant)
    run = reconcile(api, finance_headers, redis_url, "vietqr", today(), rules=BANK_RULES)
    close = api.get(
        "/v1/reconciliation/close", params={"business_day": today().isoformat()}, headers=finance_headers
    ).json()
    assert close["closed"] is False
    vietqr = next(p for p in close["providers"] if p["provider"] == "vietqr")
    stripe = next(p for p in close["providers"] if p["provider"] == "stripe")
    assert (vietqr["reconciled"], vietqr["open_cases"], vietqr["matched"]) == (False, 9, 3)
    # |difference| per open case: A twice 100 000, B 50 000, C2 70 000, G 5 000, I 15 000, the rest 0
    assert vietqr["open_amount"] == 100_000 + 50_000 + 70_000 + 5_000 + 15_000
    assert (stripe["reconciled"], stripe["latest_run"]) == (False, None)
    csv_lines = api.get(f"/v1/reconciliation/runs/{run['id']}/lines.csv", headers=finance_headers)
    assert csv_lines.headers["content-type"].startswith("text/csv")
    rows = csv_lines.text.strip().splitlines()
    assert rows[0].startswith("result_id,result,rule,kind,provider_line")
    assert len(rows) == 1 + 12
    cases = api.get("/v1/reconciliation/cases.csv", params={"status": "open"}, headers=finance_headers).text
    assert len(cases.strip().splitlines()) == 1 + 9
    assert "fee_mismatch" in cases
