"""The exception hierarchy: one root, subclasses that carry their details.

Every error a user can cause is a :class:`CrmkitError`; the admin tool prints its message
and exits non-zero, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

__all__ = [
    "ConfigError",
    "Conflict",
    "CrmkitError",
    "Issue",
    "NotFound",
    "PluginError",
    "Rejected",
    "StorageError",
    "ValidationError",
    "short_repr",
]


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, so a 10 MB value never floods a message."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 3]}... ({len(text):,} characters)"


class CrmkitError(Exception):
    """The root of every error crmkit raises on purpose.

    ``plugin`` and ``hook`` are set when the error was raised by a plugin inside a hook.
    """

    plugin: str | None = None
    hook: str | None = None

    def where(self) -> str:
        if self.plugin:
            return f" (raised by plugin {self.plugin!r} in hook {self.hook!r})"
        return ""

    def __str__(self) -> str:
        return f"{super().__str__()}{self.where()}"


@attrs.frozen
class Issue:
    """One problem with one value: where it is, what is wrong, the offending value."""

    path: str
    message: str
    value: Any = None

    def __str__(self) -> str:
        return f"{self.path or '<record>'}: {self.message}"


class ValidationError(CrmkitError):
    """Input broke one or more rules; ``issues`` lists each with its field path."""

    def __init__(self, issues: Iterable[Issue], *, context: str = "") -> None:
        self.issues: list[Issue] = list(issues)
        self.context = context
        super().__init__(self._message())

    def _message(self) -> str:
        head = f"{self.context}: " if self.context else ""
        if len(self.issues) == 1:
            return f"{head}{self.issues[0]}"
        lines = "\n".join(f"  - {issue}" for issue in self.issues)
        return f"{head}{len(self.issues)} problems:\n{lines}"


class NotFound(CrmkitError):
    """The thing asked for does not exist."""


class Conflict(CrmkitError):
    """The change collides with another: a stale version, a duplicate key."""


class Rejected(CrmkitError):
    """A plugin or rule refused the change; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class PluginError(CrmkitError):
    """A plugin failed: at load time, or with an unexpected exception inside a hook."""

    def __init__(self, plugin: str, hook: str | None, message: str) -> None:
        self.plugin = plugin
        self.hook = hook
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        if self.hook:
            return f"plugin {self.plugin!r} failed in hook {self.hook!r}: {self.message}"
        return f"plugin {self.plugin!r}: {self.message}"


class ConfigError(CrmkitError):
    """The configuration is invalid; the message names the file and the key."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.file, self.key) if part)
        return f"{where}: {self.message}" if where else self.message


class StorageError(CrmkitError):
    """The database failed (unreachable, connection lost, locked); nothing was written."""
