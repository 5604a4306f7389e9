"""crmkit-dataquality: normalised phone numbers and e-mails, and flagged duplicates.

``before_customer_save`` normalises what is about to be written; ``customer_created`` and
``customer_updated`` look for other customers with the same e-mail or phone number and
flag them (a ``dataquality_duplicate`` row and a ``dataquality.duplicate_suspected``
event). Nothing is merged automatically: people decide, ``crmkit dataquality duplicates``
lists what to look at.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmkit import PluginInfo, hookimpl

from crmkit_dataquality import duplicates
from crmkit_dataquality.normalize import normalize_email, normalize_phone
from crmkit_dataquality.settings import CONFIG_SCHEMA, Settings

if TYPE_CHECKING:
    from crmkit.models import Customer
    from crmkit.uow import Transaction

__version__ = "0.1.0"

PLUGIN_INFO = PluginInfo(
    name="dataquality",
    version=__version__,
    kernel=">=0.1,<0.2",
    description="Normalised phone numbers and e-mails; flagged duplicates",
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
    from crmkit_dataquality.cli import dataquality

    register(dataquality)


@hookimpl
def before_customer_save(tx: Transaction, values: dict[str, Any]) -> None:
    settings = Settings.of(tx.crm)
    if settings.normalize_phones and isinstance(values.get("phone"), str):
        values["phone"] = normalize_phone(values["phone"], settings.default_country_code)
    if settings.normalize_emails and isinstance(values.get("email"), str):
        values["email"] = normalize_email(values["email"])


@hookimpl
def customer_created(tx: Transaction, customer: Customer) -> None:
    if Settings.of(tx.crm).flag_duplicates:
        duplicates.flag(tx, customer, ("email", "phone"))


@hookimpl
def customer_updated(
    tx: Transaction, customer: Customer, changes: dict[str, tuple[Any, Any]]
) -> None:
    changed = tuple(field for field in ("email", "phone") if field in changes)
    if changed and Settings.of(tx.crm).flag_duplicates:
        duplicates.flag(tx, customer, changed)


@hookimpl
def export_customer_data(tx: Transaction, customer: Customer) -> dict[str, Any] | None:
    flags = duplicates.involving(tx.session, customer.id)
    return {"duplicates": flags} if flags else None


@hookimpl
def erase_customer_data(tx: Transaction, customer: Customer) -> None:
    duplicates.forget(tx.session, customer.id)
