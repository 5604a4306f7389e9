"""``crmkit plugins``: what is installed, what is enabled, switching them, checking them,
and generating a new one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import click

from crmkit import builtin
from crmkit.app import Crm, kernel_version
from crmkit.cli.context import CliContext, pass_cli
from crmkit.cli.output import echo_json, echo_record, echo_table, json_option
from crmkit.config import set_enabled_plugins
from crmkit.errors import ConfigError, CrmkitError
from crmkit.plugins import KERNEL_PLUGIN, PluginHost, discover, plugin_info


@click.group()
def plugins() -> None:
    """Plugins: list, inspect, enable, disable, check (doctor) and create (new)."""


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
        raise click.ClickException(
            f"{name} is not enabled (enabled: {', '.join(enabled) or 'none'})"
        )
    remaining = [n for n in enabled if n != name]
    try:
        _check(cli, remaining)
    except CrmkitError as exc:
        raise click.ClickException(f"cannot disable {name}: {exc}") from None
    set_enabled_plugins(path, remaining)
    click.echo(f"Disabled {name}; its tables and data stay in the database.")


@plugins.command("new")
@click.argument("name")
@click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
    help="The directory to create (default: ./crmkit-NAME); it must not exist.",
)
def plugins_new(name: str, directory: Path | None) -> None:
    """Generate NAME, a complete plugin package: entry point, hooks, a table and its
    migration branch, a config schema, a command group, README, CHANGELOG and tests."""
    from crmkit.scaffold import ScaffoldError, generate

    target = directory if directory is not None else Path(f"crmkit-{name.replace('_', '-')}")
    try:
        written = generate(name, target, kernel_version=kernel_version(), installed=discover())
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created plugin {name!r} in {target}:")
    for path in written:
        click.echo(f"  {path}")
    click.echo(
        f"Next: cd {target} && pip install -e . && pytest\n"
        f"Then, in a deployment: crmkit plugins enable {name} && crmkit db upgrade"
    )


@plugins.command("doctor")
@json_option
@pass_cli
def plugins_doctor(cli: CliContext, as_json: bool) -> None:
    """Check every installed plugin; explain each problem with its fix; exit 1 on failure.

    For each plugin: its entry point imports, PLUGIN_INFO is valid, it supports this
    crmkit, its dependencies are installed, its hooks match crmkit's (names and
    arguments). With a crmkit.toml: its config table is valid and, if it is enabled, its
    tables are at their migration head.
    """
    from crmkit.cli.plugin_checks import check_plugins

    config = None
    config_problem = ""
    try:
        config = cli.config
    except ConfigError as exc:
        config_problem = str(exc)
    if config is not None and config.path is None:
        config = None  # no deployment here: check the installation only
    reports = check_plugins(discover(), config)
    failed = bool(config_problem) or any(r.status == "fail" for r in reports)
    if as_json:
        echo_json({
            "config": str(config.path) if config else None, "config_error": config_problem
            or None, "ok": not failed,
            "plugins": [{**attrs.asdict(r), "status": r.status} for r in reports],
        })
    else:
        _print_reports(reports, config_problem, config is not None)
    if failed:
        raise SystemExit(1)


def _print_reports(reports: list[Any], config_problem: str, with_deployment: bool) -> None:
    marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}
    if config_problem:
        click.echo(f"[FAIL] config: {config_problem}")
        click.echo("       fix: correct crmkit.toml (`crmkit doctor` says more)")
    elif not with_deployment:
        click.echo("No crmkit.toml here: checking the installed plugins only "
                   "(pass --config to check a deployment's config and migrations).")
    if not reports:
        click.echo("No plugins are installed (pip install crmkit-<name>).")
    for report in reports:
        version = f" {report.version}" if report.version else ""
        origin = f" ({report.distribution}{version})" if report.distribution else ""
        state = ", enabled" if report.enabled else ""
        click.echo(f"{report.plugin}{origin}{state}: {report.status}")
        for check in report.checks:
            click.echo(f"  [{marks[check.status]}] {check.name}: {check.detail}")
            if check.fix and check.status != "ok":
                click.echo(f"         fix: {check.fix}")
