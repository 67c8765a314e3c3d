"""Migration 0010 carries existing data over: merchants' profiles, and pending payouts' money moved to
payout clearing so that confirming them after the upgrade balances."""

from alembic import command
from sqlalchemy import create_engine, make_url, pool, text

from hanoipay.runtime import alembic_config

SUMS = (
    "SELECT a.code, sum(l.amount) FROM journal_line l JOIN ledger_account a ON a.id = l.account_id"
    " GROUP BY a.code ORDER BY a.code"
)


def test_merchants_and_pending_payouts_survive_the_upgrade_and_the_downgrade(database_url):
    url = make_url(database_url)
    scratch = url.set(database="hanoipay_migration_data")
    admin = create_engine(url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS hanoipay_migration_data"))
        conn.execute(text("CREATE DATABASE hanoipay_migration_data"))
    try:
        config = alembic_config(scratch.render_as_string(hide_password=False))
        engine = create_engine(scratch, poolclass=pool.NullPool)
        command.upgrade(config, "0003")
        with engine.begin() as conn:
            for account, code in (
                ("acct_p", "merchant_payable:mer_1"),
                ("acct_r", "unapplied_receipts:vietqr:VND"),
            ):
                conn.execute(
                    text(
                        "INSERT INTO ledger_account (id, code, name, type, currency, balance_mode,"
                        " created_at) VALUES (:id, :code, :code, 'liability', 'VND', 'deferred', now())"
                    ),
                    {"id": account, "code": code},
                )
                conn.execute(
                    text(
                        "INSERT INTO account_balance (account_id, posted, held, non_negative, updated_at)"
                        " VALUES (:id, 0, 0, false, now())"
                    ),
                    {"id": account},
                )
            conn.execute(
                text(
                    "INSERT INTO merchant (id, name, kind, fee_bps, currency, payout_bank_bin,"
                    " payout_account, payout_account_name, account_id, overpayment_policy, created_at)"
                    " VALUES ('mer_1', 'Lan', 'market_vendor', 100, 'VND', '970436', '0011002233445',"
                    " 'Nguyen Thi Lan', 'acct_p', 'refund', now())"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO payout (id, bank_bin, account, amount, currency, reason, status,"
                    " created_at) VALUES"
                    " ('po_1', '970415', '101010101010', 15000, 'VND', 'overpayment', 'pending', now()),"
                    " ('po_2', '970415', '101010101010', 9000, 'VND', 'old refund', 'paid', now())"
                )
            )
        command.upgrade(config, "0010")
        with engine.connect() as conn:
            profile = conn.execute(
                text("SELECT kind, payout_account, payout_account_name, verification FROM merchant_profile")
            ).one()
            assert tuple(profile) == ("market_vendor", "0011002233445", "NGUYEN THI LAN", "unverified")
            sources = dict(conn.execute(text("SELECT id, source_account_id FROM payout")).all())
            assert sources == {"po_1": "acct_r", "po_2": "acct_r"}
            moved = conn.execute(text(SUMS)).all()
            # Only the pending payout moves: out of receipts (a debit) into payout clearing (a credit).
            assert [tuple(r) for r in moved] == [
                ("payout_clearing:VND", -15000),
                ("unapplied_receipts:vietqr:VND", 15000),
            ]
        command.downgrade(config, "0003")
        with engine.connect() as conn:
            merchant = conn.execute(text("SELECT kind, payout_account FROM merchant")).one()
            assert tuple(merchant) == ("market_vendor", "0011002233445")
            net = conn.execute(text("SELECT coalesce(sum(amount), 0) FROM journal_line")).scalar()
            assert net == 0
            balances = conn.execute(text(SUMS)).all()
            assert {code: int(total) for code, total in balances} == {
                "payout_clearing:VND": 0,
                "unapplied_receipts:vietqr:VND": 0,
            }
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS hanoipay_migration_data WITH (FORCE)"))
        admin.dispose()
