"""``crmkit plugins``: what is installed, what is enabled, and switching them."""

from __future__ import annotations

from typing import Any

import attrs
import click

from crmkit import builtin
from crmkit.app import Crm, kernel_version
from crmkit.cli.context import CliContext, pass_cli
from crmkit.cli.output import echo_json, echo_record, echo_table, json_option
from crmkit.config import load_config, set_enabled_plugins
from crmkit.errors import CrmkitError
from crmkit.plugins import KERNEL_PLUGIN, PluginHost, discover, plugin_info


@click.group()
def plugins() -> None:
    """Plugins: list what is installed, enable and disable them."""


@plugins.command("list")
@json_option
@pass_cli
def plugins_list(cli: CliContext, as_json: bool) -> None:
    """List installed plugins and whether this deployment enables them."""
    enabled = cli.config.plugins_enabled
    installed = discover()
    rows: list[dict[str, Any]] = [
        {"name": p.name, "distribution": p.distribution, "version": p.dist_version,
         "module": p.module, "enabled": p.name in enabled, "installed": True}
        for p in sorted(installed.values(), key=lambda p: p.name)
    ]
    rows += [{"name": name, "distribution": None, "version": None, "module": None,
              "enabled": True, "installed": False}
             for name in enabled if name not in installed]
    if as_json:
        echo_json(rows)
        return
    echo_table([{**r, "enabled": "yes" if r["enabled"] else "no",
                 "installed": "yes" if r["installed"] else "MISSING"} for r in rows],
               ["name", "version", "enabled", "installed", "distribution"],
               "No plugins are installed (pip install crmkit-<name>).")


@plugins.command("info")
@click.argument("name")
@json_option
@pass_cli
def plugins_info(cli: CliContext, name: str, as_json: bool) -> None:
    """Show what an installed plugin declares and which hooks it implements."""
    installed = discover()
    if name not in installed:
        raise click.ClickException(
            f"no plugin named {name!r} is installed (installed: "
            f"{', '.join(sorted(installed)) or 'none'})"
        )
    entry = installed[name]
    module = entry.load()
    info = plugin_info(module, name)
    host = PluginHost(kernel_version())
    host.register(builtin, KERNEL_PLUGIN)
    host.pm.register(module, name=name)
    hooks = sorted(caller.name for caller in host.pm.get_hookcallers(module) or [])
    data = {
        "name": info.name, "version": info.version, "description": info.description,
        "distribution": entry.distribution, "module": entry.module,
        "kernel": info.kernel or "any", "requires": list(info.requires),
        "enabled": name in cli.config.plugins_enabled, "hooks": hooks,
    }
    if as_json:
        echo_json(data)
    else:
        echo_record(data)


def _config_file(cli: CliContext) -> Any:
    if cli.config.path is None:
        raise click.ClickException("there is no crmkit.toml to edit; run `crmkit init` first")
    return cli.config.path


def _check(cli: CliContext, enabled: list[str]) -> None:
    """Start the deployment with ``enabled`` before writing it, so errors change nothing."""
    data = {**cli.config.data, "plugins": {**cli.config.data.get("plugins", {}),
                                           "enabled": enabled}}
    Crm(attrs.evolve(cli.config, data=data)).close()


@plugins.command("enable")
@click.argument("name")
@pass_cli
def plugins_enable(cli: CliContext, name: str) -> None:
    """Enable an installed plugin (edits crmkit.toml, keeping its comments)."""
    path = _config_file(cli)
    enabled = cli.config.plugins_enabled
    if name in enabled:
        click.echo(f"{name} is already enabled.")
        return
    if name not in discover():
        raise click.ClickException(
            f"no plugin named {name!r} is installed; pip install crmkit-{name} first"
        )
    _check(cli, [*enabled, name])
    set_enabled_plugins(path, [*enabled, name])
    click.echo(f"Enabled {name}. Run `crmkit db upgrade` to create or upgrade its tables.")


@plugins.command("disable")
@click.argument("name")
@pass_cli
def plugins_disable(cli: CliContext, name: str) -> None:
    """Disable a plugin (its tables and data stay in the database)."""
    path = _config_file(cli)
    enabled = cli.config.plugins_enabled
    if name not in enabled:
        raise click.ClickException(f"{name} is not enabled (enabled: {', '.join(enabled) or 'none'})")
    remaining = [n for n in enabled if n != name]
    try:
        _check(cli, remaining)
    except CrmkitError as exc:
        raise click.ClickException(f"cannot disable {name}: {exc}") from None
    set_enabled_plugins(path, remaining)
    click.echo(f"Disabled {name}; its tables and data stay in the database.")
