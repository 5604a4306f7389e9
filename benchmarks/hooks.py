"""Hook dispatch: the kernel's typed facade against a bare pluggy call, in the same run.

What is measured is the cost of *calling* an in-transaction hook, not of the work the
implementation does: the implementation registered here returns at once and never touches
its arguments.

* **dispatch, 1 implementation** — ``PluginHost.interaction_logged(tx=..., interaction=...)``
  with one plugin implementing the hook, against ``pm.hook.interaction_logged(...)`` on a
  bare :class:`pluggy.PluginManager` holding the same hookspecs and the same plugin.
  Target: at most 1.15x.
* **dispatch, no implementation** — the same facade call when no plugin implements the
  hook, against the same bare pluggy call with no implementation. Target: at most 0.1x
  (the facade must skip an unimplemented hook almost for free).

Both managers also hold the kernel's own ``crmkit.builtin`` plugin, as a real deployment
does; it does not implement ``interaction_logged``.
"""

from __future__ import annotations

import timeit
from typing import Any

import attrs
import pluggy

import crmkit
from benchmarks.report import Log, Result, format_duration
from benchmarks.timing import interleaved_timeit, median
from crmkit import builtin, hookspecs
from crmkit.models import Interaction
from crmkit.plugins import KERNEL_PLUGIN, PluginHost, hookimpl

__all__ = ["HookSettings", "run"]

TARGET_ONE_IMPLEMENTATION = 1.15
TARGET_NO_IMPLEMENTATION = 0.1
PLUGIN_NAME = "bench"

# The timed statements bind everything to locals in the set-up, so that neither side pays
# for a global lookup the other does not.
SETUP = "host = _host; pm = _pm; tx = _tx; interaction = _interaction"
SUBJECT = "host.interaction_logged(tx=tx, interaction=interaction)"
REFERENCE = "pm.hook.interaction_logged(tx=tx, interaction=interaction)"
EMPTY_LOOP = "pass"


@attrs.frozen
class HookSettings:
    """How long to time: ``repeat`` interleaved rounds of ``number`` calls each."""

    number: int = 200_000
    repeat: int = 15

    @classmethod
    def quick(cls) -> HookSettings:
        return cls(number=50_000, repeat=7)


class NoOpPlugin:
    """A plugin whose ``interaction_logged`` returns at once: only dispatch is timed."""

    @hookimpl
    def interaction_logged(self, tx: Any, interaction: Any) -> None:
        return None


def kernel_host(plugin: object | None) -> PluginHost:
    """A :class:`PluginHost` set up as :class:`crmkit.Crm` sets it up, plus ``plugin``."""
    host = PluginHost(crmkit.__version__)
    host.register(builtin, KERNEL_PLUGIN)
    host.register_all({PLUGIN_NAME: plugin} if plugin is not None else {})
    return host


def bare_manager(plugin: object | None) -> pluggy.PluginManager:
    """A bare pluggy manager with the kernel's hookspecs and the same plugins."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(builtin, name=KERNEL_PLUGIN)
    if plugin is not None:
        pm.register(plugin, name=PLUGIN_NAME)
    pm.check_pending()
    return pm


def hook_arguments() -> dict[str, object]:
    """Stand-ins for the hook's arguments (never touched by the no-op implementation)."""
    return {"_tx": object(), "_interaction": Interaction(customer_id=1, channel="phone",
                                                         kind="note", summary="benchmark")}


def time_dispatch(plugin: object | None, settings: HookSettings) -> dict[str, list[float]]:
    """Seconds per call of the facade (``subject``), bare pluggy (``reference``), empty loop."""
    namespace = {"_host": kernel_host(plugin), "_pm": bare_manager(plugin), **hook_arguments()}
    timers = {
        name: timeit.Timer(statement, SETUP, globals=namespace)
        for name, statement in (
            ("subject", SUBJECT), ("reference", REFERENCE), ("empty loop", EMPTY_LOOP)
        )
    }
    return interleaved_timeit(timers, number=settings.number, repeat=settings.repeat)


def dispatch_result(name: str, timings: dict[str, list[float]], target: float) -> Result:
    """The medians as a :class:`Result`, with the minima and the loop overhead as a note."""
    subject, reference = timings["subject"], timings["reference"]
    best_ratio = min(subject) / min(reference)
    note = (
        f"min {format_duration(min(subject))} vs {format_duration(min(reference))} "
        f"= {best_ratio:.3f}x; both include the timeit loop "
        f"({format_duration(median(timings['empty loop']))} per iteration)"
    )
    return Result(name, median(subject), median(reference), "median", target, note)


def run(settings: HookSettings, log: Log = print) -> list[Result]:
    """Time both dispatch benchmarks and return their results."""
    n = settings.number * settings.repeat
    log(f"hooks: timing dispatch with one implementation ({n:,} calls per candidate)")
    with_impl = time_dispatch(NoOpPlugin(), settings)
    log(f"hooks: timing dispatch with no implementation ({n:,} calls per candidate)")
    without_impl = time_dispatch(None, settings)
    return [
        dispatch_result("hook dispatch, 1 implementation", with_impl, TARGET_ONE_IMPLEMENTATION),
        dispatch_result("hook dispatch, no implementation", without_impl,
                        TARGET_NO_IMPLEMENTATION),
    ]
