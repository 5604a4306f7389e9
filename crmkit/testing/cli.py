"""A click ``CliRunner`` bound to a test's throw-away deployment."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import tomlkit
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url

from crmkit.app import Crm
from crmkit.cli.context import CliContext
from crmkit.config import CONFIG_FILENAME
from crmkit.testing.plugins import PluginRegistry

__all__ = ["CrmkitCli"]


class ObservedCliContext(CliContext):
    """The admin tool's context, handing the deployment it builds to ``observe``.

    Passed to the run as click's ``obj``; the ``crmkit`` group keeps a context it is
    given, so the run uses this one (and the hook recorder sees its hook calls).
    """

    def __init__(self, config_path: str, observe: Callable[[Crm], None]) -> None:
        super().__init__(config_path)
        self._observe = observe
        self._observed: Crm | None = None

    @property
    def crm(self) -> Crm:
        crm = super().crm
        if crm is not self._observed:
            self._observed = crm
            self._observe(crm)
        return crm


class CrmkitCli:
    """Runs ``crmkit --config <tmp>/crmkit.toml ...`` in-process (the ``crmkit_cli`` fixture).

    The config file points at the test database and enables every plugin registered with
    ``crmkit_plugins``; those are installed as entry points for the test, so the admin tool
    loads them through the same discovery as in production. Before each run, the plugins'
    migration branches are brought to head (as ``crmkit db upgrade`` would).
    """

    def __init__(
        self, database_url: str, directory: Path, plugins: PluginRegistry,
        prepare: Callable[[Mapping[str, Any]], None],
        observe: Callable[[Crm], None] = lambda crm: None,
    ) -> None:
        self.database_url = database_url
        self.path = directory / CONFIG_FILENAME
        #: Extra tables for crmkit.toml, e.g. ``{"plugin": {"loyalty": {"points_per_unit": 2}}}``.
        self.config: dict[str, Any] = {}
        self._plugins = plugins
        self._prepare = prepare
        self._observe = observe
        self.runner = CliRunner()

    def write_config(self) -> Path:
        """Write crmkit.toml for the current plugins and :attr:`config`; returns its path."""
        data: dict[str, Any] = {key: value for key, value in self.config.items()
                                if key not in ("database", "plugins")}
        database = dict(self.config.get("database", {}))
        # A URL with a password may only come from the environment (see invoke()).
        if make_url(self.database_url).password is None:
            database["url"] = self.database_url
        plugins = dict(self.config.get("plugins", {}))
        plugins.setdefault("enabled", self._plugins.names())
        document = {"database": database, "plugins": plugins, **data}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(tomlkit.dumps(document), encoding="utf-8")
        return self.path

    def invoke(
        self, *args: str, input: str | None = None, env: Mapping[str, str] | None = None,
        catch_exceptions: bool = True,
    ) -> Result:
        """Run ``crmkit --config <path> ARGS...``; returns click's :class:`~click.testing.Result`.

        The caller's ``CRMKIT_*`` environment variables are hidden from the run (so a
        developer's ``CRMKIT_DATABASE_URL`` cannot redirect it); pass ``env`` to set some.
        """
        from crmkit.cli import cli

        self.write_config()
        self._prepare(self.config)
        run_env: dict[str, str | None] = {
            name: None for name in os.environ if name.startswith("CRMKIT_")
        }
        if make_url(self.database_url).password is not None:
            run_env["CRMKIT_DATABASE_URL"] = self.database_url
        run_env.update(env or {})
        context = ObservedCliContext(str(self.path), self._observe)
        try:
            return self.runner.invoke(
                cli, ["--config", str(self.path), *args], input=input, env=run_env,
                catch_exceptions=catch_exceptions, obj=context,
            )
        finally:
            context.close()

    def __call__(self, *args: str, **kwargs: Any) -> Result:
        """Shorthand for :meth:`invoke`."""
        return self.invoke(*args, **kwargs)

    def ok(self, *args: str, **kwargs: Any) -> Result:
        """:meth:`invoke`, failing the test unless the command exits 0."""
        result = self.invoke(*args, **kwargs)
        assert result.exit_code == 0, _describe(args, result)
        return result

    def fails(self, *args: str, message: str = "", **kwargs: Any) -> Result:
        """:meth:`invoke`, failing the test unless the command fails cleanly with ``message``.

        Cleanly: a non-zero exit code and no traceback (a user error, not a crash).
        """
        result = self.invoke(*args, **kwargs)
        assert result.exit_code != 0, _describe(args, result)
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            _describe(args, result)
        assert message in result.output, _describe(args, result)
        return result


def _describe(args: Sequence[str], result: Result) -> str:
    import traceback

    trace = ""
    if result.exc_info is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(*result.exc_info))
    return f"crmkit {' '.join(args)} exited {result.exit_code}:\n{result.output}{trace}"
