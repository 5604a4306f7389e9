"""``crmkit init``: a commented crmkit.toml and a database at head."""

from __future__ import annotations

from pathlib import Path

import click

from crmkit import migrate
from crmkit.app import Crm
from crmkit.config import CONFIG_FILENAME, load_config

TEMPLATE = '''\
# crmkit deployment configuration. Validated before anything runs; every scalar setting
# can be overridden with an environment variable CRMKIT_<SECTION>_<KEY>.

[database]
# A SQLAlchemy URL. The embedded default is SQLite beside this file; in production use
# PostgreSQL, e.g. "postgresql+psycopg://crm@db.internal/crm" (or MariaDB with
# "mysql+pymysql://..."). Never put a password here: name the variable that holds it.
url = "{url}"
# password_env = "CRMKIT_DB_PASSWORD"

[plugins]
# Installed plugins to load, by name (`crmkit plugins list` shows what is installed;
# `crmkit plugins enable NAME` edits this list and keeps these comments).
enabled = []

[events]
# inline: deliver events right after each commit (the embedded default);
# worker: leave them to `crmkit worker` processes (production).
dispatch = "inline"
max_attempts = 10

# Custom customer fields, stored in the customer's attributes and validated on every
# write. Each is a JSON Schema fragment, e.g.:
# [customer_fields.loyalty_id]
# type = "string"
# pattern = "^L[0-9]{{6}}$"

# Settings of each plugin go in its own table, validated against the plugin's schema:
# [plugin.sales]
'''


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option(
    "--database-url",
    default="sqlite:///crmkit.db",
    show_default=True,
    help="Where the data lives; relative SQLite paths are relative to DIRECTORY.",
)
def init(directory: Path, database_url: str) -> None:
    """Create a deployment in DIRECTORY: a commented crmkit.toml and its database."""
    config_file = directory / CONFIG_FILENAME
    if config_file.exists():
        raise click.ClickException(
            f"{config_file} already exists; crmkit init never overwrites a configuration "
            "(run `crmkit db upgrade` to bring its database to head)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    config_file.write_text(TEMPLATE.format(url=database_url.replace('"', '\\"')),
                           encoding="utf-8")
    try:
        crm = Crm(load_config(config_file))
        try:
            migrate.upgrade(crm, progress=lambda b: click.echo(f"Migrating {b} to head..."))
        finally:
            crm.close()
    except Exception:
        config_file.unlink()  # leave nothing half-made behind
        raise
    click.echo(f"Created {config_file} and its database. Next: crmkit -c {config_file} doctor")
