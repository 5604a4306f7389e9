"""What every command shares: the config path and a lazily built deployment."""

from __future__ import annotations

import click

from crmkit.app import Crm
from crmkit.config import Config, load_config

__all__ = ["CliContext", "pass_cli"]


class CliContext:
    """Builds the :class:`~crmkit.Crm` on first use, so ``--help`` needs no database."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None
        self._crm: Crm | None = None
        self._plugin_commands: dict[str, click.Command] | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def crm(self) -> Crm:
        if self._crm is None:
            self._crm = Crm(self.config)
        return self._crm

    def plugin_commands(self) -> dict[str, click.Command]:
        """Commands that enabled plugins contribute, by name."""
        if self._plugin_commands is None:
            commands: dict[str, click.Command] = {}
            for c in self.crm.host.collect("register_commands"):
                command = c.args[0] if c.args else c.kwargs["command"]
                if not isinstance(command, click.Command) or not command.name:
                    raise click.ClickException(
                        f"plugin {c.plugin!r} registered {command!r}, not a named click command"
                    )
                commands[command.name] = command
            self._plugin_commands = commands
        return self._plugin_commands

    def close(self) -> None:
        if self._crm is not None:
            self._crm.close()


pass_cli = click.make_pass_decorator(CliContext)


def default_actor() -> str:
    """Who the audit trail names for CLI changes: ``$CRMKIT_ACTOR`` or ``cli:<user>``."""
    import getpass
    import os

    if actor := os.environ.get("CRMKIT_ACTOR"):
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
