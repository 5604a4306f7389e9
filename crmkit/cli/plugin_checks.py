"""The checks behind ``crmkit plugins doctor``: is every installed plugin usable here?

Each plugin is checked on its own (a broken one cannot hide the others' problems), in the
order a user would fix things: it imports, it declares itself, it supports this kernel,
what it needs is installed, its hooks match crmkit's specs; and for a deployment: its
config table is valid and, when enabled, its tables are at their migration head.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

import attrs
from packaging.requirements import InvalidRequirement, Requirement

from crmkit import builtin, migrate
from crmkit.app import Crm, kernel_version
from crmkit.config import Config
from crmkit.errors import CrmkitError, PluginError
from crmkit.plugins import (
    KERNEL_PLUGIN,
    InstalledPlugin,
    PluginHost,
    PluginInfo,
    check_kernel,
    plugin_info,
)
from crmkit.schemas import compile_schema, issues_of

__all__ = ["Check", "PluginReport", "check_plugins"]


@attrs.define
class Check:
    """One finding: ``status`` is ok, warn, fail or skip; ``fix`` says what to do."""

    name: str
    status: str = "ok"
    detail: str = ""
    fix: str = ""


@attrs.define
class PluginReport:
    """Everything found about one plugin."""

    plugin: str
    distribution: str | None = None
    version: str | None = None
    enabled: bool = False
    checks: list[Check] = attrs.field(factory=list)

    @property
    def status(self) -> str:
        states = {c.status for c in self.checks}
        return "fail" if "fail" in states else "warn" if "warn" in states else "ok"

    def add(self, name: str, status: str = "ok", detail: str = "", fix: str = "") -> Check:
        check = Check(name, status, detail, fix)
        self.checks.append(check)
        return check


def check_plugins(
    installed: Mapping[str, InstalledPlugin], config: Config | None
) -> list[PluginReport]:
    """A report per installed plugin (and per enabled plugin that is not installed)."""
    enabled = config.plugins_enabled if config else []
    reports = [check_plugin(p, installed, config) for _, p in sorted(installed.items())]
    for name in enabled:
        if name not in installed:
            report = PluginReport(name, enabled=True)
            report.add("installed", "fail", "enabled in the config but not installed",
                       f"pip install crmkit-{name}, or remove {name!r} from plugins.enabled "
                       f"in {config.source if config else 'crmkit.toml'}")
            reports.append(report)
    return reports


def check_plugin(
    entry: InstalledPlugin, installed: Mapping[str, InstalledPlugin], config: Config | None
) -> PluginReport:
    """Check one installed plugin; later checks are skipped when an earlier one fails."""
    name = entry.name
    enabled = config is not None and name in config.plugins_enabled
    report = PluginReport(name, entry.distribution, entry.dist_version, enabled)
    dist = entry.distribution or f"the package that provides {name!r}"
    try:
        plugin = entry.load()
    except PluginError as exc:
        report.add("imports", "fail", exc.message,
                   f"fix the import error, or reinstall {dist} (pip install --force-reinstall "
                   f"{dist}); until then keep {name!r} out of plugins.enabled")
        return report
    report.add("imports", detail=entry.module)
    info = _declaration(report, plugin, dist)
    if info is None:
        return report
    _kernel(report, info, dist)
    _dependencies(report, info, entry, installed)
    host = _hooks(report, plugin, info, installed)
    if config is not None and host is not None:
        _config(report, host, config)
        if enabled and report.status != "fail":
            _migrations(report, info, config, installed)
    return report


def _declaration(report: PluginReport, plugin: object, dist: str) -> PluginInfo | None:
    name = report.plugin
    if getattr(plugin, "PLUGIN_INFO", None) is None:
        report.add("declaration", "warn", "declares no PLUGIN_INFO",
                   f'add PLUGIN_INFO = crmkit.PluginInfo(name="{name}", version=..., '
                   'kernel=...) to the plugin module')
        return PluginInfo(name=name)
    try:
        info = plugin_info(plugin, name)
    except PluginError as exc:
        report.add("declaration", "fail", exc.message,
                   "fix PLUGIN_INFO in the plugin module (or the entry-point name in "
                   "pyproject.toml)")
        return None
    if report.version and info.version != report.version:
        report.add("declaration", "warn",
                   f"PLUGIN_INFO.version is {info.version} but {dist} is {report.version}",
                   "keep PLUGIN_INFO.version and the distribution's version in step")
    else:
        report.add("declaration", detail=f"{info.name} {info.version}")
    return info


def _kernel(report: PluginReport, info: PluginInfo, dist: str) -> None:
    version = kernel_version()
    if not info.kernel:
        report.add("kernel", "warn", "claims no supported crmkit versions",
                   f'set PLUGIN_INFO.kernel, e.g. ">={version.rsplit(".", 1)[0]},<..." '
                   "(see docs/writing-plugins.md, packaging and versioning)")
        return
    try:
        check_kernel(info, version)
    except PluginError as exc:
        report.add("kernel", "fail", exc.message,
                   f"pip install -U {dist} for a release that supports crmkit {version}, or "
                   f"install a crmkit that matches {info.kernel}")
        return
    report.add("kernel", detail=f"crmkit {version} matches {info.kernel}")


def _dependencies(report: PluginReport, info: PluginInfo, entry: InstalledPlugin,
                  installed: Mapping[str, InstalledPlugin]) -> None:
    problems: list[tuple[str, str]] = []
    for dep in info.requires:
        if dep not in installed:
            problems.append((f"requires plugin {dep!r}, which is not installed",
                             f"pip install crmkit-{dep}"))
    for requirement in _distribution_requirements(entry.distribution):
        try:
            have = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            problems.append((f"needs {requirement}, which is not installed",
                             f"pip install '{requirement}'"))
            continue
        if requirement.specifier and not requirement.specifier.contains(have, prereleases=True):
            problems.append((f"needs {requirement}, but {requirement.name} {have} is installed",
                             f"pip install '{requirement}'"))
    if problems:
        report.add("dependencies", "fail", "; ".join(p for p, _ in problems),
                   "; ".join(fix for _, fix in problems))
    else:
        report.add("dependencies", detail="installed")


def _distribution_requirements(distribution: str | None) -> list[Requirement]:
    if not distribution:
        return []
    try:
        declared = metadata.distribution(distribution).requires or []
    except metadata.PackageNotFoundError:
        return []
    found = []
    for line in declared:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            found.append(requirement)
    return found


def _hooks(report: PluginReport, plugin: object, info: PluginInfo,
           installed: Mapping[str, InstalledPlugin]) -> PluginHost | None:
    """Register the plugin (after the plugins it requires) in a fresh host, as at start-up."""
    host = PluginHost(kernel_version())
    host.register(builtin, KERNEL_PLUGIN)
    try:
        for dep in info.requires:
            if dep in installed:
                dep_plugin = installed[dep].load()
                host.register(dep_plugin, dep, attrs.evolve(plugin_info(dep_plugin, dep),
                                                            kernel=""))
        host.register(plugin, report.plugin, attrs.evolve(info, kernel=""))
        host.check()
    except PluginError as exc:
        if exc.plugin != report.plugin:
            report.add("hooks", "skip", f"cannot be checked: {exc}",
                       f"fix plugin {exc.plugin!r} first")
            return None
        report.add("hooks", "fail", exc.message,
                   "fix the hook implementation's name or arguments (crmkit's hooks are "
                   "listed in docs/hooks.md)")
        return None
    hooks = sorted(c.name for c in host.pm.get_hookcallers(plugin) or [])
    report.add("hooks", detail=", ".join(hooks) or "implements no hooks")
    return host


def _config(report: PluginReport, host: PluginHost, config: Config) -> None:
    name = report.plugin
    has_section = name in config.data.get("plugin", {})
    if has_section and not report.enabled:
        report.add("config", "warn", f"{config.source} has [plugin.{name}] but {name!r} is "
                   "not enabled", f"enable it (crmkit plugins enable {name}) or remove the table")
        return
    schemas = [c for c in host.collect("register_config_schema") if c.plugin == name]
    if not schemas:
        if has_section:
            report.add("config", "fail", f"[plugin.{name}] is set but the plugin has no "
                       "settings", f"remove [plugin.{name}] from {config.source}")
        else:
            report.add("config", detail="the plugin has no settings")
        return
    schema = schemas[0].args[0] if schemas[0].args else schemas[0].kwargs["schema"]
    try:
        validator = compile_schema(schema, f"config schema of plugin {name!r}")
    except CrmkitError as exc:
        report.add("config", "fail", f"the plugin's own config schema is broken: {exc}",
                   "report this to the plugin's vendor")
        return
    issues = issues_of(validator, config.plugin_section(name), f"plugin.{name}")
    if issues:
        report.add("config", "fail", "; ".join(map(str, issues[:5])),
                   f"edit [plugin.{name}] in {config.source}")
    else:
        report.add("config", detail=f"[plugin.{name}] is valid")


def _migrations(report: PluginReport, info: PluginInfo, config: Config,
                installed: Mapping[str, InstalledPlugin]) -> None:
    """Start a deployment of just this plugin (and what it requires) to read its branch."""
    names = [*[d for d in info.requires if d in installed], report.plugin]
    sections = config.data.get("plugin", {})
    data: dict[str, Any] = {
        **config.data,
        "plugins": {**config.data.get("plugins", {}), "enabled": names},
        "plugin": {n: sections[n] for n in names if n in sections},
    }
    _probe(report, lambda: Crm(attrs.evolve(config, data=data)))


def _probe(report: PluginReport, start: Callable[[], Crm]) -> None:
    try:
        crm = start()
    except CrmkitError as exc:
        report.add("migrations", "fail", f"cannot start with it: {exc}",
                   "fix the problem above, then run `crmkit plugins doctor` again")
        return
    try:
        branches = {s.branch: s for s in migrate.status(crm)}
    except Exception as exc:  # the database is down, say, which `crmkit doctor` reports
        report.add("migrations", "skip", f"cannot read the database: {exc}",
                   "see `crmkit doctor`")
        return
    finally:
        crm.close()
    state = branches.get(report.plugin)
    if state is None:
        report.add("migrations", detail="the plugin has no tables")
    elif not state.at_head:
        report.add("migrations", "fail",
                   f"branch {state.branch} is at {state.current or 'nothing'}, head is "
                   f"{state.head}", "run `crmkit db upgrade`")
    else:
        report.add("migrations", detail=f"at head ({state.head})")
