"""Record what a deployment's plugins were asked and what its outbox committed.

Like pytest's ``HookRecorder``, :class:`HookRecorder` is built on pluggy's
``add_hookcall_monitoring``. Two kinds of call do not go through pluggy's hook caller,
because the kernel calls each implementation on its own (to attribute failures and, for
``handle_event``, to retry only the plugins that failed): ``handle_event``,
``export_customer_data`` and ``erase_customer_data``. The recorder wraps the host's
per-implementation call for those. Committed events are read back from the outbox table,
so they include events that CLI runs (``crmkit_cli``) committed on the same database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import pluggy
from sqlalchemy import func, select

from crmkit.app import Crm
from crmkit.db import make_engine
from crmkit.events import Event
from crmkit.models import OutboxEvent
from crmkit.plugins import PluginInfo, hookimpl

__all__ = ["Delivery", "HookCall", "HookRecorder"]

#: The name the recorder's pass-through plugin is registered under (no plugin can have it).
RECORDER_NAME = "crmkit.testing"

#: Hooks not made live by the pass-through plugin: contributions are collected once at
#: start-up, and an extra ``handle_event`` implementation would change delivery.
_PASSIVE_PREFIX = "register_"
_PASSIVE = frozenset({"handle_event", "export_customer_data", "erase_customer_data"})


@attrs.frozen
class HookCall:
    """One call of a hook: its name, keyword arguments and the plugins that answered.

    Arguments are also attributes: ``call.customer`` is ``call.kwargs["customer"]``.
    """

    hook: str
    kwargs: Mapping[str, Any]
    plugins: tuple[str, ...]
    result: Any = None
    exception: BaseException | None = None

    def __getattr__(self, name: str) -> Any:
        try:
            return self.kwargs[name]
        except KeyError:
            raise AttributeError(
                f"{self.hook} was not called with {name!r} (it got {', '.join(self.kwargs)})"
            ) from None


@attrs.frozen
class Delivery:
    """One ``handle_event`` call: which plugin got which event, and what it raised."""

    plugin: str
    event: Event
    exception: BaseException | None = None


class HookRecorder:
    """Hook calls, event deliveries and committed outbox events of a test's deployments.

    Attach it to deployments with :meth:`attach` (the ``crmkit_recorder`` fixture attaches
    it to every deployment ``crm_factory`` builds).
    """

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._calls: list[HookCall] = []
        self._deliveries: list[Delivery] = []
        self._undo: list[Callable[[], None]] = []
        self._after_event_id = self._last_event_id()

    # -- attaching ------------------------------------------------------------------------

    def attach(self, crm: Crm) -> None:
        """Record the hook calls and event deliveries of ``crm`` from now on."""
        host = crm.host
        self._make_hooks_live(crm)

        def before(hook: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
            pass

        def after(outcome: pluggy.Result[Any], hook: str, impls: Sequence[pluggy.HookImpl],
                  kwargs: Mapping[str, Any]) -> None:
            plugins = tuple(i.plugin_name for i in reversed(impls)
                            if i.plugin_name != RECORDER_NAME)
            failed = outcome.exception
            result = None if failed is not None else outcome.get_result()
            self._calls.append(HookCall(hook, dict(kwargs), plugins, result, failed))

        self._undo.append(host.pm.add_hookcall_monitoring(before, after))
        call_impl = host.call_impl

        def recording_call_impl(plugin: str, hook: str, function: Callable[..., Any],
                                argnames: Any, kwargs: Mapping[str, Any]) -> Any:
            if hook.startswith(_PASSIVE_PREFIX):
                return call_impl(plugin, hook, function, argnames, kwargs)
            try:
                result = call_impl(plugin, hook, function, argnames, kwargs)
            except Exception as exc:
                self._record_single(plugin, hook, kwargs, None, exc)
                raise
            self._record_single(plugin, hook, kwargs, result, None)
            return result

        host.call_impl = recording_call_impl  # type: ignore[method-assign]
        self._undo.append(lambda: vars(host).pop("call_impl", None))

    def _make_hooks_live(self, crm: Crm) -> None:
        """Register a pass-through plugin so that every lifecycle hook is really called.

        The kernel skips a hook that no plugin implements; a recorder that saw nothing in
        that case would make ``calls("customer_created")`` useless in a test of a plugin
        that does not implement it.
        """
        host = crm.host
        if host.pm.has_plugin(RECORDER_NAME):
            return
        passthrough = type("PassThrough", (), {})()
        for name, caller in vars(host.pm.hook).items():
            if (isinstance(caller, pluggy.HookCaller) and caller.spec is not None
                    and not name.startswith(_PASSIVE_PREFIX) and name not in _PASSIVE):
                setattr(passthrough, name, hookimpl(trylast=True)(_pass))
        host.register(passthrough, RECORDER_NAME, PluginInfo(name=RECORDER_NAME))
        self._undo.append(lambda: host.unregister(RECORDER_NAME))

    def _record_single(self, plugin: str, hook: str, kwargs: Mapping[str, Any], result: Any,
                       exc: BaseException | None) -> None:
        if hook == "handle_event":
            self._deliveries.append(Delivery(plugin, kwargs["event"], exc))
        self._calls.append(HookCall(hook, dict(kwargs), (plugin,), result, exc))

    def detach(self) -> None:
        """Stop recording (the fixture does this at the end of the test)."""
        while self._undo:
            self._undo.pop()()

    # -- hook calls -----------------------------------------------------------------------

    def calls(self, *hooks: str) -> list[HookCall]:
        """Calls of ``hooks`` (of every hook if none is named), oldest first."""
        return [c for c in self._calls if not hooks or c.hook in hooks]

    def call(self, hook: str) -> HookCall:
        """The one call of ``hook``; fails the test if there were none or several."""
        found = self.calls(hook)
        if len(found) != 1:
            seen = ", ".join(c.hook for c in self._calls) or "nothing"
            raise AssertionError(f"expected 1 call of {hook}, got {len(found)} (recorded: {seen})")
        return found[0]

    def deliveries(self, *event_names: str) -> list[Delivery]:
        """``handle_event`` calls for events named ``event_names`` (all if none), in order."""
        return [d for d in self._deliveries if not event_names or d.event.name in event_names]

    # -- committed events -----------------------------------------------------------------

    def events(self, *names: str) -> list[Event]:
        """Events committed to the outbox since recording began (or :meth:`clear`).

        :param names: event names to keep (``"customer.created"``); all if none.
        """
        query = (select(OutboxEvent).where(OutboxEvent.id > self._after_event_id)
                 .order_by(OutboxEvent.id))
        if names:
            query = query.where(OutboxEvent.name.in_(names))
        engine = make_engine(self.database_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
        finally:
            engine.dispose()
        return [
            Event(id=r["id"], name=r["name"], payload=dict(r["payload"]), actor=r["actor"],
                  created_at=r["created_at"], attempt=max(r["attempts"], 1))
            for r in rows
        ]

    def event(self, name: str) -> Event:
        """The one committed event called ``name``; fails the test unless there is one."""
        found = self.events(name)
        if len(found) != 1:
            seen = ", ".join(e.name for e in self.events()) or "nothing"
            raise AssertionError(f"expected 1 {name} event, got {len(found)} (outbox: {seen})")
        return found[0]

    def clear(self) -> None:
        """Forget what was recorded so far: calls, deliveries and events."""
        self._calls.clear()
        self._deliveries.clear()
        self._after_event_id = self._last_event_id()

    def _last_event_id(self) -> int:
        engine = make_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return int(conn.scalar(select(func.coalesce(func.max(OutboxEvent.id), 0))) or 0)
        finally:
            engine.dispose()


def _pass() -> None:
    """A hook implementation that does nothing (it only makes the kernel call the hook)."""
