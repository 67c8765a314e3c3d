"""Every result kind from constructed data, through the API and a real RQ worker; amounts by hand."""

from datetime import UTC, datetime, timedelta

from hanoipay.db import job_session
from payments import ledger
from payments.payouts import mark_paid, queue_payout
from tests.factories import FINANCE
from tests.reconciliation.conftest import (
    BANK_RULES,
    at_noon,
    bank_day,
    bank_says,
    card_payment,
    days,
    reconcile,
    results,
    stripe_fee,
    today,
    upload,
)


def by_object(found):
    """Result lines keyed by what they are about: the provider's id of the line, else the ledger object."""
    return {
        (r["ledger_object"] if r["provider_line_id"] is None else r["provider_line_id"]): r for r in found
    }


class TestBank:
    def test_each_break_of_a_day_at_the_bank_ends_as_its_own_result(
        self, api, finance_headers, redis_url, merchant
    ):
        day = today()
        bank_day(api, finance_headers, merchant)

        run = reconcile(api, finance_headers, redis_url, "vietqr", day, rules=BANK_RULES)

        found = results(api, finance_headers, run["id"])
        lines = {line["id"]: line for line in _lines(api, finance_headers, found)}
        kinds = {}
        for r in found:
            key = lines[r["provider_line_id"]]["external_id"] if r["provider_line_id"] else r["ledger_object"]
            kinds.setdefault(key, []).append(r["result"])
        btx = _bank_transaction_ids()
        assert kinds == {
            "FT-A": ["matched", "duplicate"],
            "FT-B": ["missing_in_ledger"],
            "FT-C": ["matched"],
            btx["FT-C2"]: ["duplicate"],
            "FT-D": ["fee_mismatch"],
            "FT-E": ["settled_other_day"],
            "FT-F": ["missing_in_ledger"],
            "FT-G": ["amount_mismatch"],
            "FT-H": ["currency_mismatch"],
            btx["FT-I"]: ["missing_at_provider"],
            "FT-K": ["matched"],
        }, kinds
        drift = next(
            r
            for r in found
            if r["provider_line_id"] and lines[r["provider_line_id"]]["external_id"] == "FT-K"
        )
        assert (drift["drift"], drift["reason"]) == (-5, "matched with a drift of -5 within the tolerance")
        fee = next(r for r in found if r["result"] == "fee_mismatch")
        assert (fee["provider_fee"], fee["expected_fee"]) == (3_300, 1_100)
        summary = run["summary"]["results"]
        assert summary["matched"] == {
            "count": 3,
            "provider_amount": 100_000 + 70_000 + 79_995,
            "ledger_amount": 100_000 + 70_000 + 80_000,
        }
        assert (
            summary["amount_mismatch"]["provider_amount"] - summary["amount_mismatch"]["ledger_amount"]
            == 5_000
        )
        assert run["summary"]["exceptions"] == 9
        assert run["summary"]["drift"] == {"count": 1, "amount": -5}

    def test_a_payout_batch_is_matched_against_the_payouts_it_names(
        self, api, finance_headers, redis_url, merchant
    ):
        day = today()
        with job_session() as session:
            payouts = [
                queue_payout(
                    session,
                    source=ledger.receipts_account(session, "vietqr", "VND"),
                    intent_id=None,
                    refund_id=None,
                    bank_bin="970415",
                    account=f"0{i}",
                    amount=a,
                    currency="VND",
                    reason=f"test payout {i}",
                )
                for i, a in enumerate((10_000, 20_000, 30_000))
            ]
        # Money has to be in the collection account before it can leave it.
        bank_says("FT-IN", 60_000, "top up collection account")
        for p in payouts:
            with job_session() as session:
                mark_paid(session, FINANCE, p.id)
        ids = [p.id for p in payouts]
        xml = _camt053(
            [
                _entry("FT-IN", 60_000, "CRDT", datetime.now(UTC), "top up collection account", fee=1_100),
                _batch("BATCH-1", ids[:2], (10_000, 20_000)),
                _entry("FT-OUT3", 30_000, "DBIT", datetime.now(UTC), f"HANOIPAY PAYOUT {ids[2].upper()}"),
            ]
        )
        assert upload(api, finance_headers, xml, "camt053", "statement.xml").status_code == 201
        run = reconcile(api, finance_headers, redis_url, "vietqr", day)
        found = results(api, finance_headers, run["id"])
        batch = [r for r in found if r["rule"] == "group"]
        assert sorted(r["ledger_object"] for r in batch) == sorted(ids[:2])
        assert {r["result"] for r in batch} == {"matched"}
        assert sum(r["ledger_amount"] for r in batch) == -30_000
        single = next(r for r in found if r["ledger_object"] == ids[2])
        assert (single["result"], single["rule"]) == ("matched", "exact")
        receipt = next(r for r in found if r["kind"] == "payment")
        assert receipt["result"] == "missing_in_ledger"  # it paid no payment: money in suspense

    def test_an_empty_day_is_an_empty_successful_run(self, api, finance_headers, redis_url):
        run = reconcile(api, finance_headers, redis_url, "vietqr", today() - timedelta(days=30))
        assert (run["provider_lines"], run["ledger_items"], run["summary"]["lines"]) == (0, 0, 0)
        assert run["progress"]["percent"] == 100


class TestStripe:
    def test_balance_transactions_read_through_the_sdk_end_in_each_result(
        self, api, finance_headers, redis_url, merchant, stripe_fake
    ):
        from payments.refunds import create_refund

        day = today()
        pays = {
            k: card_payment(merchant, a)
            for k, a in {
                "ok": 100_000,
                "fee": 200_000,
                "gone": 50_000,
                "late": 70_000,
                "diff": 90_000,
                "ref": 120_000,
            }.items()
        }
        with job_session() as session:
            refund = create_refund(session, FINANCE, pays["ref"].id, amount=20_000)
        txn = {
            k: stripe_fake.charges[stripe_fake.payment_intents[p.provider_ref]["latest_charge"]][
                "balance_transaction"
            ]
            for k, p in pays.items()
        }
        stripe_fake.edit_balance_transaction(txn["fee"], fee=stripe_fee(200_000) + 1_000)
        stripe_fake.edit_balance_transaction(
            txn["gone"], created=int((datetime.now(UTC) - days(20)).timestamp())
        )
        stripe_fake.edit_balance_transaction(txn["late"], created=int(at_noon(day + days(1)).timestamp()))
        stripe_fake.edit_balance_transaction(txn["diff"], amount=89_000)
        stripe_fake.add_balance_transaction("stripe_fee", -50_000, description="Radar fees")
        payout = stripe_fake._create_payout({"currency": "vnd"})

        run = reconcile(api, finance_headers, redis_url, "stripe", day)

        found = results(api, finance_headers, run["id"])
        got = {}
        for r in found:
            got.setdefault(r["ledger_object"], []).append(r["result"])
        assert got[pays["ok"].id] == ["matched"]
        assert got[pays["ref"].id] == ["matched"]
        assert got[refund.id] == ["matched"]
        assert got[pays["fee"].id] == ["fee_mismatch"]
        assert got[pays["gone"].id] == ["missing_at_provider"]
        assert got[pays["late"].id] == ["settled_other_day"]
        assert got[pays["diff"].id] == ["amount_mismatch"]
        assert got[None] == ["missing_in_ledger"]  # Stripe's own fee, never booked
        assert got[payout["id"]] == ["matched"]  # the payout against the transactions it paid out
        group = next(r for r in found if r["rule"] == "group")
        assert group["provider_amount"] == -payout["amount"] == group["ledger_amount"]
        assert run["summary"]["results"]["matched"]["count"] == 4


def _lines(api, headers, found):
    from hanoipay.db import job_session as js
    from reconciliation.models import ProviderLine

    ids = [r["provider_line_id"] for r in found if r["provider_line_id"]]
    with js() as session:
        return [
            {"id": line.id, "external_id": line.external_id}
            for line in session.query(ProviderLine).filter(ProviderLine.id.in_(ids))
        ]


def _bank_transaction_ids():
    from payments.models import BankTransaction

    with job_session() as session:
        return {t.bank_txn_id: t.id for t in session.query(BankTransaction)}


CAMT = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


def _camt053(entries):
    body = "".join(entries)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{CAMT}"><BkToCstmrStmt>'
        "<GrpHdr><MsgId>STMT-1</MsgId><CreDtTm>2026-11-25T23:00:00+07:00</CreDtTm></GrpHdr>"
        "<Stmt><Id>1</Id><Acct><Id><Othr><Id>1900100200300</Id></Othr></Id><Ccy>VND</Ccy></Acct>"
        f"{body}</Stmt></BkToCstmrStmt></Document>"
    ).encode()


def _entry(ref, amount, direction, at, text, fee=0):
    charges = f'<Chrgs><TtlChrgsAndTaxAmt Ccy="VND">{fee}</TtlChrgsAndTaxAmt></Chrgs>' if fee else ""
    return (
        f'<Ntry><Amt Ccy="VND">{amount}</Amt><CdtDbtInd>{direction}</CdtDbtInd><Sts>BOOK</Sts>'
        f"<BookgDt><DtTm>{at.isoformat()}</DtTm></BookgDt><AcctSvcrRef>{ref}</AcctSvcrRef>{charges}"
        f"<NtryDtls><TxDtls><RmtInf><Ustrd>{text}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
    )


def _batch(ref, payout_ids, amounts):
    details = "".join(
        f'<TxDtls><Refs><EndToEndId>{p}</EndToEndId></Refs><Amt Ccy="VND">{a}</Amt>'
        f"<RmtInf><Ustrd>HANOIPAY PAYOUT</Ustrd></RmtInf></TxDtls>"
        for p, a in zip(payout_ids, amounts, strict=True)
    )
    return (
        f'<Ntry><Amt Ccy="VND">{sum(amounts)}</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>'
        f"<BookgDt><DtTm>{datetime.now(UTC).isoformat()}</DtTm></BookgDt><AcctSvcrRef>{ref}</AcctSvcrRef>"
        f"<NtryDtls><Btch><NbOfTxs>{len(payout_ids)}</NbOfTxs></Btch>{details}</NtryDtls></Ntry>"
    )


class TestStripeReport:
    def test_a_stripe_balance_report_is_reconciled_without_the_api(
        self, api, finance_headers, redis_url, merchant
    ):
        from payments.models import PaymentIntent

        day = today()
        with job_session() as session:
            # A card payment recorded by the core, whose Stripe id the report names.
            intent = session.get(PaymentIntent, _card_intent_without_stripe(merchant))
            stripe_id = intent.provider_ref
        created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        fee = stripe_fee(45_000)
        report = (
            "balance_transaction_id,created_utc,available_on_utc,currency,gross,fee,net,reporting_category,"
            "source_id,payment_intent_id,description\n"
            f"txn_1A,{created},{created},vnd,45000,{fee},{45_000 - fee},charge,ch_1A,{stripe_id},card\n"
            f"txn_1B,{created},{created},vnd,-3000,0,-3000,fee,,,Radar fee\n"
        ).encode()
        r = upload(api, finance_headers, report, "stripe_balance_csv", "balance.csv")
        assert (r.status_code, r.json()["lines"], r.json()["provider"]) == (201, 2, "stripe")
        run = reconcile(api, finance_headers, redis_url, "stripe", day)
        found = {r["ledger_object"]: r for r in results(api, finance_headers, run["id"])}
        assert found[intent.id]["result"] == "matched"
        assert found[intent.id]["provider_fee"] == found[intent.id]["expected_fee"] == fee
        assert found[None]["result"] == "missing_in_ledger"
        assert found[None]["reason"] == "a provider fee the ledger never booked"


def _card_intent_without_stripe(merchant):
    """A succeeded card payment in the ledger, as the Stripe provider posts it (no Stripe needed here)."""
    from payments import intents, transitions
    from payments.models import PaymentIntent
    from tests.factories import ADMIN

    with job_session() as session:
        intent = intents.create_intent(
            session, ADMIN, amount=45_000, currency="VND", purpose="merchant_payment", merchant_id=merchant.id
        )
        intent.provider, intent.provider_ref = "stripe", "pi_3QxBench45000"
        transitions.mark_succeeded(session, intent, 45_000)
        session.flush()
        assert session.get(PaymentIntent, intent.id).status == "succeeded"
        return intent.id
