"""The ``crmkit`` admin tool.

Kernel commands are imported only when invoked (kedro's ``LazyGroup``); plugin command
groups come from the ``register_commands`` hook and are loaded only when a plugin command
is invoked or ``--help`` lists them, so a broken plugin cannot break ``crmkit doctor``.
A :class:`~crmkit.errors.CrmkitError` becomes one line on stderr and exit code 1.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click
from sqlalchemy.exc import DBAPIError

from crmkit.cli.context import CliContext
from crmkit.errors import CrmkitError

__all__ = ["CrmkitGroup", "cli", "main"]

#: Kernel commands: name → "module:attribute", imported on first use.
KERNEL_COMMANDS = {
    "init": "crmkit.cli.init:init",
    "db": "crmkit.cli.db:db",
    "customers": "crmkit.cli.customers:customers",
    "interactions": "crmkit.cli.interactions:interactions",
    "audit": "crmkit.cli.audit:audit",
    "doctor": "crmkit.cli.doctor:doctor",
    "plugins": "crmkit.cli.plugins:plugins",
    "events": "crmkit.cli.events:events",
    "worker": "crmkit.cli.events:worker",
    "workflows": "crmkit.cli.workflows:workflows",
    "rules": "crmkit.cli.rules:rules",
}


class CrmkitGroup(click.Group):
    """Lazy kernel commands, plugin command groups, and readable errors."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*KERNEL_COMMANDS, *self._plugin_commands(ctx, quiet=True)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in KERNEL_COMMANDS:
            module, _, attr = KERNEL_COMMANDS[cmd_name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return self._plugin_commands(ctx, quiet=False).get(cmd_name)

    def _plugin_commands(self, ctx: click.Context, *, quiet: bool) -> dict[str, click.Command]:
        obj = ctx.find_object(CliContext)
        if obj is None and ctx.parent is None and "config_path" in ctx.params:
            # click resolves the subcommand before the group's callback runs, so the
            # context the callback would create does not exist yet: create it here.
            obj = ctx.obj = CliContext(ctx.params["config_path"])
            ctx.call_on_close(obj.close)
        if obj is None:
            return {}
        try:
            return obj.plugin_commands()
        except CrmkitError as exc:
            if quiet:
                return {}
            raise click.ClickException(str(exc)) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CrmkitError as exc:
            raise click.ClickException(str(exc)) from None
        except DBAPIError as exc:
            raise click.ClickException(
                f"database error: {exc.orig}" if exc.orig else f"database error: {exc}"
            ) from None


@click.group(cls=CrmkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c", "--config", "config_path", type=click.Path(dir_okay=False), envvar="CRMKIT_CONFIG",
    help="The deployment's crmkit.toml (default: $CRMKIT_CONFIG, then ./crmkit.toml).",
)
@click.version_option(package_name="crmkit", prog_name="crmkit")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Administer a crmkit deployment: customers, interactions, plugins, the database."""
    if not isinstance(ctx.obj, CliContext):  # not made while resolving a plugin command
        ctx.obj = CliContext(config_path)
        ctx.call_on_close(ctx.obj.close)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="crmkit")
