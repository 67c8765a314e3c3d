"""The ceiling a confirmed wallet payment over HTTP is measured against: the same row writes, by hand.

`bench/payments.py` serves this app with uvicorn exactly as it serves HanoiPay (same worker count) and
loads both with the same wrk script. Each endpoint does the writes of one confirmed wallet payment behind
the same JWT check and the same idempotency work, with no framework of ours in between:

- `POST /ceiling/statements`: one hand-written statement at a time over psycopg in one transaction (the
  idempotency claim, a read of the merchant and the wallet, the intent, the conditional wallet debit, the
  journal entry and its three lines, two hot-account deltas, the event, the outbox row, the stored
  response, the commit);
- `POST /ceiling/function`: the same writes as one call of a PL/pgSQL function (`bench_pay`, created by
  `install_function`), one round trip.

    HANOIPAY_DATABASE_URL=postgresql://... HANOIPAY_JWT_KEYS='{"k": "..."}' \\
        uvicorn bench.ceiling:app --workers 2
"""

import hashlib
import json
import os
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
from fastapi import FastAPI, Header, Request
from fastapi.responses import Response
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, ConfigDict, Field

from hanoipay.auth.service import principal_from_token
from hanoipay.ids import new_id

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
        conn.execute(
            "INSERT INTO event (id, type, merchant_id, object_id, data, created_at)"
            " VALUES (%s, 'payment_intent.succeeded', %s, %s, %s, now())",
            (event_id, body.merchant_id, intent_id, json.dumps(data)),
        )
        conn.execute(
            "INSERT INTO outbox (job, kwargs, created_at) VALUES ('payments.deliver_event', %s, now())",
            (json.dumps({"event_id": event_id}),),
        )
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
