"""``Crm``: one running deployment (config, plugins, engine, schemas, dispatcher)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import attrs
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from crmkit import builtin
from crmkit.actions import KERNEL_ACTIONS
from crmkit.config import Config, load_config
from crmkit.criteria import Criteria, CriteriaField, FieldRegistry, kernel_fields
from crmkit.db import READ_ONLY, make_engine
from crmkit.errors import (
    Conflict,
    CrmkitError,
    Issue,
    PluginError,
    StorageError,
    ValidationError,
)
from crmkit.events import Dispatcher
from crmkit.plugins import KERNEL_PLUGIN, Contribution, PluginHost, discover
from crmkit.rules import Action, RuleBook
from crmkit.schemas import SchemaRegistry, compile_schema, issues_of
from crmkit.uow import Transaction
from crmkit.workflow import WorkflowRegistry, parse_definition

__all__ = ["Crm"]

log = logging.getLogger(__name__)


def kernel_version() -> str:
    from crmkit import __version__

    return __version__


class Crm:
    """A deployment: what ``crmkit.toml`` describes, with its plugins loaded and checked.

    Build one with :meth:`from_config`; tests and embedders may pass ``plugins`` to
    register plugin objects directly instead of (or besides) entry-point discovery.
    """

    def __init__(
        self,
        config: Config,
        *,
        plugins: Mapping[str, object] | None = None,
        discover_plugins: bool = True,
        engine: Engine | None = None,
    ) -> None:
        self.config = config
        self.host = PluginHost(kernel_version())
        self.host.register(builtin, KERNEL_PLUGIN)
        self.host.register_all(self._load_plugins(plugins or {}, discover_plugins))
        self.schemas = self._build_schemas()
        self._plugin_configs = self._check_plugin_configs()
        self.criteria_fields = self._build_criteria_fields()
        self.workflows = self._build_workflows()
        self.rules = self._build_rules()
        self.engine = engine or make_engine(config.database_url, echo=config.database_echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        self.dispatcher = Dispatcher(self)

    @classmethod
    def from_config(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        plugins: Mapping[str, object] | None = None,
        discover_plugins: bool = True,
    ) -> Crm:
        """Load ``path`` (or ``CRMKIT_CONFIG``, or ``./crmkit.toml``) and start the deployment."""
        return cls(load_config(path, env), plugins=plugins, discover_plugins=discover_plugins)

    # -- start-up -------------------------------------------------------------------------

    def _load_plugins(
        self, given: Mapping[str, object], discover_plugins: bool
    ) -> dict[str, object]:
        loaded = dict(given)
        if not discover_plugins:
            return loaded
        installed = discover()
        for name in self.config.plugins_enabled:
            if name in loaded:
                continue
            if name not in installed:
                raise self.config.error(
                    "plugins.enabled",
                    f"plugin {name!r} is enabled but not installed; install its package "
                    f"(pip install crmkit-{name}) or remove it from the list "
                    f"(installed: {', '.join(sorted(installed)) or 'none'})",
                )
            loaded[name] = installed[name].load()
        return loaded

    def _contributions(self, hook: str, handle: Callable[[Contribution], None]) -> None:
        """Apply each ``register(...)`` call of ``hook``; a bad one names its plugin."""
        for c in self.host.collect(hook):
            try:
                handle(c)
            except PluginError:
                raise
            except (CrmkitError, TypeError, KeyError, ValueError, IndexError) as exc:
                raise PluginError(c.plugin, hook, f"register{_args(c)}: {exc}") from None

    def _build_schemas(self) -> SchemaRegistry:
        registry = SchemaRegistry()

        def channel(c: Contribution) -> None:
            registry.add_channel(_arg(c, 0, "name"), owner=c.plugin)

        def kind(c: Contribution) -> None:
            registry.add_kind(_arg(c, 0, "name"), _arg(c, 1, "schema", None), owner=c.plugin)

        def field(c: Contribution) -> None:
            registry.add_customer_field(_arg(c, 0, "name"), _arg(c, 1, "schema"),
                                        owner=c.plugin)

        self._contributions("register_channels", channel)
        self._contributions("register_interaction_kinds", kind)
        self._contributions("register_customer_fields", field)
        for name, schema in self.config.customer_fields.items():
            try:
                registry.add_customer_field(name, schema, owner=f"config {self.config.source}")
            except ValidationError as exc:
                raise self.config.error(f"customer_fields.{name}", str(exc)) from None
        return registry

    def _build_criteria_fields(self) -> FieldRegistry:
        fields = FieldRegistry(kernel_fields())
        fields.add_custom_fields(self.schemas.customer_fields)

        def add(c: Contribution) -> None:
            field = _arg(c, 0, "field")
            if not isinstance(field, CriteriaField):
                raise TypeError("register() takes a crmkit.criteria.CriteriaField")
            fields.add(attrs.evolve(field, owner=c.plugin))

        self._contributions("register_criteria_fields", add)
        return fields

    def _build_workflows(self) -> WorkflowRegistry:
        registry = WorkflowRegistry()

        def add(c: Contribution) -> None:
            registry.add(parse_definition(_arg(c, 0, "name"), _arg(c, 1, "definition"),
                                          self.criteria_fields, owner=f"plugin {c.plugin}"))

        self._contributions("register_workflows", add)
        registry.apply_config(self.config.data.get("workflows", {}), self.criteria_fields,
                              self.config.source)
        return registry

    def _build_rules(self) -> RuleBook:
        book = RuleBook()
        for action in KERNEL_ACTIONS:
            book.add_action(action)

        def add(c: Contribution) -> None:
            book.add_action(Action(
                name=_arg(c, 0, "name"), run=_arg(c, 1, "run"), schema=_arg(c, 2, "schema", None),
                needs_customer=_arg(c, 3, "needs_customer", True),
                description=_arg(c, 4, "description", ""), owner=c.plugin,
                check=_arg(c, 5, "check", None),
            ))

        self._contributions("register_actions", add)
        book.load(self.config.data.get("rules", []), self.criteria_fields, self.config.source,
                  crm=self)
        return book

    def _check_plugin_configs(self) -> dict[str, dict[str, Any]]:
        schemas = {c.plugin: c.args[0] if c.args else c.kwargs["schema"]
                   for c in self.host.collect("register_config_schema")}
        sections = self.config.data.get("plugin", {})
        for name in sections:
            if name not in self.host.infos:
                raise self.config.error(
                    f"plugin.{name}", f"configures plugin {name!r}, which is not enabled"
                )
        checked: dict[str, dict[str, Any]] = {}
        for name, schema in schemas.items():
            section = self.config.plugin_section(name)
            validator = compile_schema(schema, f"config schema of plugin {name!r}")
            issues = issues_of(validator, section, f"plugin.{name}")
            if issues:
                raise self.config.error(
                    issues[0].path, "; ".join(issue.message for issue in issues[:5])
                )
            checked[name] = section
        return checked

    # -- running --------------------------------------------------------------------------

    def criteria(self, document: Any, *, context: str = "criteria") -> Criteria:
        """Compile a criteria document against this deployment's fields."""
        return self.criteria_fields.compile(document, context=context)

    def plugin_config(self, name: str) -> dict[str, Any]:
        """The validated ``[plugin.<name>]`` table."""
        return dict(self._plugin_configs.get(name, self.config.plugin_section(name)))

    def session(self) -> Session:
        """A bare SQLAlchemy session (for reads and for the dispatcher)."""
        return self._sessions()

    @contextmanager
    def transaction(self, actor: str = "system", *, readonly: bool = False
                    ) -> Iterator[Transaction]:
        """One unit of work: commits on success, rolls everything back on any error.

        ``readonly=True`` is for work that only reads (listings, reports): on SQLite it
        does not queue behind writers. It does not stop writes; it only promises none.
        """
        if not isinstance(actor, str) or not actor.strip() or len(actor) > 200:
            raise ValidationError(
                [Issue("actor", "must be a non-empty name of at most 200 characters", actor)]
            )
        session = self._read_sessions() if readonly else self._sessions()
        tx = Transaction(self, session, actor)
        committing = False
        try:
            with session.begin():
                yield tx
                tx._collect_event_ids()  # flushes: every statement has run
                committing = True
        except DBAPIError as exc:
            error = self._database_error(exc, committing)
            if error is None:
                raise
            raise error from exc
        except StaleDataError:
            raise Conflict(
                "the record was changed by a concurrent transaction; nothing was written, "
                "reload and retry"
            ) from None
        finally:
            session.close()
        if tx.event_ids and self.config.events.dispatch == "inline":
            self.dispatch_inline(tx.event_ids)

    @staticmethod
    def _database_error(exc: DBAPIError, committing: bool) -> CrmkitError | None:
        """The crmkit error for a database error that ended a transaction (None: a bug)."""
        if committing and exc.connection_invalidated:
            # The COMMIT was sent and its answer lost: the server may have applied it.
            return StorageError(
                f"the database connection was lost while committing ({exc.orig}); the "
                "change may or may not have been written: check before retrying"
            )
        if isinstance(exc, IntegrityError):
            return Conflict(f"the change violates a database constraint: {exc.orig}")
        if isinstance(exc, OperationalError):
            return StorageError(f"the database failed ({exc.orig}); nothing was written")
        if exc.connection_invalidated:
            return StorageError(
                f"the database connection was lost ({exc.orig}); nothing was written"
            )
        return None

    def dispatch_inline(self, ids: list[int]) -> None:
        """Deliver just-committed events now; failures stay in the outbox for retries."""
        try:
            self.dispatcher.run_once(limit=len(ids), ids=ids)
        except (CrmkitError, DBAPIError) as exc:
            # The change is committed; its events wait for `crmkit worker` or the next run.
            log.warning("inline dispatch of events %s failed: %s", ids, exc)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Crm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_MISSING = object()


def _arg(c: Contribution, index: int, name: str, default: Any = _MISSING) -> Any:
    """Argument ``index`` (or keyword ``name``) of a ``register(...)`` call."""
    if len(c.args) > index:
        return c.args[index]
    if name in c.kwargs:
        return c.kwargs[name]
    if default is _MISSING:
        raise TypeError(f"missing argument {name!r}")
    return default


def _args(c: Contribution) -> str:
    shown = [repr(a)[:40] for a in c.args] + [f"{k}={v!r}"[:40] for k, v in c.kwargs.items()]
    return f"({', '.join(shown)})"
