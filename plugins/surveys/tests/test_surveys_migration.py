"""The branch ``surveys`` creates exactly what the models declare, on every backend."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from crmkit.db import Base
from crmkit.migrate import VERSION_TABLE

import crmkit_surveys.models  # noqa: F401  (the models are on Base)


def mine(obj, name, type_, reflected, compare_to):
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return bool(table) and table.startswith("surveys_")


def test_the_migration_matches_the_models(crm):
    with crm.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True, "include_object": mine,
            "version_table": VERSION_TABLE})
        assert list(compare_metadata(context, Base.metadata)) == []
