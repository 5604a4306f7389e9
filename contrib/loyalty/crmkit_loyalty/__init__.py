"""crmkit-loyalty: points from purchase interactions, tiers, and ``crmkit loyalty``.

The plugin module: ``PLUGIN_INFO`` and the hook implementations. Each hook is a few lines
that hand over to a module with one concern (:mod:`.settings`, :mod:`.points`, :mod:`.cli`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmkit import PluginInfo, hookimpl

from crmkit_loyalty import points
from crmkit_loyalty.settings import CONFIG_SCHEMA, Settings

if TYPE_CHECKING:
    from crmkit.models import Customer, Interaction
    from crmkit.uow import Transaction

__version__ = "0.1.0"

PLUGIN_INFO = PluginInfo(
    name="loyalty",
    version=__version__,
    kernel=">=0.1,<0.2",
    description="Loyalty points from purchases, and tiers",
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@hookimpl
def register_config_schema(register: Callable[..., None]) -> None:
    register(CONFIG_SCHEMA)


@hookimpl
def register_migrations(register: Callable[..., None]) -> None:
    register(MIGRATIONS)


@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    # Imported here, not at the top: the admin tool asks for commands only when it needs
    # them, and the kernel's own commands must not pay for importing ours.
    from crmkit_loyalty.cli import loyalty

    register(loyalty)


@hookimpl
def interaction_logged(tx: Transaction, interaction: Interaction) -> None:
    points.award(tx, interaction, Settings.of(tx.crm))


@hookimpl
def export_customer_data(tx: Transaction, customer: Customer) -> dict[str, Any] | None:
    return points.export(tx.session, customer.id, Settings.of(tx.crm))


@hookimpl
def erase_customer_data(tx: Transaction, customer: Customer) -> None:
    points.erase(tx.session, customer.id)
