"""Runs: re-runs agree, one run of a day at a time, dry runs, engine errors, progress, schedule, bad input."""

import threading
from datetime import timedelta

from sqlalchemy import func, select

from city.domains import periodic_jobs
from hanoipay.db import job_session
from reconciliation import chunks, runs
from reconciliation.models import Case, CaseEvent, ResultLine, Run
from tests.factories import auth, make_user
from tests.reconciliation.conftest import (
    BANK_RULES,
    bank_day,
    drain,
    reconcile,
    results,
    today,
    upload,
)


def _outcome(found):
    """A run's results without the ids that differ between runs."""
    keep = (
        "result",
        "rule",
        "kind",
        "provider_line_id",
        "ledger_item_id",
        "ledger_object",
        "provider_amount",
        "ledger_amount",
        "drift",
        "reason",
        "case_id",
    )
    return sorted(tuple(str(r[k]) for k in keep) for r in found)


def _count(model, *where):
    with job_session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_re_running_a_day_gives_the_same_results_and_the_same_cases(
    api, finance_headers, redis_url, merchant
):
    bank_day(api, finance_headers, merchant)
    first = reconcile(api, finance_headers, redis_url, "vietqr", today(), rules=BANK_RULES)
    cases = _count(Case)
    second = reconcile(api, finance_headers, redis_url, "vietqr", today(), rules=BANK_RULES)
    assert first["id"] != second["id"]
    assert _outcome(results(api, finance_headers, first["id"])) == _outcome(
        results(api, finance_headers, second["id"])
    )
    assert first["summary"] == second["summary"]
    assert _count(Case) == cases == 9
    assert _count(CaseEvent, CaseEvent.action == "opened") == 9


def test_the_same_file_uploaded_twice_is_recognised_and_changes_nothing(api, finance_headers, merchant):
    bank_day(api, finance_headers, merchant)
    with job_session() as session:
        data = session.execute(select(func.count()).select_from(Run)).scalar()
    from tests.reconciliation.conftest import statement_csv

    body = statement_csv([])
    assert upload(api, finance_headers, body, "bank_csv").status_code == 201
    again = upload(api, finance_headers, body, "bank_csv")
    assert again.status_code == 200
    assert (again.json()["duplicate"], again.json()["new_lines"]) == (True, 0)
    listed = api.get("/v1/reconciliation/statements", headers=finance_headers).json()["data"]
    assert len(listed) == 2
    assert data == 0


def test_two_runs_of_the_same_day_at_once_one_proceeds_the_other_is_refused(api, finance_headers):
    body = {"provider": "vietqr", "business_day": today().isoformat()}
    answers = []
    barrier = threading.Barrier(4)

    def ask():
        barrier.wait()
        answers.append(api.post("/v1/reconciliation/runs", json=body, headers=finance_headers))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [202, 409, 409, 409]
    refused = next(a for a in answers if a.status_code == 409).json()
    assert refused["code"] == "run_in_progress"
    assert _count(Run) == 1


def test_a_run_queued_while_another_is_active_is_refused_then_allowed_once_it_finished(
    api, finance_headers, redis_url
):
    body = {"provider": "vietqr", "business_day": today().isoformat()}
    assert api.post("/v1/reconciliation/runs", json=body, headers=finance_headers).status_code == 202
    assert (
        api.post("/v1/reconciliation/runs", json=body, headers=finance_headers).json()["code"]
        == "run_in_progress"
    )
    drain(redis_url)
    assert api.post("/v1/reconciliation/runs", json=body, headers=finance_headers).status_code == 202


def test_a_dry_run_shows_what_a_run_would_find_and_saves_nothing(api, finance_headers, merchant):
    bank_day(api, finance_headers, merchant)
    body = {"provider": "vietqr", "business_day": today().isoformat(), "dry_run": True, "rules": BANK_RULES}
    r = api.post("/v1/reconciliation/runs", json=body, headers=finance_headers)
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["summary"]["exceptions"] == 9
    assert found["summary"]["results"]["matched"]["count"] == 3
    assert {e["result"] for e in found["exceptions"]} >= {"missing_in_ledger", "duplicate", "fee_mismatch"}
    assert (_count(Run), _count(ResultLine), _count(Case)) == (0, 0, 0)


def test_an_unreadable_provider_fails_the_run_as_an_engine_error_not_as_breaks(
    api, finance_headers, redis_url, merchant, stripe_fake
):
    stripe_fake.fail_next(5, status=500, path_prefix="/v1/balance_transactions")
    r = api.post(
        "/v1/reconciliation/runs",
        json={"provider": "stripe", "business_day": today().isoformat()},
        headers=finance_headers,
    )
    drain(redis_url)
    run = api.get(f"/v1/reconciliation/runs/{r.json()['id']}", headers=finance_headers).json()
    assert run["status"] == "failed"
    assert run["error"].startswith("Stripe's balance transactions could not be read")
    assert run["summary"] is None
    assert (_count(ResultLine), _count(Case)) == (0, 0)


def test_progress_is_visible_while_the_chunks_are_worked_on(api, finance_headers, merchant):
    bank_day(api, finance_headers, merchant)
    r = api.post(
        "/v1/reconciliation/runs",
        json={
            "provider": "vietqr",
            "business_day": today().isoformat(),
            "parallelism": 2,
            "rules": BANK_RULES,
        },
        headers=finance_headers,
    )
    run_id = r.json()["id"]
    assert r.json()["status"] == "queued"
    assert r.json()["progress"]["percent"] == 0
    runs.start_run(run_id)
    for _ in range(5):  # the 4 slices of the day staged, then the first bucket range matched
        assert chunks._claim_and_match(run_id, "test-worker") == "done"
    partway = api.get(f"/v1/reconciliation/runs/{run_id}", headers=finance_headers).json()
    assert partway["status"] == "running"
    assert partway["progress"]["chunks_done"] == 5
    assert partway["progress"]["chunks_total"] == 4 + 8
    assert 0 < partway["progress"]["percent"] < 100
    assert partway["ledger_items"] == 10  # every receipt but B's, whose webhook was lost
    chunks.work_on_run(run_id, worker="test-worker")
    done = api.get(f"/v1/reconciliation/runs/{run_id}", headers=finance_headers).json()
    assert (done["status"], done["progress"]["percent"]) == ("completed", 100)
    assert sum(done["progress"]["counts"].values()) == done["summary"]["lines"] == 12


def test_the_watchdog_hands_a_run_nobody_works_on_back_to_the_queue(api, finance_headers, redis_url):
    r = api.post(
        "/v1/reconciliation/runs",
        json={"provider": "vietqr", "business_day": today().isoformat()},
        headers=finance_headers,
    )
    runs.start_run(r.json()["id"])  # its work jobs were queued; pretend the workers died
    import redis as redis_client

    redis_client.Redis.from_url(redis_url).flushdb()
    assert runs.resume_stalled_runs() == 1
    drain(redis_url)
    assert (
        api.get(f"/v1/reconciliation/runs/{r.json()['id']}", headers=finance_headers).json()["status"]
        == "completed"
    )


def test_the_nightly_runs_are_scheduled_at_two_in_the_morning_in_hanoi(redis_url):
    scheduled = {job.name: job for job in periodic_jobs()}
    assert scheduled["reconciliation.reconcile_yesterday"].cron == "0 19 * * *"
    queued = runs.reconcile_yesterday()
    assert len(queued) == 2
    with job_session() as session:
        made = session.scalars(select(Run)).all()
    assert {(r.provider, r.business_day, r.trigger) for r in made} == {
        ("stripe", today() - timedelta(days=1), "cron"),
        ("vietqr", today() - timedelta(days=1), "cron"),
    }
    assert runs.reconcile_yesterday() == []  # both still queued: nothing twice


class TestBadInput:
    def test_only_finance_may_use_reconciliation(self, api):
        for roles in (["customer"], ["admin"]):
            headers = auth(make_user(roles))
            r = api.get("/v1/reconciliation/runs", headers=headers)
            assert (r.status_code, r.json()["code"]) == (403, "role_not_allowed")

    def test_a_day_not_begun_or_an_unknown_provider_is_refused(self, api, finance_headers):
        future = {"provider": "vietqr", "business_day": (today() + timedelta(days=2)).isoformat()}
        r = api.post("/v1/reconciliation/runs", json=future, headers=finance_headers)
        assert (r.status_code, r.json()["code"]) == (422, "business_day_out_of_range")
        r = api.post(
            "/v1/reconciliation/runs",
            json={"provider": "paypal", "business_day": "2026-11-01"},
            headers=finance_headers,
        )
        assert (r.status_code, r.json()["code"]) == (422, "validation_error")
        r = api.post(
            "/v1/reconciliation/runs",
            json={**future, "rules": {"exact": {"amount_bps": -1}}},
            headers=finance_headers,
        )
        assert r.status_code == 422
        assert _count(Run) == 0

    def test_malformed_csv_lines_are_reported_by_number_and_the_file_is_refused_whole(
        self, api, finance_headers
    ):
        body = (
            b"transaction_id,booked_at,amount,currency,fee,description\n"
            b"FT-1,2026-11-24T10:00:00+07:00,85000,VND,1100,ok\n"
            b"FT-2,yesterday,85000,VND,1100,bad date\n"
            b"FT-3,2026-11-24T10:00:00+07:00,85.5,VND,0,VND has no decimals\n"
            b"FT-4,2026-11-24T10:00:00+07:00,1000\n"
        )
        r = upload(api, finance_headers, body, "bank_csv")
        assert (r.status_code, r.json()["code"]) == (422, "malformed_statement")
        assert [e["line"] for e in r.json()["errors"]] == [3, 4, 5]
        assert "lines 3, 4, 5" in r.json()["detail"]
        assert api.get("/v1/reconciliation/statements", headers=finance_headers).json()["data"] == []

    def test_a_currency_the_platform_does_not_settle_in_is_refused(self, api, finance_headers):
        body = (
            b"transaction_id,booked_at,amount,currency,fee,description\n"
            b"FT-1,2026-11-24T10:00:00+07:00,1,XAU,0,x\n"
        )
        r = upload(api, finance_headers, body, "bank_csv")
        assert (r.status_code, r.json()["code"], r.json()["errors"][0]["line"]) == (
            422,
            "unsupported_currency",
            2,
        )

    def test_hostile_or_broken_statement_files_are_refused(self, api, finance_headers):
        bomb = (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
            b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">&lol2;</Document>'
        )
        for data, fmt in (
            (bomb, "camt053"),
            (b"<Document>", "camt053"),
            (b"\xff\xfe", "bank_csv"),
            (b"a,b\n1,2\n", "stripe_balance_csv"),
            (b"", "bank_csv"),
        ):
            r = upload(api, finance_headers, data, fmt, "x")
            assert (r.status_code, r.json()["code"]) == (422, "malformed_statement"), (data, r.text)
        assert api.get("/v1/reconciliation/statements", headers=finance_headers).json()["data"] == []
