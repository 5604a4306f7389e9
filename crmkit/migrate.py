"""Schema migrations with Alembic: a ``crmkit`` branch and one branch per plugin.

Each plugin registers its versions directory through ``register_migrations``; its branch
label is the plugin's name. ``upgrade`` brings the kernel, then every enabled plugin in
dependency order, to head, and records each plugin in ``plugin_state``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, cast

import attrs
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Table, inspect, select

from crmkit.db import utcnow
from crmkit.errors import CrmkitError, PluginError
from crmkit.models import PluginState
from crmkit.plugins import KERNEL_PLUGIN

if TYPE_CHECKING:
    from crmkit.app import Crm

__all__ = ["BranchStatus", "MigrationError", "VERSION_TABLE", "branches", "status", "upgrade"]

VERSION_TABLE = "crmkit_alembic_version"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class MigrationError(CrmkitError):
    """The database's migration state cannot be read or brought to head."""


@attrs.frozen
class BranchStatus:
    """Where one migration branch stands in the database."""

    branch: str
    current: str | None
    head: str

    @property
    def at_head(self) -> bool:
        return self.current == self.head


def branches(crm: Crm) -> dict[str, Path]:
    """Branch label → versions directory: the kernel's, then each plugin's in order."""
    found: dict[str, Path] = {KERNEL_PLUGIN: MIGRATIONS / "versions"}
    for c in crm.host.collect("register_migrations"):
        path = Path(c.args[0] if c.args else c.kwargs["path"])
        if not path.is_dir():
            raise PluginError(c.plugin, "register_migrations", f"no such directory: {path}")
        found[c.plugin] = path
    order = crm.host.names()
    return dict(sorted(found.items(), key=lambda item: order.index(item[0])))


def alembic_config(crm: Crm, connection: Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # path_separator is Alembic >= 1.16's name; older versions read version_path_separator.
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_path_separator", "os")
    locations = {**branches(crm), **dormant_branches(crm, connection)}
    cfg.set_main_option("version_locations", os.pathsep.join(str(p) for p in locations.values()))
    cfg.attributes["connection"] = connection
    return cfg


def dormant_branches(crm: Crm, connection: Connection | None = None) -> dict[str, Path]:
    """The branches of plugins whose tables the database holds but that are not enabled.

    Disabling a plugin keeps its data, and its rows stay in Alembic's version table: the
    kernel must still know its revisions to read that table. They are known, never
    upgraded. A plugin that is no longer installed cannot be known; ``check_known`` says so.
    """
    from crmkit.app import kernel_version
    from crmkit.plugins import PluginHost, discover

    found: dict[str, Path] = {}
    dormant = set(recorded_plugins(crm, connection)) - set(crm.host.names())
    if not dormant:
        return found
    installed = discover()
    for name in sorted(dormant & set(installed)):
        try:
            host = PluginHost(kernel_version())
            host.register(installed[name].load(), name)
            for c in host.collect("register_migrations"):
                path = Path(c.args[0] if c.args else c.kwargs["path"])
                if path.is_dir():
                    found[name] = path
        except Exception:  # a broken disabled plugin: check_known reports its revisions
            continue
    return found


def check_known(crm: Crm, script: ScriptDirectory, heads: Sequence[str]) -> None:
    """Refuse, with what to do, when the database holds revisions no installed code knows."""
    unknown = []
    for head in heads:
        try:
            script.get_revision(head)
        except CommandError:
            unknown.append(head)
    if unknown:
        missing = sorted(set(recorded_plugins(crm)) - set(crm.host.names())
                         - set(dormant_branches(crm))) or ["an unknown plugin"]
        raise MigrationError(
            f"the database holds migrations ({', '.join(unknown)}) of plugins that are not "
            f"installed: {', '.join(missing)}. Install them again (their tables are "
            "untouched); crmkit cannot migrate this database without their revisions"
        )


def status(crm: Crm) -> list[BranchStatus]:
    """Each branch's revision in the database beside its head."""
    script = ScriptDirectory.from_config(alembic_config(crm))
    with crm.engine.connect() as conn:
        heads = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_heads()
    check_known(crm, script, heads)
    # The version table holds only the heads of the whole graph: once a plugin revision
    # that depends on the kernel's is applied, Alembic deletes the kernel's row. Every
    # branch's current revision is among the heads *and their ancestors*, dependencies
    # included, which is what `alembic current` shows too.
    applied = [rev for rev in script.get_all_current(tuple(heads)) if rev is not None]
    result = []
    for branch in branches(crm):
        tips = script.get_revisions(f"{branch}@head")
        head = tips[0].revision if tips and tips[0] is not None else ""
        mine = sorted(rev.revision for rev in applied if branch in rev.branch_labels)
        result.append(BranchStatus(branch, mine[0] if mine else None, head))
    return result


@contextmanager
def _connection(crm: Crm) -> Iterator[Connection]:
    with crm.engine.begin() as conn:
        yield conn


def upgrade(crm: Crm, progress: Callable[[str], None] | None = None) -> list[BranchStatus]:
    """Bring the kernel and every enabled plugin to head, in dependency order."""
    status(crm)  # refuses a database holding revisions nobody installed knows
    for branch in branches(crm):
        if progress:
            progress(branch)
        with _connection(crm) as conn:
            command.upgrade(alembic_config(crm, conn), f"{branch}@head")
            if branch != KERNEL_PLUGIN:
                _record_plugin(conn, branch, crm.host.infos[branch].version)
    return status(crm)


def _record_plugin(conn: Connection, name: str, version: str) -> None:
    table = cast(Table, PluginState.__table__)
    row = conn.execute(select(table.c.version).where(table.c.name == name)).first()
    if row is None:
        conn.execute(table.insert().values(name=name, version=version, installed_at=utcnow(),
                                           upgraded_at=utcnow()))
    elif row.version != version:
        conn.execute(table.update().where(table.c.name == name)
                     .values(version=version, upgraded_at=utcnow()))


def recorded_plugins(crm: Crm, connection: Connection | None = None) -> dict[str, str]:
    """Plugins that ``plugin_state`` says have tables in this database, with versions.

    Reads through ``connection`` when given (inside a migration, a second connection would
    wait for SQLite's write lock).
    """
    if connection is not None:
        return _recorded(connection)
    with crm.engine.connect() as conn:
        return _recorded(conn)


def _recorded(conn: Connection) -> dict[str, str]:
    if not inspect(conn).has_table(PluginState.__tablename__):
        return {}
    rows = conn.execute(select(PluginState.name, PluginState.version))
    return {row.name: row.version for row in rows}
