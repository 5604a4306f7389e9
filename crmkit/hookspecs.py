"""Every hook crmkit defines, grouped by family.

Rules of the contract (see docs/hooks.md):

* hooks are called with keyword arguments only; an implementation may accept any subset;
* an argument is only ever added at the end, never removed or renamed;
* ``register_*`` hooks are called once at start-up, each with a ``register`` callback bound
  to the implementing plugin, so every contribution is attributed to its plugin;
* in-transaction hooks run inside the unit of work: the plugin's writes through ``tx``
  commit or roll back with the kernel's, and an exception rolls back the whole transaction
  (surfacing as :class:`~crmkit.errors.PluginError`, or as the plugin's own
  :class:`~crmkit.errors.CrmkitError` with ``.plugin`` and ``.hook`` set);
* ``handle_event`` runs after commit, at least once per event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # imported for annotations only, to avoid import cycles
    from crmkit.app import Crm
    from crmkit.events import Event
    from crmkit.models import Customer, Interaction, WorkflowInstance, WorkflowStep
    from crmkit.uow import Transaction
    from crmkit.workflow import Transition

PROJECT_NAME = "crmkit"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

# ---------------------------------------------------------------------------------------
# Contributions: called once at start-up with a ``register`` callback.
# ---------------------------------------------------------------------------------------


@hookspec
def register_customer_fields(register: Callable[..., None]) -> None:
    """Contribute custom customer fields, stored in ``Customer.attributes``.

    ``register(name, schema)``: ``schema`` is a JSON Schema (2020-12) fragment for the
    field's value. Every write validates ``attributes`` against the merged schema of all
    plugins and the config's ``[customer_fields]``; unknown fields are rejected.

    :param register: ``register(name: str, schema: dict) -> None``.

    .. versionadded:: 0.1
    """


@hookspec
def register_interaction_kinds(register: Callable[..., None]) -> None:
    """Contribute interaction kinds (``warranty_claim``, ``quote``, ...) and their payloads.

    ``register(name, schema=None, description="")``: ``schema`` is the JSON Schema that the
    ``payload`` of every interaction of this kind must satisfy.

    :param register: ``register(name: str, schema: dict | None = None,
        description: str = "") -> None``.

    .. versionadded:: 0.1
    """


@hookspec
def register_channels(register: Callable[..., None]) -> None:
    """Contribute interaction channels beyond the kernel's (phone, email, meeting, ...).

    :param register: ``register(name: str, description: str = "") -> None``.

    .. versionadded:: 0.1
    """


@hookspec
def register_config_schema(register: Callable[..., None]) -> None:
    """Contribute the JSON Schema of the plugin's own config table ``[plugin.<name>]``.

    The table is validated before anything runs; its value reaches the plugin as
    ``crm.plugin_config(name)``.

    :param register: ``register(schema: dict) -> None``.

    .. versionadded:: 0.1
    """


@hookspec
def register_commands(register: Callable[..., None]) -> None:
    """Contribute click commands or groups to the ``crmkit`` admin tool.

    The admin tool loads plugin commands only when one of them is invoked (or listed by
    ``--help``), so ``crmkit`` starts fast and a broken plugin cannot break the kernel's
    own commands.

    :param register: ``register(command: click.Command) -> None``.

    .. versionadded:: 0.1
    """


@hookspec
def register_migrations(register: Callable[..., None]) -> None:
    """Contribute the directory of the plugin's Alembic migrations (its own branch).

    The branch label is the plugin's name; ``crmkit db upgrade`` brings it to head after
    the kernel and the plugins it depends on.

    :param register: ``register(path: str | os.PathLike) -> None``.

    .. versionadded:: 0.1
    """


@hookspec
def register_workflows(register: Callable[..., None]) -> None:
    """Contribute workflow definitions (state machines) that instances can run.

    ``register(name, definition)``: ``definition`` is a dict in the form of
    ``schemas/workflow.schema.json`` (``subject``, ``initial``, ``states``, ``final``,
    ``transitions`` with optional ``guard`` criteria and ``timer``). It is checked when it
    loads; integrators may extend or replace it in ``crmkit.toml``.

    :param register: ``register(name: str, definition: dict) -> None``.

    .. versionadded:: 0.1
    """


@hookspec
def register_actions(register: Callable[..., None]) -> None:
    """Contribute actions that automation rules can run (``do = "<name>"``).

    ``register(name, run, schema=None, needs_customer=True, description="", check=None)``:
    ``run`` receives a :class:`crmkit.rules.ActionContext`; ``schema`` is the JSON Schema of
    the rule's ``with`` table; ``check(params, crm)`` returns a list of
    :class:`crmkit.Issue` for parameters a schema cannot judge (a workflow that does not
    exist), checked at start-up. Write
    through ``context.transaction()`` so a redelivered event never writes twice.

    :param register: ``register(name: str, run: Callable[[ActionContext], None],
        schema: dict | None = None, needs_customer: bool = True,
        description: str = "",
        check: Callable[[dict, Crm | None], list[Issue]] | None = None) -> None``.

    .. versionadded:: 0.1
    """


@hookspec
def register_criteria_fields(register: Callable[..., None]) -> None:
    """Contribute fields that criteria (guards, rules, segments) may name.

    ``register(field)`` with a :class:`crmkit.criteria.CriteriaField`: its name is
    ``<plugin>.<field>``, its ``sql`` an expression correlated to the ``customer`` table and
    its ``get`` the same value for one :class:`crmkit.criteria.CustomerRecord` (the two must
    agree).

    :param register: ``register(field: CriteriaField) -> None``.

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------------------
# In-transaction lifecycle: run inside the unit of work.
# ---------------------------------------------------------------------------------------


@hookspec
def before_customer_save(
    tx: Transaction, values: dict[str, Any], customer: Customer | None
) -> None:
    """Inspect or change a customer's values before they are validated and written.

    ``values`` is the complete record as it will be stored (the shape of
    ``customer.schema.json``); mutate it to normalise data, raise
    :class:`~crmkit.errors.Rejected` or :class:`~crmkit.errors.ValidationError` to refuse.

    :param tx: the running transaction.
    :param values: the record to be written; changes made here are kept.
    :param customer: the stored customer on update, ``None`` on create.

    .. versionadded:: 0.1
    """


@hookspec
def customer_created(tx: Transaction, customer: Customer) -> None:
    """A customer was created (flushed: ``customer.id`` is set).

    :param tx: the running transaction.
    :param customer: the new customer.

    .. versionadded:: 0.1
    """


@hookspec
def customer_updated(
    tx: Transaction, customer: Customer, changes: dict[str, tuple[Any, Any]]
) -> None:
    """A customer was updated.

    :param tx: the running transaction.
    :param customer: the customer after the change.
    :param changes: ``{field: (before, after)}`` for every field that changed.

    .. versionadded:: 0.1
    """


@hookspec
def interaction_logged(tx: Transaction, interaction: Interaction) -> None:
    """An interaction was logged on a customer's timeline (flushed: its id is set).

    :param tx: the running transaction.
    :param interaction: the new interaction.

    .. versionadded:: 0.1
    """


@hookspec
def before_transition(
    tx: Transaction, instance: WorkflowInstance, transition: Transition, data: dict[str, Any]
) -> None:
    """A workflow instance is about to take ``transition``: raise ``Rejected`` to veto.

    Runs after the transition's guard passed, before anything changes.

    :param tx: the running transaction.
    :param instance: the instance, still in its current state.
    :param transition: the transition (``name``, ``sources``, ``target``).
    :param data: the data given with the transition; changes made here are stored.

    .. versionadded:: 0.1
    """


@hookspec
def workflow_transitioned(tx: Transaction, instance: WorkflowInstance, step: WorkflowStep) -> None:
    """A workflow instance took a transition, in the same transaction.

    Starting an instance is not a transition; it emits the ``workflow.started`` event.

    :param tx: the running transaction.
    :param instance: the instance, in its new state.
    :param step: the history entry (``transition``, ``from_state``, ``to_state``, ``actor``,
        ``at``, ``data``).

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------------------
# Post-commit: called by the outbox dispatcher, at least once per event.
# ---------------------------------------------------------------------------------------


@hookspec
def handle_event(crm: Crm, event: Event) -> None:
    """Act on a committed domain event: push to an ERP, send a mail, call a webhook.

    Delivery is at least once: a failure is retried with exponential back-off and the
    event is marked dead after the configured attempts; only the plugins that failed are
    called again. Implementations must be idempotent (``event.id`` is a stable key).

    :param crm: the running deployment; open a transaction with ``crm.transaction()``.
    :param event: the event, with ``id``, ``name``, ``payload``, ``actor``, ``created_at``
        and ``attempt``.

    .. versionadded:: 0.1
    """


@hookspec
def run_periodic(crm: Crm, now: dt.datetime) -> None:
    """Do periodic background work: announce what became overdue, expire what ran out.

    Called by every ``crmkit worker`` about once per ``events.periodic_seconds`` (60 by
    default), outside any transaction. Several workers may call it at the same time: claim
    rows (``FOR UPDATE SKIP LOCKED``) or make the work idempotent. An exception is logged and
    does not stop the worker or the other plugins.

    :param crm: the running deployment; open transactions with ``crm.transaction()``.
    :param now: the time of this pass (timezone-aware, UTC).

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------------------
# Data-subject rights: every plugin answers for the personal data in its own tables.
# ---------------------------------------------------------------------------------------


@hookspec
def export_customer_data(tx: Transaction, customer: Customer) -> dict[str, Any] | None:
    """Return everything the plugin stores about ``customer``, JSON-ready, or ``None``.

    The kernel collects the answers under each plugin's name.

    :param tx: the running transaction.
    :param customer: the data subject.

    .. versionadded:: 0.1
    """


@hookspec
def erase_customer_data(tx: Transaction, customer: Customer) -> None:
    """Erase or anonymise everything the plugin stores about ``customer``.

    Called by ``tx.customers.erase(customer)``, before the kernel anonymises the customer
    itself, in the same transaction (a plugin that raises rolls the erasure back).

    :param tx: the running transaction.
    :param customer: the data subject.

    .. versionadded:: 0.1
    """
