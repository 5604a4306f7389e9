"""``crmkit.toml``: loading, environment overrides, validation, and editing that keeps comments.

Every :class:`crmkit.ConfigError` names where the problem is (the file, or the environment
variable) and the key: the tests assert both on the attributes and on the message.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from crmkit import ConfigError
from crmkit.config import EventSettings, load_config, set_enabled_plugins


def write(tmp_path: Path, text: str, name: str = "crmkit.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path.resolve()


def config_error(path: Path | None, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env or {})
    return caught.value


def assert_names(error: ConfigError, file: str, key: str | None) -> None:
    """The error carries ``file`` and ``key`` and its message starts with them."""
    assert (error.file, error.key) == (file, key)
    prefix = ": ".join(part for part in (file, key) if part)
    assert str(error).startswith(f"{prefix}: "), str(error)


# -- loading ---------------------------------------------------------------------------------


def test_load_config_reads_a_file(tmp_path):
    path = write(tmp_path, """
        # The production deployment
        [database]
        url = "postgresql+psycopg://crm@127.0.0.1/crm"
        password_env = "CRM_DB_PASSWORD"
        echo = true

        [plugins]
        enabled = ["sales", "campaigns"]

        [events]
        dispatch = "worker"
        max_attempts = 5
        backoff_seconds = 0.5

        [plugin.sales]
        currency = "EUR"
    """)
    config = load_config(path, env={"CRM_DB_PASSWORD": "p@ss:word"})
    assert (config.path, config.root, config.source) == (path, path.parent, str(path))
    assert config.database_url == "postgresql+psycopg://crm:p%40ss%3Aword@127.0.0.1/crm"
    assert config.database_echo is True
    assert config.plugins_enabled == ["sales", "campaigns"]
    assert config.events == EventSettings(dispatch="worker", max_attempts=5, backoff_seconds=0.5)
    assert config.plugin_section("sales") == {"currency": "EUR"}
    assert config.plugin_section("campaigns") == {}


def test_defaults_when_there_is_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(env={})
    assert (config.path, config.source, config.root) == (None, "<defaults>", tmp_path)
    assert config.database_url == f"sqlite:///{tmp_path / 'crmkit.db'}"
    assert config.database_echo is False
    assert config.plugins_enabled == []
    assert config.events == EventSettings()
    assert config.customer_fields == {}


def test_crmkit_toml_in_the_working_directory_is_found(tmp_path, monkeypatch):
    path = write(tmp_path, '[plugins]\nenabled = ["sales"]\n')
    monkeypatch.chdir(tmp_path)
    config = load_config(env={})
    assert config.path == path
    assert config.plugins_enabled == ["sales"]


def test_crmkit_config_names_the_file(tmp_path, monkeypatch):
    path = write(tmp_path / "etc", '[plugins]\nenabled = ["surveys"]\n', name="crm.toml")
    write(tmp_path, '[plugins]\nenabled = ["sales"]\n')  # ignored: CRMKIT_CONFIG wins
    monkeypatch.chdir(tmp_path)
    config = load_config(env={"CRMKIT_CONFIG": str(path)})
    assert config.path == path
    assert config.plugins_enabled == ["surveys"]


def test_a_config_file_that_does_not_exist_is_an_error(tmp_path):
    missing = tmp_path / "nowhere.toml"
    for error in (config_error(missing), config_error(None, {"CRMKIT_CONFIG": str(missing)})):
        assert_names(error, str(missing), None)
        assert "no such file; run `crmkit init` to create one" in str(error)


def test_a_relative_sqlite_path_is_resolved_beside_the_config_file(tmp_path, monkeypatch):
    deploy = tmp_path / "deploy"
    path = write(deploy, '[database]\nurl = "sqlite:///data/crm.db"\n')
    monkeypatch.chdir(tmp_path)  # not where the config is
    assert load_config(path, env={}).database_url == f"sqlite:///{deploy / 'data' / 'crm.db'}"

    absolute = tmp_path / "elsewhere.db"
    path = write(deploy, f'[database]\nurl = "sqlite:///{absolute}"\n')
    assert load_config(path, env={}).database_url == f"sqlite:///{absolute}"

    path = write(deploy, '[database]\nurl = "sqlite://"\n')
    assert load_config(path, env={}).database_url == "sqlite://"


# -- what is wrong, and where --------------------------------------------------------------------


def test_malformed_toml_names_the_file_and_the_line(tmp_path):
    path = write(tmp_path, """\
        [database]
        url = "sqlite:///crm.db"
        echo = yes please
    """)
    error = config_error(path)
    assert_names(error, str(path), None)
    assert "not valid TOML" in str(error)
    assert "line 3" in str(error)


@pytest.mark.parametrize("text, key, message", [
    ('[events]\nmax_attempts = "ten"\n', "events.max_attempts",
     "must be of type integer, got str 'ten'"),
    ("[events]\nmax_attempts = 0\n", "events.max_attempts", "must be >= 1, got 0"),
    ('[events]\ndispatch = "celery"\n', "events.dispatch",
     "must be one of 'inline', 'worker', got 'celery'"),
    ("[database]\necho = 1\n", "database.echo", "must be of type boolean, got int 1"),
    ('[plugins]\nenabled = "sales"\n', "plugins.enabled", "must be of type array"),
    ('[plugins]\nenabled = ["Sales"]\n', "plugins.enabled[0]",
     "'Sales' does not match the required pattern"),
    ('[plugins]\nenabled = ["sales", "sales"]\n', "plugins.enabled",
     "must not contain duplicates"),
    ('database = "sqlite:///crm.db"\n', "database", "must be of type object, got str"),
    ("[plugin]\nsales = 5\n", "plugin.sales", "must be of type object, got int 5"),
], ids=["string-for-int", "below-minimum", "not-in-enum", "int-for-bool", "string-for-list",
        "bad-plugin-name", "duplicate-plugin", "scalar-section", "scalar-plugin-table"])
def test_wrong_values_name_the_file_and_key(tmp_path, text, key, message):
    path = write(tmp_path, text)
    error = config_error(path)
    assert_names(error, str(path), key)
    assert message in str(error)


def test_every_problem_is_listed_not_only_the_first(tmp_path):
    path = write(tmp_path, '[events]\nmax_attempts = "ten"\nbatch_size = 0\n')
    error = config_error(path)
    assert_names(error, str(path), "events.batch_size")
    assert "(and 1 more: events.max_attempts: must be of type integer" in str(error)


@pytest.mark.parametrize("text, key, message", [
    ('[database]\nuri = "sqlite:///crm.db"\n', "database.uri",
     "unknown key 'uri' in [database]; did you mean 'url'? allowed: url, password_env, echo"),
    ("[events]\nmax_attempt = 3\n", "events.max_attempt",
     "unknown key 'max_attempt' in [events]; did you mean 'max_attempts'?"),
    ('[databse]\nurl = "sqlite:///crm.db"\n', "databse",
     "unknown section [databse]; did you mean 'database'? allowed: database, plugins, events,"),
    ("[plugins]\nenabled = []\nautoload = true\n", "plugins.autoload",
     "unknown key 'autoload' in [plugins]; allowed: enabled"),
    ("debug = true\n", "debug", "unknown top-level key 'debug'"),
], ids=["misspelled-key", "near-miss", "misspelled-section", "unknown-key", "top-level-key"])
def test_unknown_keys_and_sections_are_named_with_a_suggestion(tmp_path, text, key, message):
    path = write(tmp_path, text)
    error = config_error(path)
    assert_names(error, str(path), key)
    assert message in str(error)


def test_all_unknown_keys_are_listed(tmp_path):
    path = write(tmp_path, "[database]\nuri = 'x'\n[events]\nretries = 3\n")
    error = config_error(path)
    assert_names(error, str(path), "database.uri")
    assert "(also unknown: events.retries)" in str(error)


@pytest.mark.parametrize("text, key", [
    ('[database]\npassword = "hunter2"\n', "database.password"),
    ('[database]\napi_token = "hunter2"\n', "database.api_token"),
], ids=["password", "api-token"])
def test_a_secret_in_the_file_is_refused_and_never_echoed(tmp_path, text, key):
    path = write(tmp_path, text)
    error = config_error(path)
    assert_names(error, str(path), key)
    assert "secrets never go in the file" in str(error)
    assert "password_env" in str(error)
    assert "hunter2" not in str(error)


@pytest.mark.parametrize("url, where", [
    ("postgresql+psycopg://crm:hunter2@127.0.0.1/crm", ""),
    ("postgresql+psycopg://crm@127.0.0.1/crm?password=hunter2", " (in its password parameter)"),
], ids=["userinfo", "query-parameter"])
def test_a_password_inside_database_url_is_refused(tmp_path, url, where):
    path = write(tmp_path, f'[database]\nurl = "{url}"\n')
    error = config_error(path)
    assert_names(error, str(path), "database.url")
    assert f"contains a password{where}; remove it, put the password in an environment " \
           "variable and name that variable with database.password_env" in str(error)
    assert "hunter2" not in str(error)


def test_an_unparseable_database_url_names_the_key(tmp_path):
    path = write(tmp_path, '[database]\nurl = "not a url"\n')
    error = config_error(path)
    assert_names(error, str(path), "database.url")
    assert "not a database URL" in str(error)


def test_password_env_naming_an_unset_variable_names_the_variable(tmp_path):
    path = write(tmp_path, """
        [database]
        url = "postgresql+psycopg://crm@127.0.0.1/crm"
        password_env = "CRM_DB_PASSWORD"
    """)
    config = load_config(path, env={"CRM_DB_PASSWORD_OLD": "x"})
    with pytest.raises(ConfigError) as caught:
        config.database_url  # noqa: B018 - the property raises
    assert_names(caught.value, str(path), "database.password_env")
    assert "names the environment variable CRM_DB_PASSWORD but it is not set" in str(caught.value)


def test_password_env_must_be_a_variable_name(tmp_path):
    path = write(tmp_path, '[database]\npassword_env = "hunter2 is my password"\n')
    error = config_error(path)
    assert_names(error, str(path), "database.password_env")
    assert "does not match the required pattern" in str(error)


# -- environment overrides ---------------------------------------------------------------------


def test_environment_variables_override_the_file(tmp_path):
    path = write(tmp_path, """
        [database]
        url = "sqlite:///from-file.db"

        [events]
        max_attempts = 5
        dispatch = "inline"
    """)
    config = load_config(path, env={
        "CRMKIT_DATABASE_URL": "postgresql+psycopg://crm@127.0.0.1/crm",
        "CRMKIT_EVENTS_MAX_ATTEMPTS": "3",
        "CRMKIT_EVENTS_DISPATCH": "worker",
        "CRMKIT_EVENTS_BACKOFF_SECONDS": "0.25",
        "CRMKIT_DATABASE_ECHO": "yes",
        "CRMKIT_PLUGINS_ENABLED": "sales, campaigns",
    })
    assert config.database_url == "postgresql+psycopg://crm@127.0.0.1/crm"
    assert config.events.max_attempts == 3
    assert config.events.dispatch == "worker"
    assert config.events.backoff_seconds == 0.25
    assert config.database_echo is True
    assert config.plugins_enabled == ["sales", "campaigns"]


def test_environment_overrides_apply_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(env={"CRMKIT_EVENTS_MAX_ATTEMPTS": "7"})
    assert config.path is None
    assert config.events.max_attempts == 7


def test_load_config_reads_os_environ_by_default(tmp_path, monkeypatch):
    path = write(tmp_path, "[events]\nmax_attempts = 5\n")
    monkeypatch.setenv("CRMKIT_EVENTS_MAX_ATTEMPTS", "4")
    assert load_config(path).events.max_attempts == 4


@pytest.mark.parametrize("variable, value, message", [
    ("CRMKIT_EVENTS_MAX_ATTEMPTS", "three", "'three' is not a valid integer"),
    ("CRMKIT_EVENTS_BACKOFF_SECONDS", "2s", "'2s' is not a valid number"),
    ("CRMKIT_DATABASE_ECHO", "maybe", "'maybe' is not a valid boolean"),
])
def test_a_bad_value_in_an_environment_variable_names_the_variable(
    tmp_path, variable, value, message
):
    path = write(tmp_path, "[events]\nmax_attempts = 5\n")
    error = config_error(path, {variable: value})
    assert_names(error, "environment", variable)
    assert message in str(error)


def test_an_environment_value_the_schema_refuses_is_blamed_on_the_variable(tmp_path):
    path = write(tmp_path, "[events]\nmax_attempts = 5\n")
    error = config_error(path, {"CRMKIT_EVENTS_MAX_ATTEMPTS": "0"})
    assert_names(error, "environment", "CRMKIT_EVENTS_MAX_ATTEMPTS")
    assert f"must be >= 1, got 0 (it overrides events.max_attempts of {path})" in str(error)


def test_a_password_in_the_database_url_variable_is_allowed(tmp_path):
    # The rule is "no secrets in the file"; the environment is where they belong.
    path = write(tmp_path, '[database]\nurl = "sqlite:///crm.db"\n')
    url = "postgresql+psycopg://crm:s3cret@127.0.0.1/crm"
    assert load_config(path, env={"CRMKIT_DATABASE_URL": url}).database_url == url


# -- custom customer fields --------------------------------------------------------------------


def test_customer_fields_are_loaded(tmp_path):
    path = write(tmp_path, """
        [customer_fields.vat_id]
        type = "string"
        maxLength = 20

        [customer_fields]
        segment = { enum = ["smb", "enterprise"] }
    """)
    assert load_config(path, env={}).customer_fields == {
        "vat_id": {"type": "string", "maxLength": 20},
        "segment": {"enum": ["smb", "enterprise"]},
    }


@pytest.mark.parametrize("text, key, message", [
    ('[customer_fields.vat_id]\ntype = "text"\n', "customer_fields.vat_id",
     "invalid JSON Schema: 'text' is not valid under any of the given schemas at type"),
    ("[customer_fields.segment]\nenum = 5\n", "customer_fields.segment",
     "invalid JSON Schema: 5 is not of type 'array' at enum"),
    ('[customer_fields]\nvat_id = "string"\n', "customer_fields.vat_id",
     "must be of type object, got str 'string'"),
    ('[customer_fields.VatId]\ntype = "string"\n', "customer_fields",
     "'VatId' does not match the required pattern"),
], ids=["unknown-type", "enum-not-a-list", "not-a-table", "bad-name"])
def test_a_broken_customer_field_names_the_field(tmp_path, text, key, message):
    path = write(tmp_path, text)
    error = config_error(path)
    assert_names(error, str(path), key)
    assert message in str(error)


# -- editing the file --------------------------------------------------------------------------

COMMENTED = """\
# crmkit.toml for the Hamburg office
[database]
url = "sqlite:///crm.db"  # moved to PostgreSQL in Q3

[plugins]
# sales first: campaigns needs it
enabled = ["sales"]

[plugin.sales]
currency = "EUR"  # invoices are in euro
"""


def test_set_enabled_plugins_keeps_comments_and_layout(tmp_path):
    path = write(tmp_path, COMMENTED)
    set_enabled_plugins(path, ["sales", "campaigns"])
    text = path.read_text(encoding="utf-8")
    assert text == COMMENTED.replace('enabled = ["sales"]', 'enabled = ["sales", "campaigns"]')
    assert load_config(path, env={}).plugins_enabled == ["sales", "campaigns"]


def test_set_enabled_plugins_adds_the_section_when_missing(tmp_path):
    path = write(tmp_path, '# minimal\n[database]\nurl = "sqlite:///crm.db"\n')
    set_enabled_plugins(path, ["surveys"])
    text = path.read_text(encoding="utf-8")
    assert text.startswith('# minimal\n[database]\nurl = "sqlite:///crm.db"\n')
    assert load_config(path, env={}).plugins_enabled == ["surveys"]


def test_set_enabled_plugins_refuses_an_invalid_list_and_leaves_the_file_alone(tmp_path):
    path = write(tmp_path, COMMENTED)
    with pytest.raises(ConfigError) as caught:
        set_enabled_plugins(path, ["Sales Pro"])
    assert_names(caught.value, str(path), "plugins.enabled[0]")
    assert path.read_text(encoding="utf-8") == COMMENTED
    assert not path.with_suffix(".toml.tmp").exists()


def test_set_enabled_plugins_on_a_missing_file_names_it(tmp_path):
    missing = tmp_path / "crmkit.toml"
    with pytest.raises(ConfigError) as caught:
        set_enabled_plugins(missing, ["sales"])
    assert_names(caught.value, str(missing), None)
    assert "run `crmkit init`" in str(caught.value)
