"""crmkit: a plugin-based CRM framework for integrators.

The public API; everything else is an implementation module.
"""

from __future__ import annotations

__version__ = "0.1.0"

from crmkit.app import Crm
from crmkit.errors import (
    ConfigError,
    Conflict,
    CrmkitError,
    Issue,
    NotFound,
    PluginError,
    Rejected,
    StorageError,
    ValidationError,
)
from crmkit.events import Event
from crmkit.plugins import PluginInfo, hookimpl
from crmkit.uow import Transaction

__all__ = [
    "ConfigError",
    "Conflict",
    "Crm",
    "CrmkitError",
    "Event",
    "Issue",
    "NotFound",
    "PluginError",
    "PluginInfo",
    "Rejected",
    "StorageError",
    "Transaction",
    "ValidationError",
    "__version__",
    "hookimpl",
]
