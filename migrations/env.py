"""Alembic environment: runs the migrations against the URL the caller configured."""

from alembic import context
from sqlalchemy import create_engine, pool

import city.domains  # noqa: F401  (imports every domain, so every model is in the metadata)
from hanoipay.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run the migrations in one transaction on a fresh connection."""
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set"
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
