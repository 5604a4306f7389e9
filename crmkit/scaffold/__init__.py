"""``crmkit plugins new``: generate a complete, installable plugin package.

The templates are package data (``crmkit/scaffold/templates/plugin``), rendered with
``{{placeholder}}`` substitution; a path part ``__package__`` becomes the import package
and ``__name__`` the plugin's name, a leading ``dot-`` a leading dot. Generation writes
into a temporary directory beside the target and moves it into place at the end, so a
failure leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import keyword
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from importlib.util import find_spec
from pathlib import Path

from packaging.version import Version

from crmkit.errors import CrmkitError

__all__ = ["ScaffoldError", "check_name", "generate", "kernel_specifier", "template_files"]

TEMPLATE_SUFFIX = ".tmpl"
MAX_NAME = 30
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
#: The admin tool's own commands: a plugin command group of the same name would be hidden.
RESERVED = frozenset({"crmkit", "init", "db", "customers", "interactions", "audit", "doctor",
                      "plugins", "events", "worker"})


class ScaffoldError(CrmkitError):
    """A plugin cannot be generated: a bad name, an existing directory, a failed write."""


def check_name(name: str, installed: Mapping[str, object] | None = None) -> None:
    """Raise :class:`ScaffoldError` unless ``name`` can be a new plugin's name.

    A plugin's name is its entry-point name, its table prefix, its migration branch label,
    its config table and its command group, so it must be a short lower-case identifier.

    :param installed: plugins already installed, by name (a new one must differ).
    """
    if not _NAME.fullmatch(name):
        raise ScaffoldError(
            f"{name!r} is not a valid plugin name: use a lower-case Python identifier "
            "(letters, digits and underscores, starting with a letter), e.g. 'loyalty'"
        )
    if keyword.iskeyword(name):
        raise ScaffoldError(f"{name!r} is a Python keyword; choose another plugin name")
    if len(name) > MAX_NAME:
        raise ScaffoldError(
            f"{name!r} is {len(name)} characters long; at most {MAX_NAME} keep its table "
            "and constraint names within every database's limits"
        )
    if name in RESERVED:
        raise ScaffoldError(
            f"{name!r} is taken by crmkit itself (a kernel command or the kernel's own "
            "name); choose another plugin name"
        )
    if installed is not None and name in installed:
        raise ScaffoldError(
            f"a plugin named {name!r} is already installed; plugin names must be unique "
            "(see `crmkit plugins list`)"
        )
    if find_spec(f"crmkit_{name}") is not None:
        raise ScaffoldError(
            f"a Python package crmkit_{name} is already importable here; choose another "
            "plugin name"
        )


def kernel_specifier(version: str) -> str:
    """The kernel versions a new plugin may claim: this minor series before 1.0, then
    this major version (``0.1.3`` → ``>=0.1,<0.2``; ``1.4.0`` → ``>=1.4,<2``)."""
    v = Version(version)
    if v.major == 0:
        return f">=0.{v.minor},<0.{v.minor + 1}"
    return f">={v.major}.{v.minor},<{v.major + 1}"


def variables(name: str, kernel_version: str) -> dict[str, str]:
    """The placeholders of the templates for plugin ``name``."""
    return {
        "name": name,
        "package": f"crmkit_{name}",
        "distribution": f"crmkit-{name.replace('_', '-')}",
        "title": name.replace("_", " ").capitalize(),
        "class_prefix": "".join(part.capitalize() for part in name.split("_")),
        "table": f"{name}_note",
        "revision": f"{name}_0001",
        "kernel_spec": kernel_specifier(kernel_version),
        "date": dt.date.today().isoformat(),
    }


def _templates() -> Traversable:
    return resources.files("crmkit.scaffold") / "templates" / "plugin"


def template_files(
    root: Traversable | None = None, prefix: str = ""
) -> Iterator[tuple[str, Traversable]]:
    """``(relative path, template)`` for every template file, sorted."""
    root = root or _templates()
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name == "__pycache__":
            continue
        path = f"{prefix}{entry.name}"
        if entry.is_dir():
            yield from template_files(entry, f"{path}/")
        elif entry.name.endswith(TEMPLATE_SUFFIX):
            yield path, entry


def render(text: str, values: Mapping[str, str], where: str) -> str:
    """``text`` with every ``{{placeholder}}`` replaced; an unknown one is an error."""

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ScaffoldError(f"template {where} uses an unknown placeholder {{{{{key}}}}}")
        return values[key]

    return _PLACEHOLDER.sub(substitute, text)


def output_path(template: str, values: Mapping[str, str]) -> str:
    """Where a template's rendering goes, relative to the new package's directory."""
    parts = []
    for part in template.removesuffix(TEMPLATE_SUFFIX).split("/"):
        part = part.replace("__package__", values["package"]).replace("__name__", values["name"])
        if part.startswith("dot-"):
            part = "." + part[4:]
        parts.append(part)
    return "/".join(parts)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def generate(name: str, target: Path, *, kernel_version: str,
             installed: Mapping[str, object] | None = None) -> list[Path]:
    """Generate plugin ``name`` as a new directory ``target``; the files written.

    All or nothing: the files are written to a temporary directory beside ``target``,
    which is renamed to ``target`` once complete. Parent directories created on the way
    are removed again when generation fails.
    """
    check_name(name, installed)
    target = Path(target)
    if target.exists():
        raise ScaffoldError(
            f"{target} already exists; crmkit plugins new never overwrites anything "
            "(choose another --dir, or remove it first)"
        )
    created_parents = _make_parents(target.parent)
    staging: Path | None = None
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial",
                                        dir=target.parent))
        values = variables(name, kernel_version)
        written = []
        for template, source in template_files():
            relative = output_path(template, values)
            _write(staging / relative, render(source.read_text(encoding="utf-8"), values,
                                              template))
            written.append(target / relative)
        if target.exists():
            raise ScaffoldError(f"{target} appeared while generating; nothing was written")
        os.rename(staging, target)
        return written
    except BaseException as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        for directory in reversed(created_parents):
            shutil.rmtree(directory, ignore_errors=True)
        if isinstance(exc, ScaffoldError | KeyboardInterrupt):
            raise
        raise ScaffoldError(
            f"could not generate {target}: {type(exc).__name__}: {exc}; nothing was written"
        ) from exc


def _make_parents(directory: Path) -> list[Path]:
    """Create ``directory`` and missing parents; the ones created, outermost first."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        if directory.parent == directory:
            break
        directory = directory.parent
    missing.reverse()
    for path in missing:
        try:
            path.mkdir()
        except OSError as exc:
            for made in reversed(missing[:missing.index(path)]):
                shutil.rmtree(made, ignore_errors=True)
            raise ScaffoldError(f"cannot create {path}: {exc.strerror or exc}") from None
    return missing
