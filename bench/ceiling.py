"""The ceiling a confirmed wallet payment over HTTP is measured against: the same row writes, by hand.

`bench/payments.py` serves this app with uvicorn exactly as it serves HanoiPay (same worker count) and
loads both with the same wrk script. Each endpoint does the writes of one confirmed wallet payment behind
the same JWT check and the same idempotency work, with no framework of ours in between:

- `POST /ceiling/statements`: one hand-written statement at a time over psycopg in one transaction (the
  idempotency claim, a read of the merchant and the wallet, the intent, the conditional wallet debit, the
  journal entry and its three lines, two hot-account deltas, the event, the outbox row, the stored
  response, the commit);
- `POST /ceiling/function`: the same writes as one call of a PL/pgSQL function (`bench_pay`, created by
  `install_function`), one round trip;
- `POST /ceiling/bank_webhook`: the writes of one signed bank notification that pays a waiting VietQR
  intent (the transaction row, the receipt's entry, the intent, the payment's entry, the event), behind
  the same signature check;
- `POST /ceiling/refund`: the writes of one partial wallet refund (the refund, the reversal's entry with
  the wallet credited, the intent's refunded amount, the event), behind the same JWT and idempotency work.

    HANOIPAY_DATABASE_URL=postgresql://... HANOIPAY_JWT_KEYS='{"k": "..."}' \\
        uvicorn bench.ceiling:app --workers 2
"""

import hashlib
import json
import os
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import Response
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, ConfigDict, Field

from hanoipay.auth.service import principal_from_token
from hanoipay.http import raw_body
from hanoipay.ids import new_id
from payments.providers.vietqr.webhook import (
    SIGNATURE_HEADER,
    parse_notification,
    references_in,
    verify_signature,
)

FUNCTION = """
CREATE OR REPLACE FUNCTION bench_pay(
    p_owner text, p_key text, p_hash text, p_intent text, p_entry text, p_event text,
    p_merchant text, p_wallet text, p_amount bigint, p_fee_account text
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_merchant_account text; v_fee_bps int; v_wallet_account text; v_fee bigint; v_body text;
    v_existing record;
BEGIN
    INSERT INTO idempotency_key (owner, key, request_hash, expires_at, created_at)
    VALUES (p_owner, p_key, p_hash, now() + interval '24 hours', now()) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        SELECT request_hash, convert_from(response_body, 'UTF8') AS body INTO v_existing
        FROM idempotency_key WHERE owner = p_owner AND key = p_key;
        RETURN v_existing.body;
    END IF;
    SELECT m.account_id, m.fee_bps, w.account_id INTO v_merchant_account, v_fee_bps, v_wallet_account
    FROM merchant m, wallet w WHERE m.id = p_merchant AND w.id = p_wallet AND w.owner_id = p_owner;
    v_fee := (p_amount * v_fee_bps + 5000) / 10000;
    UPDATE account_balance SET posted = posted - p_amount, updated_at = now()
    WHERE account_id = v_wallet_account AND posted - held - p_amount >= 0;
    IF NOT FOUND THEN RAISE EXCEPTION 'insufficient_funds'; END IF;
    INSERT INTO payment_intent (id, merchant_id, payer_id, purpose, amount, currency, status, capture_method,
        provider, wallet_id, amount_capturable, amount_received, amount_refunded, fee_amount,
        amount_collected, metadata, created_by, succeeded_at, updated_at, created_at)
    VALUES (p_intent, p_merchant, p_owner, 'merchant_payment', p_amount, 'VND', 'succeeded', 'automatic',
        'wallet', p_wallet, 0, p_amount, 0, v_fee, 0, '{}', p_owner, now(), now(), now());
    INSERT INTO journal_entry (id, kind, dedupe_key, intent_id, description, posted_at)
    VALUES (p_entry, 'payment', 'payment:' || p_intent, p_intent, 'merchant_payment ' || p_intent, now());
    INSERT INTO balance_delta (account_id, amount)
    VALUES (v_merchant_account, p_amount - v_fee), (p_fee_account, v_fee);
    INSERT INTO journal_line (entry_id, account_id, currency, amount, posted_at)
    VALUES (p_entry, v_wallet_account, 'VND', p_amount, now()),
           (p_entry, v_merchant_account, 'VND', v_fee - p_amount, now()),
           (p_entry, p_fee_account, 'VND', -v_fee, now());
    INSERT INTO event (id, type, merchant_id, object_id, data, created_at)
    VALUES (p_event, 'payment_intent.succeeded', p_merchant, p_intent,
            jsonb_build_object('id', p_intent, 'amount', p_amount, 'status', 'succeeded'), now());
    INSERT INTO outbox (job, kwargs, created_at)
    VALUES ('payments.deliver_event', jsonb_build_object('event_id', p_event), now());
    v_body := json_build_object('id', p_intent, 'object', 'payment_intent', 'merchant_id', p_merchant,
        'amount', p_amount, 'currency', 'VND', 'status', 'succeeded', 'fee_amount', v_fee)::text;
    UPDATE idempotency_key SET status_code = 201, response_body = convert_to(v_body, 'UTF8')
    WHERE owner = p_owner AND key = p_key;
    RETURN v_body;
END $$;
"""


def install_function(dsn: str) -> None:
    """Create (or replace) `bench_pay` in the benchmark's database."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(FUNCTION)


class PaymentIn(BaseModel):
    """The same body HanoiPay takes for a confirmed wallet payment."""

    model_config = ConfigDict(extra="forbid")
    amount: int = Field(gt=0)
    currency: str
    merchant_id: str
    purpose: str
    provider: str
    wallet_id: str
    confirm: bool


app = FastAPI()
_pool: ConnectionPool | None = None
_fee_account: str | None = None


def _connections() -> ConnectionPool:
    global _pool, _fee_account
    if _pool is None:
        dsn = os.environ["HANOIPAY_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        _pool = ConnectionPool(dsn, min_size=4, max_size=20, open=True)
        with _pool.connection() as conn:
            row = conn.execute(
                "SELECT id FROM ledger_account WHERE code = 'platform_fee_revenue:VND'"
            ).fetchone()
            assert row is not None, "run a payment first so the fee revenue account exists"
            _fee_account = row[0]
    return _pool


def _fingerprint(body: PaymentIn) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def _caller(authorization: str) -> str:
    return principal_from_token(authorization.removeprefix("Bearer ")).id


@app.post("/ceiling/statements", status_code=201)
def statements(
    body: PaymentIn,
    request: Request,
    authorization: Annotated[str, Header()],
    idempotency_key: Annotated[str, Header()],
) -> Response:
    """A confirmed wallet payment, one hand-written statement at a time, in one transaction."""
    owner = _caller(authorization)
    intent_id, entry_id, event_id = new_id("pi"), new_id("je"), new_id("evt")
    with _connections().connection() as conn, conn.transaction():
        claimed = conn.execute(
            "INSERT INTO idempotency_key (owner, key, request_hash, expires_at, created_at)"
            " VALUES (%s, %s, %s, now() + interval '24 hours', now()) ON CONFLICT DO NOTHING RETURNING key",
            (owner, idempotency_key, _fingerprint(body)),
        ).fetchone()
        if claimed is None:
            stored = conn.execute(
                "SELECT response_body FROM idempotency_key WHERE owner = %s AND key = %s",
                (owner, idempotency_key),
            ).fetchone()
            return Response(stored[0] if stored else b"", status_code=201, media_type="application/json")
        row = conn.execute(
            "SELECT m.account_id, m.fee_bps, w.account_id FROM merchant m, wallet w"
            " WHERE m.id = %s AND w.id = %s AND w.owner_id = %s",
            (body.merchant_id, body.wallet_id, owner),
        ).fetchone()
        assert row is not None
        merchant_account, fee_bps, wallet_account = row
        fee = (body.amount * fee_bps + 5_000) // 10_000
        debited = conn.execute(
            "UPDATE account_balance SET posted = posted - %s, updated_at = now()"
            " WHERE account_id = %s AND posted - held - %s >= 0 RETURNING account_id",
            (body.amount, wallet_account, body.amount),
        ).fetchone()
        assert debited is not None, "insufficient funds"
        conn.execute(
            "INSERT INTO payment_intent (id, merchant_id, payer_id, purpose, amount, currency, status,"
            " capture_method, provider, wallet_id, amount_capturable, amount_received, amount_refunded,"
            " fee_amount, amount_collected, metadata, created_by, succeeded_at, updated_at, created_at)"
            " VALUES (%s, %s, %s, 'merchant_payment', %s, 'VND', 'succeeded', 'automatic', 'wallet', %s,"
            " 0, %s, 0, %s, 0, '{}', %s, now(), now(), now())",
            (intent_id, body.merchant_id, owner, body.amount, body.wallet_id, body.amount, fee, owner),
        )
        conn.execute(
            "INSERT INTO journal_entry (id, kind, dedupe_key, intent_id, description, posted_at)"
            " VALUES (%s, 'payment', %s, %s, %s, now())",
            (entry_id, f"payment:{intent_id}", intent_id, f"merchant_payment {intent_id}"),
        )
        conn.execute(
            "INSERT INTO balance_delta (account_id, amount) VALUES (%s, %s), (%s, %s)",
            (merchant_account, body.amount - fee, _fee_account, fee),
        )
        conn.execute(
            "INSERT INTO journal_line (entry_id, account_id, currency, amount, posted_at)"
            " VALUES (%s, %s, 'VND', %s, now()), (%s, %s, 'VND', %s, now()), (%s, %s, 'VND', %s, now())",
            (entry_id, wallet_account, body.amount, entry_id, merchant_account, fee - body.amount,
             entry_id, _fee_account, -fee),
        )  # fmt: skip
        data = {"id": intent_id, "amount": body.amount, "status": "succeeded"}
        _publish(conn, event_id, "payment_intent.succeeded", body.merchant_id, intent_id, data)
        answer = _answer(intent_id, body, fee)
        conn.execute(
            "UPDATE idempotency_key SET status_code = 201, response_body = %s WHERE owner = %s AND key = %s",
            (answer, owner, idempotency_key),
        )
    return Response(answer, status_code=201, media_type="application/json")


@app.post("/ceiling/function", status_code=201)
def function(
    body: PaymentIn,
    authorization: Annotated[str, Header()],
    idempotency_key: Annotated[str, Header()],
) -> Response:
    """The same payment as one call of a PL/pgSQL function: one round trip."""
    owner = _caller(authorization)
    pool = _connections()
    with pool.connection() as conn:
        answer = conn.execute(
            "SELECT bench_pay(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (owner, idempotency_key, _fingerprint(body), new_id("pi"), new_id("je"), new_id("evt"),
             body.merchant_id, body.wallet_id, body.amount, _fee_account),
        ).fetchone()  # fmt: skip
    assert answer is not None
    return Response(answer[0], status_code=201, media_type="application/json")


class RefundIn(BaseModel):
    """The same body HanoiPay takes for a refund."""

    model_config = ConfigDict(extra="forbid")
    payment_intent: str
    amount: int = Field(gt=0)
    reason: str | None = None


def _account_id(conn: psycopg.Connection[Any], code: str) -> str:
    row = conn.execute("SELECT id FROM ledger_account WHERE code = %s", (code,)).fetchone()
    assert row is not None, code
    return str(row[0])


def _publish(
    conn: psycopg.Connection[Any],
    event_id: str,
    event_type: str,
    merchant_id: str,
    object_id: str,
    data: dict[str, Any],
) -> None:
    """The event and the outbox row that delivers it."""
    conn.execute(
        "INSERT INTO event (id, type, merchant_id, object_id, data, created_at)"
        " VALUES (%s, %s, %s, %s, %s, now())",
        (event_id, event_type, merchant_id, object_id, json.dumps(data)),
    )
    conn.execute(
        "INSERT INTO outbox (job, kwargs, created_at) VALUES ('payments.deliver_event', %s, now())",
        (json.dumps({"event_id": event_id}),),
    )


def _post(
    conn: psycopg.Connection[Any], kind: str, key: str, intent_id: str | None, lines: list[tuple[str, int]]
) -> str:
    """One entry, its lines, and the hot accounts' deltas (the wallet's balance row is updated apart)."""
    entry_id = new_id("je")
    conn.execute(
        "INSERT INTO journal_entry (id, kind, dedupe_key, intent_id, description, posted_at)"
        " VALUES (%s, %s, %s, %s, %s, now())",
        (entry_id, kind, key, intent_id, kind),
    )
    conn.execute(
        "INSERT INTO journal_line (entry_id, account_id, currency, amount, posted_at)"
        " SELECT %s, a, 'VND', m, now() FROM unnest(%s::text[], %s::bigint[]) AS l(a, m)",
        (entry_id, [a for a, _ in lines], [m for _, m in lines]),
    )
    return entry_id


@app.post("/ceiling/bank_webhook")
def bank_webhook(request: Request, body: Annotated[bytes, Depends(raw_body)]) -> Response:
    """A signed bank notification paying a waiting VietQR intent, one statement at a time."""
    verify_signature(request.headers.get(SIGNATURE_HEADER), body)
    note = parse_notification(body)
    reference = references_in(note.description)[0]
    with _connections().connection() as conn, conn.transaction():
        txn_id = new_id("btx")
        inserted = conn.execute(
            "INSERT INTO bank_transaction (id, bank_txn_id, account, amount, currency, description,"
            " occurred_at, status, created_at) VALUES (%s, %s, %s, %s, 'VND', %s, %s, 'received', now())"
            " ON CONFLICT (bank_txn_id) DO NOTHING RETURNING id",
            (txn_id, note.transaction_id, note.account, note.amount, note.description, note.occurred_at),
        ).fetchone()
        if inserted is None:
            return Response(b'{"received":true,"duplicate":true}', media_type="application/json")
        clearing, receipts = (
            _account_id(conn, "provider_clearing:vietqr:VND"),
            _account_id(conn, "unapplied_receipts:vietqr:VND"),
        )
        _post(conn, "bank_receipt", f"bank_receipt:{note.transaction_id}", None,
              [(clearing, note.amount), (receipts, -note.amount)])  # fmt: skip
        intent = conn.execute(
            "SELECT i.id, i.merchant_id, m.account_id, m.fee_bps FROM payment_intent i"
            " JOIN merchant m ON m.id = i.merchant_id WHERE i.reference = %s FOR UPDATE OF i",
            (reference,),
        ).fetchone()
        assert intent is not None
        intent_id, merchant_id, payable, fee_bps = intent
        fee = (note.amount * fee_bps + 5_000) // 10_000
        conn.execute(
            "UPDATE payment_intent SET status = 'succeeded', amount_collected = %s, amount_received = %s,"
            " fee_amount = %s, succeeded_at = now(), updated_at = now() WHERE id = %s",
            (note.amount, note.amount, fee, intent_id),
        )
        fee_account = _fee_account or ""
        lines = [(receipts, note.amount), (payable, fee - note.amount), (fee_account, -fee)]
        _post(conn, "payment", f"payment:{intent_id}", intent_id, lines)
        conn.execute(
            "INSERT INTO balance_delta (account_id, amount) SELECT a, m FROM unnest(%s::text[], %s::bigint[])"
            " AS d(a, m)",
            ([clearing, receipts, receipts, payable, _fee_account], [note.amount, note.amount, -note.amount,
             note.amount - fee, fee]),
        )  # fmt: skip
        _publish(conn, new_id("evt"), "payment_intent.succeeded", merchant_id, intent_id, {"id": intent_id})
        conn.execute("UPDATE bank_transaction SET status = 'applied', intent_id = %s WHERE id = %s",
                     (intent_id, txn_id))  # fmt: skip
    answer = {"received": True, "duplicate": False, "status": "applied", "payment_intent": intent_id}
    return Response(json.dumps(answer).encode(), media_type="application/json")


@app.post("/ceiling/refund", status_code=201)
def refund(
    body: RefundIn,
    authorization: Annotated[str, Header()],
    idempotency_key: Annotated[str, Header()],
) -> Response:
    """A partial wallet refund, one hand-written statement at a time, in one transaction."""
    owner = _caller(authorization)
    with _connections().connection() as conn, conn.transaction():
        claimed = conn.execute(
            "INSERT INTO idempotency_key (owner, key, request_hash, expires_at, created_at)"
            " VALUES (%s, %s, %s, now() + interval '24 hours', now()) ON CONFLICT DO NOTHING RETURNING key",
            (owner, idempotency_key, hashlib.sha256(body.model_dump_json().encode()).hexdigest()),
        ).fetchone()
        assert claimed is not None
        row = conn.execute(
            "SELECT i.merchant_id, i.amount_received, i.amount_refunded, i.fee_amount, w.account_id,"
            " m.account_id FROM payment_intent i JOIN wallet w ON w.id = i.wallet_id"
            " JOIN merchant m ON m.id = i.merchant_id WHERE i.id = %s FOR UPDATE OF i",
            (body.payment_intent,),
        ).fetchone()
        assert row is not None
        merchant_id, received, refunded, fee, wallet_account, payable = row
        assert body.amount <= received - refunded
        fee_back = fee * (refunded + body.amount) // received - fee * refunded // received
        refund_id = new_id("re")
        conn.execute(
            "INSERT INTO refund (id, intent_id, amount, currency, fee_refunded, status, reason, created_by,"
            " created_at) VALUES (%s, %s, %s, 'VND', %s, 'succeeded', %s, %s, now())",
            (refund_id, body.payment_intent, body.amount, fee_back, body.reason, owner),
        )
        conn.execute(
            "UPDATE account_balance SET posted = posted + %s, updated_at = now() WHERE account_id = %s",
            (body.amount, wallet_account),
        )
        fee_account = _fee_account or ""
        lines = [(wallet_account, -body.amount), (payable, body.amount - fee_back), (fee_account, fee_back)]
        _post(conn, "refund", f"refund:{refund_id}", body.payment_intent, lines)
        conn.execute(
            "INSERT INTO balance_delta (account_id, amount) VALUES (%s, %s), (%s, %s)",
            (payable, fee_back - body.amount, _fee_account, -fee_back),
        )
        conn.execute(
            "UPDATE payment_intent SET amount_refunded = amount_refunded + %s, updated_at = now()"
            " WHERE id = %s",
            (body.amount, body.payment_intent),
        )
        _publish(conn, new_id("evt"), "charge.refunded", merchant_id, refund_id, {"id": refund_id})
        answer = json.dumps({"id": refund_id, "object": "refund", "amount": body.amount}).encode()
        conn.execute(
            "UPDATE idempotency_key SET status_code = 201, response_body = %s WHERE owner = %s AND key = %s",
            (answer, owner, idempotency_key),
        )
    return Response(answer, status_code=201, media_type="application/json")


def _answer(intent_id: str, body: PaymentIn, fee: int) -> bytes:
    document: dict[str, Any] = {
        "id": intent_id,
        "object": "payment_intent",
        "merchant_id": body.merchant_id,
        "amount": body.amount,
        "currency": body.currency,
        "status": "succeeded",
        "fee_amount": fee,
        "created_at": datetime.now(UTC).isoformat(),
    }
    return json.dumps(document).encode()
