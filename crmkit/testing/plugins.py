"""Plugins for one test: registered by name, and installed as entry points for the test.

A plugin object defined in a test is not an installed distribution, yet the admin tool
(and anything else that calls :func:`crmkit.plugins.discover`) only loads entry points.
Instead of a test-only back door in the kernel, :class:`PluginRegistry` *installs* the
object for the duration of the test: it writes a ``<dist>.dist-info/entry_points.txt``
into a directory it puts at the front of ``sys.path``, pointing at the object's module (or
at a synthetic module holding the object). Discovery then finds it exactly as it finds a
pip-installed plugin, and everything is undone when the test ends.
"""

from __future__ import annotations

import importlib
import re
import sys
import types
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from crmkit.plugins import ENTRY_POINT_GROUP, PluginInfo, discover

__all__ = ["PluginRegistry"]

def _import(target: str) -> object:
    """The object that ``"package.module"`` or ``"package.module:attribute"`` names."""
    module_name, _, attribute = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in filter(None, attribute.split(".")):
        obj = getattr(obj, part)
    return obj


class PluginRegistry:
    """The plugins of one test, by name (the ``crmkit_plugins`` fixture).

    :meth:`register` makes a plugin part of every deployment the test builds
    (``crm_factory``, ``crm``, ``crmkit_cli``); :meth:`install` only makes it installed,
    so :func:`crmkit.plugins.discover` and ``crmkit plugins ...`` see it.
    """

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self._root = root
        self._monkeypatch = monkeypatch
        self._plugins: dict[str, object] = {}
        self._site: Path | None = None
        self._module: types.ModuleType | None = None
        self._entries: dict[str, dict[str, str]] = {}

    # -- what the test registered ---------------------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> object:
        """Load ``plugin`` as ``name`` in every deployment this test builds; returns it.

        :param plugin: a module, an object with ``@hookimpl`` methods, or an import path
            (``"crmkit_loyalty"``, ``"tests.helpers:plugin"``).
        :param name: the plugin's name; defaults to its ``PLUGIN_INFO.name``.
        """
        if isinstance(plugin, str):
            plugin = _import(plugin)
        if name is None:
            info = getattr(plugin, "PLUGIN_INFO", None)
            if not isinstance(info, PluginInfo):
                raise ValueError(
                    f"{plugin!r} has no PLUGIN_INFO; pass its name: register(plugin, 'name')"
                )
            name = info.name
        if not self._installed_as(name, plugin):
            self.install(name, plugin)
        self._plugins[name] = plugin
        return plugin

    @staticmethod
    def _installed_as(name: str, plugin: object) -> bool:
        """Whether the entry point ``name`` is really installed and loads ``plugin``.

        Then nothing is installed on top of it, so that a plugin's test of its own entry
        point sees its own distribution, not the registry's stand-in.
        """
        installed = discover().get(name)
        if installed is None or not isinstance(plugin, types.ModuleType):
            return False
        return installed.module == plugin.__name__ and not installed.entry_point.object_name

    def unregister(self, name: str) -> None:
        """Stop loading ``name`` in deployments built from now on (it stays installed)."""
        del self._plugins[name]

    @property
    def plugins(self) -> dict[str, object]:
        """Registered plugins by name, in registration order."""
        return dict(self._plugins)

    def names(self) -> list[str]:
        return list(self._plugins)

    def __contains__(self, name: object) -> bool:
        return name in self._plugins

    def __iter__(self) -> Iterator[str]:
        return iter(self._plugins)

    def __len__(self) -> int:
        return len(self._plugins)

    # -- installing as entry points -------------------------------------------------------

    def install(
        self, name: str, target: object | str, *, distribution: str | None = None,
        version: str = "0", requires: Sequence[str] = (),
    ) -> None:
        """Install ``target`` as the entry point ``name`` of group ``crmkit`` for this test.

        :param name: the entry-point name (a plugin's name; any string, so that tests can
            install badly named plugins too).
        :param target: an object or module, or an entry-point string such as
            ``"some_module"`` or ``"some_module:attribute"``, which is *not* imported: use
            it to install a plugin whose module fails to import.
        :param distribution: the distribution name :func:`~crmkit.plugins.discover`
            reports (default ``crmkit_test_<name>``).
        :param version: its version.
        :param requires: its ``Requires-Dist`` lines (``"somepackage>=1"``).
        """
        if isinstance(target, str):
            reference = target
        elif isinstance(target, types.ModuleType) and sys.modules.get(target.__name__) is target:
            reference = target.__name__
        else:
            module = self._holder()
            attribute = f"plugin_{len(vars(module))}"
            setattr(module, attribute, target)
            reference = f"{module.__name__}:{attribute}"
        dist = distribution or f"crmkit_test_{re.sub(r'[^A-Za-z0-9_.]', '_', name)}"
        info = self._site_dir() / f"{dist}-{version}.dist-info"
        info.mkdir(exist_ok=True)
        requirements = "".join(f"Requires-Dist: {line}\n" for line in requires)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n{requirements}",
            encoding="utf-8",
        )
        entries = self._entries.setdefault(dist, {})
        entries[name] = reference  # installing a name again replaces it
        lines = "".join(f"{n} = {r}\n" for n, r in entries.items())
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}",
                                               encoding="utf-8")

    def _site_dir(self) -> Path:
        if self._site is None:
            self._site = self._root / "crmkit-test-site"
            self._site.mkdir(parents=True, exist_ok=True)
            self._monkeypatch.syspath_prepend(str(self._site))
        return self._site

    def _holder(self) -> types.ModuleType:
        """A module, importable for this test only, that holds plugin objects."""
        if self._module is None:
            name = f"_crmkit_test_plugins_{uuid.uuid4().hex[:12]}"
            self._module = types.ModuleType(name, "Plugin objects installed by crmkit.testing.")
            self._monkeypatch.setitem(sys.modules, name, self._module)
        return self._module

