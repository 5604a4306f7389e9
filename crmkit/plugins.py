"""Plugin discovery, validation and the typed hook facade.

Plugins are found through the ``entrypoints`` package in the entry-point group ``crmkit``
(the entry-point name is the plugin's name). Which of them load is decided by the config's
``plugins.enabled`` (or its override, ``CRMKIT_PLUGINS_ENABLED``). Every problem stops start-up
with a :class:`~crmkit.errors.PluginError` that names the plugin and what to do.

Core code never calls ``pm.hook.x(...)`` directly: :class:`PluginHost` has one typed method
per hook (the tox 4 pattern), which skips hooks nobody implements and names the plugin
when an implementation raises.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import attrs
import entrypoints
import pluggy
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from crmkit import hookspecs
from crmkit.errors import CrmkitError, PluginError

if TYPE_CHECKING:
    from crmkit.app import Crm
    from crmkit.events import Event
    from crmkit.models import Customer, Interaction, WorkflowInstance, WorkflowStep
    from crmkit.uow import Transaction
    from crmkit.workflow import Transition

__all__ = [
    "ENTRY_POINT_GROUP",
    "InstalledPlugin",
    "PluginHost",
    "PluginInfo",
    "discover",
    "hookimpl",
    "resolve_order",
]

ENTRY_POINT_GROUP = "crmkit"
KERNEL_PLUGIN = "crmkit"

hookimpl = pluggy.HookimplMarker(hookspecs.PROJECT_NAME)


@attrs.frozen
class PluginInfo:
    """What a plugin declares about itself, as ``PLUGIN_INFO`` in its module.

    :param name: the plugin's name, also its entry-point name and table prefix.
    :param version: the plugin's own version.
    :param kernel: a PEP 440 specifier of the crmkit versions it supports.
    :param requires: names of plugins it depends on (loaded first, must be enabled).
    :param hookspecs: a module or class of hookspecs the plugin publishes for others.
    :param description: one line for ``crmkit plugins list``.
    """

    name: str
    version: str = "0"
    kernel: str = ""
    requires: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    hookspecs: Any = None
    description: str = ""


@attrs.frozen
class InstalledPlugin:
    """An entry point in the ``crmkit`` group: a plugin that can be enabled."""

    name: str
    module: str
    distribution: str | None
    dist_version: str | None
    entry_point: entrypoints.EntryPoint = attrs.field(eq=False, repr=False)

    def load(self) -> object:
        try:
            return self.entry_point.load()
        except Exception as exc:
            raise PluginError(
                self.name,
                None,
                f"its module {self.module!r} failed to import ({type(exc).__name__}: {exc}); "
                f"reinstall {self.distribution or 'the package'} or remove "
                f"{self.name!r} from plugins.enabled",
            ) from exc


def discover() -> dict[str, InstalledPlugin]:
    """Every plugin installed in this environment, by name (nothing is imported)."""
    found: dict[str, InstalledPlugin] = {}
    for ep in entrypoints.get_group_all(ENTRY_POINT_GROUP):
        distro = getattr(ep, "distro", None)
        found.setdefault(
            ep.name,
            InstalledPlugin(
                name=ep.name,
                module=ep.module_name,
                distribution=getattr(distro, "name", None),
                dist_version=getattr(distro, "version", None),
                entry_point=ep,
            ),
        )
    return found


def plugin_info(obj: object, name: str) -> PluginInfo:
    """The plugin's declared :class:`PluginInfo`, or a default one for ad-hoc plugins."""
    info = getattr(obj, "PLUGIN_INFO", None)
    if info is None:
        return PluginInfo(name=name)
    if not isinstance(info, PluginInfo):
        raise PluginError(name, None, "PLUGIN_INFO must be a crmkit.PluginInfo instance")
    if info.name != name:
        raise PluginError(
            name,
            None,
            f"PLUGIN_INFO names it {info.name!r} but it is registered as {name!r}; "
            "make the entry-point name and PLUGIN_INFO.name agree",
        )
    return info


def check_kernel(info: PluginInfo, kernel_version: str) -> None:
    if not info.kernel:
        return
    try:
        spec = SpecifierSet(info.kernel)
    except InvalidSpecifier as exc:
        raise PluginError(
            info.name, None, f"PLUGIN_INFO.kernel {info.kernel!r} is not a version specifier"
        ) from exc
    if not spec.contains(Version(kernel_version), prereleases=True):
        raise PluginError(
            info.name,
            None,
            f"supports crmkit {info.kernel} but this is crmkit {kernel_version}; "
            f"install a version of the plugin made for crmkit {kernel_version}",
        )


def resolve_order(infos: Mapping[str, PluginInfo]) -> list[str]:
    """Plugin names in dependency order (dependencies first); errors name the plugin."""
    for info in infos.values():
        for dep in info.requires:
            if dep not in infos:
                raise PluginError(
                    info.name,
                    None,
                    f"requires plugin {dep!r}, which is not enabled; install it and add "
                    f"{dep!r} to plugins.enabled, or disable {info.name!r}",
                )
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            cycle = " -> ".join((*path[path.index(name):], name))
            raise PluginError(
                name,
                None,
                f"dependency cycle: {cycle}; plugins cannot require each other, remove one of "
                "these from PLUGIN_INFO.requires (talk through events or a published hookspec "
                "instead)",
            )
        state[name] = "active"
        for dep in infos[name].requires:
            visit(dep, (*path, name))
        state[name] = "done"
        order.append(name)

    for name in sorted(infos):
        visit(name, ())
    return order


@attrs.frozen
class Contribution:
    """One thing a plugin registered through a ``register_*`` hook."""

    plugin: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class PluginHost:
    """The plugin manager of one deployment, with one typed method per hook."""

    def __init__(self, kernel_version: str) -> None:
        self.kernel_version = kernel_version
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._live: dict[str, pluggy.HookCaller] = {}
        self._blame_index: dict[types.CodeType, list[tuple[object, str]]] | None = None

    # -- registration --------------------------------------------------------------------

    def register(self, plugin: object, name: str, info: PluginInfo | None = None) -> None:
        """Register ``plugin`` (a module or object with ``@hookimpl`` functions) as ``name``."""
        info = info or plugin_info(plugin, name)
        check_kernel(info, self.kernel_version)
        if self.pm.has_plugin(name):
            raise PluginError(
                name,
                None,
                "a plugin of that name is already registered; every plugin needs its own "
                "name (the kernel's is 'crmkit')",
            )
        if info.hookspecs is not None:
            self._add_hookspecs(name, info.hookspecs)
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise self._invalid_impl(name, exc) from exc
        except ValueError as exc:
            raise PluginError(name, None, str(exc)) from exc
        self.infos[name] = info
        self._refresh()

    def _add_hookspecs(self, name: str, specs: Any) -> None:
        """Add the hookspecs plugin ``name`` publishes; errors name whoever is at fault."""
        try:
            self.pm.add_hookspecs(specs)
        except pluggy.PluginValidationError as exc:
            # An already registered plugin implements one of these hooks wrongly.
            culprit = self.pm.get_name(exc.plugin) or repr(exc.plugin)
            raise self._invalid_impl(culprit, exc) from exc
        except ValueError as exc:
            raise PluginError(
                name,
                None,
                f"cannot publish its hookspecs: {exc}; give PLUGIN_INFO.hookspecs a module or "
                "class whose functions are marked @crmkit.hookspecs.hookspec and whose names "
                "no other hook uses (prefix them with the plugin's name)",
            ) from exc

    def _invalid_impl(self, name: str, exc: pluggy.PluginValidationError) -> PluginError:
        """A :class:`PluginError` for a hook implementation pluggy refused (bad arguments)."""
        match = re.search(r"for hook '(\w+)'", str(exc))
        hook = match.group(1) if match else None
        accepted = ""
        caller = getattr(self.pm.hook, hook, None) if hook else None
        if caller is not None and caller.spec is not None:
            accepted = f" ({hook} accepts {', '.join(caller.spec.argnames) or 'no arguments'})"
        return PluginError(name, None, f"{exc}; fix the hook implementation's arguments{accepted}")

    def register_all(self, plugins: Mapping[str, object]) -> None:
        """Register several plugins in dependency order and validate them together."""
        infos = {name: plugin_info(obj, name) for name, obj in plugins.items()}
        known = {**self.infos, **infos}
        order = resolve_order(known)
        for name in order:
            if name in infos:
                self.register(plugins[name], name, infos[name])
        self.check()

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.infos.pop(name, None)
        self._refresh()

    def check(self) -> None:
        """Reject implementations whose name matches no hookspec (a misspelled hook)."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            name = self.pm.get_name(exc.plugin) or repr(exc.plugin)
            match = re.search(r"unknown hook '(\w+)'", str(exc))
            hook = match.group(1) if match else None
            known = [n for n, c in vars(self.pm.hook).items()
                     if isinstance(c, pluggy.HookCaller) and c.spec is not None]
            close = difflib.get_close_matches(hook, known, n=1) if hook else []
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise PluginError(
                name,
                None,
                f"{exc}; {hint}rename it to a hook crmkit defines (see docs/hooks.md) or mark "
                "it @hookimpl(optionalhook=True) if it answers another plugin's hookspec",
            ) from exc

    def names(self) -> list[str]:
        """Registered plugin names in registration (dependency) order."""
        return list(self.infos)

    def _refresh(self) -> None:
        self._live = {
            name: caller
            for name, caller in vars(self.pm.hook).items()
            if isinstance(caller, pluggy.HookCaller) and caller.get_hookimpls()
        }
        self._blame_index = None

    # -- calling ----------------------------------------------------------------------

    def implementations(self, hook: str) -> list[tuple[str, Callable[..., Any], list[str]]]:
        """``(plugin, function, argnames)`` for ``hook``, in pluggy's call order."""
        caller = self._live.get(hook)
        if caller is None:
            return []
        return [
            (impl.plugin_name, impl.function, list(impl.argnames))
            for impl in reversed(caller.get_hookimpls())
        ]

    def call_impl(
        self, plugin: str, hook: str, function: Callable[..., Any], argnames: Iterable[str],
        kwargs: Mapping[str, Any],
    ) -> Any:
        """Call one implementation with the subset of ``kwargs`` it accepts."""
        try:
            return function(**{arg: kwargs[arg] for arg in argnames})
        except Exception as exc:
            _reraise(plugin, hook, exc)

    def collect(self, hook: str) -> list[Contribution]:
        """Call a ``register_*`` hook once per plugin, recording what each registered."""
        found: list[Contribution] = []
        # Registration order (the kernel first): a plugin cannot take over a kernel name by
        # registering it before the kernel does.
        for plugin, function, argnames in reversed(self.implementations(hook)):

            def register(*args: Any, _plugin: str = plugin, **kwargs: Any) -> None:
                found.append(Contribution(_plugin, args, kwargs))

            self.call_impl(plugin, hook, function, argnames, {"register": register})
        return found

    def _blame(self, hook: str, exc: BaseException) -> str:
        """The plugin whose implementation of ``hook`` raised ``exc``, from the traceback.

        The innermost frame that runs a hook implementation wins. Two plugins that are
        instances of one class share the implementation's code object, so the frame's
        first argument (``self``) tells them apart.
        """
        if self._blame_index is None:
            self._blame_index = {}
            for caller in self._live.values():
                for impl in caller.get_hookimpls():
                    code = getattr(impl.function, "__code__", None)
                    if code is not None:
                        owners = self._blame_index.setdefault(code, [])
                        owners.append((impl.plugin, impl.plugin_name))
        culprit = "?"
        tb = exc.__traceback__
        while tb is not None:
            found = self._blame_index.get(tb.tb_frame.f_code)
            if found:
                culprit = _owner(found, tb.tb_frame)
            tb = tb.tb_next
        if culprit == "?":
            impls = self._live[hook].get_hookimpls() if hook in self._live else []
            if len(impls) == 1:
                culprit = impls[0].plugin_name
        return culprit

    def call(self, hook: str, **kwargs: Any) -> Any:
        """Call ``hook`` (typically one a plugin published) with keyword arguments.

        Returns pluggy's result (a list of the non-``None`` answers, or the first one for a
        ``firstresult`` hook); an exception is attributed like any other hook's.
        """
        caller = getattr(self.pm.hook, hook, None)
        if not isinstance(caller, pluggy.HookCaller) or caller.spec is None:
            raise ValueError(f"no hookspec named {hook!r}: publish it with PLUGIN_INFO.hookspecs")
        if hook not in self._live:
            return None if caller.spec.opts.get("firstresult") else []
        return self._call(hook, kwargs)

    def _call(self, hook: str, kwargs: dict[str, Any]) -> Any:
        caller = self._live.get(hook)
        if caller is None:
            return None
        try:
            return caller(**kwargs)
        except Exception as exc:
            _reraise(self._blame(hook, exc), hook, exc)

    # -- typed facade: one method per hook ------------------------------------------------

    # Each method looks its caller up once and calls it directly: this is the hot path
    # (benchmarks/hooks.py holds it within 1.15x of a bare pluggy call, and a hook nobody
    # implements costs one dict lookup).

    def before_customer_save(
        self, *, tx: Transaction, values: dict[str, Any], customer: Customer | None
    ) -> None:
        caller = self._live.get("before_customer_save")
        if caller is not None:
            try:
                caller(tx=tx, values=values, customer=customer)
            except Exception as exc:
                _reraise(self._blame("before_customer_save", exc), "before_customer_save", exc)

    def customer_created(self, *, tx: Transaction, customer: Customer) -> None:
        caller = self._live.get("customer_created")
        if caller is not None:
            try:
                caller(tx=tx, customer=customer)
            except Exception as exc:
                _reraise(self._blame("customer_created", exc), "customer_created", exc)

    def customer_updated(
        self, *, tx: Transaction, customer: Customer, changes: dict[str, tuple[Any, Any]]
    ) -> None:
        caller = self._live.get("customer_updated")
        if caller is not None:
            try:
                caller(tx=tx, customer=customer, changes=changes)
            except Exception as exc:
                _reraise(self._blame("customer_updated", exc), "customer_updated", exc)

    def interaction_logged(self, *, tx: Transaction, interaction: Interaction) -> None:
        caller = self._live.get("interaction_logged")
        if caller is not None:
            try:
                caller(tx=tx, interaction=interaction)
            except Exception as exc:
                _reraise(self._blame("interaction_logged", exc), "interaction_logged", exc)

    def before_transition(
        self, *, tx: Transaction, instance: WorkflowInstance, transition: Transition,
        data: dict[str, Any],
    ) -> None:
        caller = self._live.get("before_transition")
        if caller is not None:
            try:
                caller(tx=tx, instance=instance, transition=transition, data=data)
            except Exception as exc:
                _reraise(self._blame("before_transition", exc), "before_transition", exc)

    def workflow_transitioned(
        self, *, tx: Transaction, instance: WorkflowInstance, step: WorkflowStep
    ) -> None:
        caller = self._live.get("workflow_transitioned")
        if caller is not None:
            try:
                caller(tx=tx, instance=instance, step=step)
            except Exception as exc:
                _reraise(self._blame("workflow_transitioned", exc), "workflow_transitioned", exc)

    def event_handlers(self) -> list[tuple[str, Callable[..., Any], list[str]]]:
        """The ``handle_event`` implementations; the dispatcher calls each on its own."""
        return self.implementations("handle_event")

    def handle_event(self, plugin: str, function: Callable[..., Any], argnames: list[str],
                     *, crm: Crm, event: Event) -> None:
        self.call_impl(plugin, "handle_event", function, argnames, {"crm": crm, "event": event})

    def run_periodic(self, *, crm: Crm, now: dt.datetime) -> list[PluginError | CrmkitError]:
        """Call every ``run_periodic`` implementation; return (do not raise) their errors."""
        errors: list[PluginError | CrmkitError] = []
        for plugin, function, argnames in self.implementations("run_periodic"):
            try:
                self.call_impl(plugin, "run_periodic", function, argnames,
                               {"crm": crm, "now": now})
            except CrmkitError as exc:  # one plugin's failure must not stop the others
                errors.append(exc)
        return errors

    def export_customer_data(
        self, *, tx: Transaction, customer: Customer
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(plugin, data)`` for each plugin that holds data about ``customer``."""
        for plugin, function, argnames in self.implementations("export_customer_data"):
            data = self.call_impl(
                plugin, "export_customer_data", function, argnames,
                {"tx": tx, "customer": customer},
            )
            if data is not None:
                yield plugin, data

    def erase_customer_data(self, *, tx: Transaction, customer: Customer) -> None:
        for plugin, function, argnames in self.implementations("erase_customer_data"):
            self.call_impl(
                plugin, "erase_customer_data", function, argnames,
                {"tx": tx, "customer": customer},
            )


def _owner(owners: list[tuple[object, str]], frame: types.FrameType) -> str:
    """Which of the plugins sharing one function's code ran in ``frame``."""
    if len(owners) > 1:
        code = frame.f_code
        first = frame.f_locals.get(code.co_varnames[0]) if code.co_argcount else None
        for plugin, name in owners:
            if plugin is first or plugin is getattr(first, "__class__", None):
                return name
    return owners[0][1]


def _reraise(plugin: str, hook: str, exc: Exception) -> NoReturn:
    """Raise ``exc`` attributed to ``plugin`` and ``hook``.

    A :class:`CrmkitError` is the plugin speaking on purpose (``Rejected``, a validation
    error): it keeps its type, with ``.plugin`` and ``.hook`` set. Anything else is a bug
    in the plugin and becomes a :class:`PluginError` chained to the original.
    """
    if isinstance(exc, CrmkitError):
        if exc.plugin is None:
            exc.plugin, exc.hook = plugin, hook
        raise exc
    raise PluginError(plugin, hook, f"{type(exc).__name__}: {exc}") from exc
