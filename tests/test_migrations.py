"""The migrations build the schema from empty to head, and take it back down."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, make_url, pool, text

from hanoipay.db import Base
from hanoipay.runtime import alembic_config


def test_upgrade_downgrade_round_trip_matches_the_models(database_url):
    url = make_url(database_url)
    scratch = url.set(database="hanoipay_migrations")
    admin = create_engine(url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS hanoipay_migrations"))
        conn.execute(text("CREATE DATABASE hanoipay_migrations"))
    try:
        config = alembic_config(scratch.render_as_string(hide_password=False))
        engine = create_engine(scratch, poolclass=pool.NullPool)
        command.upgrade(config, "head")
        with engine.connect() as conn:
            assert "payment_intent" in inspect(conn).get_table_names()
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            assert diff == [], f"models and migrations differ: {diff}"
        command.downgrade(config, "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        command.upgrade(config, "head")
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS hanoipay_migrations WITH (FORCE)"))
        admin.dispose()
