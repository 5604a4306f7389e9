"""``crmkit.toml``: loading, environment overrides and validation.

The file is validated against ``schemas/config.schema.json`` (and, once plugins are loaded,
each ``[plugin.<name>]`` table against that plugin's schema) before anything runs. Every
error names the file and the key. Every scalar setting has an environment override,
``CRMKIT_<SECTION>_<KEY>`` (``CRMKIT_DATABASE_URL``, ``CRMKIT_EVENTS_DISPATCH``, ...);
``CRMKIT_CONFIG`` names the file. Secrets never live in the file: it names the environment
variables that hold them (``password_env = "CRMKIT_DB_PASSWORD"``).
"""

from __future__ import annotations

import copy
import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import tomlkit
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from crmkit.errors import ConfigError, ValidationError
from crmkit.schemas import compile_schema, issues_of, load_kernel_schema

__all__ = ["CONFIG_FILENAME", "Config", "EventSettings", "load_config", "set_enabled_plugins"]

CONFIG_FILENAME = "crmkit.toml"
DEFAULT_DATABASE = "crmkit.db"
ENV_PREFIX = "CRMKIT_"


@attrs.frozen
class EventSettings:
    """How the outbox dispatcher delivers events."""

    dispatch: str = "inline"
    max_attempts: int = 10
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 3600.0
    lease_seconds: float = 300.0
    batch_size: int = 100
    periodic_seconds: float = 60.0


@attrs.frozen
class Config:
    """A validated configuration. ``path`` is ``None`` when no file exists (the defaults)."""

    data: dict[str, Any]
    path: Path | None
    root: Path
    env: Mapping[str, str] = attrs.field(factory=dict, repr=False)

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "<defaults>"

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, file=self.source, key=key)

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL, with relative SQLite paths resolved and the password added."""
        section = self.data.get("database", {})
        raw = section.get("url") or f"sqlite:///{DEFAULT_DATABASE}"
        try:
            url = make_url(raw)
        except ArgumentError as exc:
            raise self.error("database.url", f"not a database URL: {exc}") from None
        if (
            url.get_backend_name() == "sqlite"
            and url.database not in (None, "", ":memory:")
            and not Path(url.database).is_absolute()
        ):
            url = url.set(database=str(self.root / url.database))
        if env_name := section.get("password_env"):
            if env_name not in self.env:
                raise self.error(
                    "database.password_env",
                    f"names the environment variable {env_name} but it is not set",
                )
            url = url.set(password=self.env[env_name])
        return url.render_as_string(hide_password=False)

    @property
    def database_echo(self) -> bool:
        return bool(self.data.get("database", {}).get("echo", False))

    @property
    def plugins_enabled(self) -> list[str]:
        return list(self.data.get("plugins", {}).get("enabled", []))

    @property
    def events(self) -> EventSettings:
        return EventSettings(**self.data.get("events", {}))

    @property
    def customer_fields(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.get("customer_fields", {}))

    def plugin_section(self, name: str) -> dict[str, Any]:
        """The ``[plugin.<name>]`` table (empty when absent)."""
        return dict(self.data.get("plugin", {}).get(name, {}))


def find_config(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    """The config file to use: the argument, ``CRMKIT_CONFIG``, or ``./crmkit.toml``."""
    if path is not None:
        return Path(path)
    if env.get("CRMKIT_CONFIG"):
        return Path(env["CRMKIT_CONFIG"])
    default = Path.cwd() / CONFIG_FILENAME
    return default if default.exists() else None


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Load, override from the environment and validate the deployment's configuration."""
    env = dict(os.environ if env is None else env)
    file = find_config(path, env)
    data: dict[str, Any] = {}
    if file is not None:
        source = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                "no such file; run `crmkit init` to create one", file=source
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read: {exc}", file=source) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", file=source) from None
    source = str(file) if file else "<defaults>"
    data = apply_env_overrides(data, env)
    validate_config(data, source, from_env=env_sources(env))
    root = file.resolve().parent if file else Path.cwd()
    return Config(data=data, path=file.resolve() if file else None, root=root, env=env)


def _scalar_settings() -> dict[tuple[str, str], dict[str, Any]]:
    schema = load_kernel_schema("config")
    settings: dict[tuple[str, str], dict[str, Any]] = {}
    for section, section_schema in schema["properties"].items():
        for key, key_schema in section_schema.get("properties", {}).items():
            settings[(section, key)] = key_schema
    return settings


def _parse_env(name: str, raw: str, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
        if kind == "boolean":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind == "array":
            return [item.strip() for item in raw.split(",") if item.strip()]
    except ValueError:
        raise ConfigError(f"{raw!r} is not a valid {kind}", file="environment", key=name) from None
    return raw


def env_sources(env: Mapping[str, str]) -> dict[str, str]:
    """``{"section.key": "CRMKIT_SECTION_KEY"}`` for every override set in ``env``."""
    return {
        f"{section}.{key}": name
        for section, key in _scalar_settings()
        if (name := f"{ENV_PREFIX}{section}_{key}".upper()) in env
    }


def apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """``data`` with every ``CRMKIT_<SECTION>_<KEY>`` variable applied."""
    result = copy.deepcopy(data)
    for (section, key), schema in _scalar_settings().items():
        name = f"{ENV_PREFIX}{section}_{key}".upper()
        if name in env:
            target = result.setdefault(section, {})
            if isinstance(target, dict):
                target[key] = _parse_env(name, env[name], schema)
    return result


_SECRET_KEYS = ("password", "passwd", "secret", "token", "api_key")


def _unknown_keys(
    data: Mapping[str, Any], schema: Mapping[str, Any]
) -> list[tuple[str, list[str]]]:
    """``(dotted key, the keys allowed there)`` for every key the schema does not define."""
    sections = schema["properties"]
    found: list[tuple[str, list[str]]] = []
    for section, value in data.items():
        if section not in sections:
            found.append((section, list(sections)))
        elif isinstance(value, dict) and sections[section].get("additionalProperties") is False:
            known = list(sections[section].get("properties", {}))
            found.extend((f"{section}.{key}", known) for key in value if key not in known)
    return found


def _unknown_key_error(
    data: Mapping[str, Any], unknown: list[tuple[str, list[str]]], source: str
) -> ConfigError:
    key, known = unknown[0]
    section, _, leaf = key.rpartition(".")
    others = f" (also unknown: {', '.join(k for k, _ in unknown[1:])})" if unknown[1:] else ""
    if any(secret in leaf.lower() for secret in _SECRET_KEYS):
        return ConfigError(
            f"unknown key {leaf!r}: secrets never go in the file; name the environment "
            f'variable that holds it instead (e.g. password_env = "CRMKIT_DB_PASSWORD"){others}',
            file=source,
            key=key,
        )
    close = difflib.get_close_matches(leaf, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    if section:
        what = f"unknown key {leaf!r} in [{section}]"
    elif isinstance(data.get(key), dict):
        what = f"unknown section [{key}]"
    else:
        what = f"unknown top-level key {key!r}"
    return ConfigError(
        f"{what}; {hint}allowed: {', '.join(known) or 'none'}{others}", file=source, key=key
    )


def validate_config(
    data: Mapping[str, Any], source: str, *, from_env: Mapping[str, str] | None = None
) -> None:
    """Raise :class:`ConfigError` naming the file and key of the first problems found.

    ``from_env`` maps the dotted keys that environment variables overrode to those
    variables, so that a bad value is blamed on the variable, not on the file.
    """
    from_env = from_env or {}
    schema = load_kernel_schema("config")
    unknown = _unknown_keys(data, schema)
    if unknown:
        raise _unknown_key_error(data, unknown, source)
    issues = issues_of(compile_schema(schema, "config.schema.json"), data)
    if issues:
        first = issues[0]
        more = f" (and {len(issues) - 1} more: " + "; ".join(map(str, issues[1:])) + ")" \
            if len(issues) > 1 else ""
        if first.path in from_env:
            raise ConfigError(
                f"{first.message} (it overrides {first.path} of {source}){more}",
                file="environment",
                key=from_env[first.path],
            )
        raise ConfigError(f"{first.message}{more}", file=source, key=first.path or None)
    for name, fragment in data.get("customer_fields", {}).items():
        try:
            compile_schema(fragment, f"customer field {name!r}")
        except ValidationError as exc:
            problem = "; ".join(
                f"{issue.message} at {issue.path}" if issue.path else issue.message
                for issue in exc.issues
            )
            raise ConfigError(
                f"{problem}; each custom field is a JSON Schema (2020-12) fragment such as "
                '{ type = "string", maxLength = 100 }',
                file=source,
                key=f"customer_fields.{name}",
            ) from None
    url = data.get("database", {}).get("url")
    if url:
        url_source, url_key = (
            ("environment", from_env["database.url"]) if "database.url" in from_env
            else (source, "database.url")
        )
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigError(f"not a database URL: {exc}", file=url_source, key=url_key) from None
        secret_params = sorted(
            param for param in parsed.query if any(s in param.lower() for s in _SECRET_KEYS)
        )
        # A secret in the file is refused; the environment is where secrets belong.
        if (parsed.password or secret_params) and "database.url" not in from_env:
            where = f" (in its {', '.join(secret_params)} parameter)" if secret_params else ""
            raise ConfigError(
                f"contains a password{where}; remove it, put the password in an "
                "environment variable and name that variable with database.password_env",
                file=source,
                key="database.url",
            )


def set_enabled_plugins(path: Path, names: list[str]) -> None:
    """Rewrite ``plugins.enabled`` in ``path``, keeping the file's comments and layout."""
    try:
        document = tomlkit.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            "no such file; run `crmkit init` to create one", file=str(path)
        ) from None
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from None
    plugins = document.get("plugins")
    if plugins is None:
        plugins = tomlkit.table()
        document["plugins"] = plugins
    array = tomlkit.array()
    array.extend(names)
    plugins["enabled"] = array
    text = tomlkit.dumps(document)
    validate_config(tomllib.loads(text), str(path))
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
