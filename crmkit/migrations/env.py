"""Alembic environment for crmkit: run by ``crmkit db upgrade`` with a live connection."""

from __future__ import annotations

from alembic import context

from crmkit.db import Base
from crmkit.migrate import VERSION_TABLE

config = context.config
connection = config.attributes["connection"]

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)

with context.begin_transaction():
    context.run_migrations()
