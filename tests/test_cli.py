"""The admin tool, through click's CliRunner on every database backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from crmkit import Crm
from crmkit.cli import cli
from crmkit.config import load_config
from crmkit.models import Customer, OutboxEvent
from crmkit.testing import reset_database


@pytest.fixture
def config_file(crmkit_database_url: str, tmp_path: Path) -> Path:
    path = tmp_path / "crmkit.toml"
    path.write_text(
        "# test deployment\n"
        f'[database]\nurl = "{crmkit_database_url}"\n\n'
        "[plugins]\nenabled = []  # none\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def run(config_file: Path):
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, ["--config", str(config_file), *args], input=input,
                             env={"CRMKIT_ACTOR": "tester"})

    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def failed(result: Result, *needles: str) -> str:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    for needle in needles:
        assert needle in result.output, result.output
    return result.output


def count(config_file: Path, model: type) -> int:
    crm = Crm(load_config(config_file), discover_plugins=False)
    try:
        with crm.session() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0
    finally:
        crm.close()


def add_acme(run) -> dict:
    result = ok(run("customers", "add", "--kind", "organization", "--name", "Acme GmbH",
                    "--email", "Info@Acme.example", "--tag", "vip", "--ref", "erp=100042",
                    "--json"))
    return json.loads(result.stdout)


def test_customers_add_show_list_update(run, config_file: Path) -> None:
    acme = add_acme(run)
    assert acme["email"] == "info@acme.example"
    assert acme["tags"] == ["vip"] and acme["version"] == 1

    shown = json.loads(ok(run("customers", "show", str(acme["id"]), "--json")).stdout)
    assert shown["external_refs"] == {"erp": "100042"}
    assert "Acme GmbH" in ok(run("customers", "show", str(acme["id"]))).output

    listed = json.loads(ok(run("customers", "list", "--name", "acme", "--json")).stdout)
    assert [c["id"] for c in listed["customers"]] == [acme["id"]]
    assert "Acme GmbH" in ok(run("customers", "list", "--tag", "vip")).output
    assert "No customers match." in ok(run("customers", "list", "--tag", "nope")).output

    updated = json.loads(ok(run("customers", "update", str(acme["id"]), "--version", "1",
                                "--name", "Acme AG", "--add-tag", "key", "--remove-tag", "vip",
                                "--json")).stdout)
    assert updated["name"] == "Acme AG" and updated["tags"] == ["key"]
    assert updated["version"] == 2

    audit = json.loads(ok(run("audit", "--entity", "customer", "--id", str(acme["id"]),
                              "--json")).stdout)
    assert [a["action"] for a in audit][0] == "update"
    assert {a["action"] for a in audit} == {"update", "link", "create"}
    assert audit[0]["actor"] == "tester"
    assert audit[0]["changes"]["before"]["name"] == "Acme GmbH"


def test_customers_list_pages(run) -> None:
    for n in range(5):
        ok(run("customers", "add", "--kind", "person", "--name", f"Person {n}"))
    first = json.loads(ok(run("customers", "list", "--limit", "2", "--json")).stdout)
    assert len(first["customers"]) == 2 and first["next_after"] is not None
    second = json.loads(ok(run("customers", "list", "--limit", "2", "--after",
                               str(first["next_after"]), "--json")).stdout)
    assert {c["id"] for c in first["customers"]}.isdisjoint(c["id"] for c in second["customers"])
    assert "More: --after" in ok(run("customers", "list", "--limit", "2")).output


def test_stale_version_is_refused_and_changes_nothing(run, config_file: Path) -> None:
    acme = add_acme(run)
    ok(run("customers", "update", str(acme["id"]), "--name", "Acme AG"))
    out = failed(run("customers", "update", str(acme["id"]), "--version", "1", "--name", "X"),
                 "changed by someone else", "version 2")
    assert out.startswith("Error:")
    shown = json.loads(ok(run("customers", "show", str(acme["id"]), "--json")).stdout)
    assert shown["name"] == "Acme AG" and shown["version"] == 2


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--email", "not-an-email"], ["email", "not a valid email"]),
        (["--phone", "call me"], ["phone"]),
        (["--attr", "loyalty=1"], ["attributes", "unknown field 'loyalty'"]),
        (["--tag", "has space"], ["tags[0]"]),
        (["--name", "x" * 600], ["name", "too long"]),
    ],
)
def test_customers_add_bad_input(run, config_file: Path, args: list[str], needles: list[str]
                                 ) -> None:
    base = ["customers", "add", "--kind", "person"]
    if "--name" not in args:
        base += ["--name", "Jana"]
    failed(run(*base, *args), *needles)
    assert count(config_file, Customer) == 0
    assert count(config_file, OutboxEvent) == 0


def test_unknown_customer_and_nothing_to_change(run) -> None:
    failed(run("customers", "show", "999"), "no customer with id 999")
    failed(run("interactions", "list", "999"), "no customer with id 999")
    acme = add_acme(run)
    failed(run("customers", "update", str(acme["id"])), "nothing to change")
    failed(run("customers", "update", str(acme["id"]), "--unset-attr", "nope"), "no attribute")
    failed(run("customers", "show", "abc"), "is not a valid integer")


def test_contacts(run) -> None:
    acme = add_acme(run)
    jana = json.loads(ok(run("customers", "add", "--kind", "person", "--name", "Jana",
                             "--json")).stdout)
    ok(run("customers", "add-contact", str(acme["id"]), str(jana["id"]), "--role", "buyer"))
    shown = json.loads(ok(run("customers", "show", str(acme["id"]), "--json")).stdout)
    assert shown["contacts"] == [{"id": jana["id"], "name": "Jana", "role": "buyer"}]
    failed(run("customers", "add-contact", str(jana["id"]), str(acme["id"])),
           "contacts link a person to an organization")


def test_interactions_log_and_timeline(run) -> None:
    acme = add_acme(run)
    cid = str(acme["id"])
    ok(run("interactions", "log", cid, "--channel", "phone", "--kind", "complaint",
           "--summary", "Unit stopped", "--at", "2026-10-01T08:00:00Z"))
    logged = json.loads(ok(run("interactions", "log", cid, "--channel", "web", "--kind",
                               "purchase", "--summary", "Order", "--amount", "199.90",
                               "--currency", "eur", "--payload", '{"order": "SO-1"}',
                               "--at", "2026-10-02T08:00:00+02:00", "--json")).stdout)
    assert logged["currency"] == "EUR" and logged["payload"] == {"order": "SO-1"}
    assert logged["occurred_at"].startswith("2026-10-02T06:00:00")
    timeline = json.loads(ok(run("interactions", "list", cid, "--json")).stdout)
    assert [i["kind"] for i in timeline] == ["purchase", "complaint"]
    only = json.loads(ok(run("interactions", "list", cid, "--kind", "complaint", "--json")).stdout)
    assert [i["summary"] for i in only] == ["Unit stopped"]
    assert "Unit stopped" in ok(run("interactions", "list", cid)).output


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--channel", "pigeon"], ["channel", "unknown channel 'pigeon'", "phone"]),
        (["--kind", "gossip"], ["kind", "unknown interaction kind"]),
        (["--at", "yesterday"], ["occurred_at", "ISO 8601"]),
        (["--at", "2026-10-01T08:00:00"], ["occurred_at", "time zone"]),
        (["--payload", "{not json"], ["--payload", "not valid JSON"]),
        (["--payload", "[1]"], ["--payload", "JSON object"]),
        (["--amount", "12.5"], ["currency"]),
        (["--amount", "1e5", "--currency", "EUR"], ["amount"]),
        (["--amount", "5", "--currency", "XYZ"], ["currency", "ISO 4217"]),
    ],
)
def test_interactions_log_bad_input(run, config_file: Path, args: list[str],
                                    needles: list[str]) -> None:
    cid = str(add_acme(run)["id"])
    before = count(config_file, OutboxEvent)
    defaults = {"--channel": "phone", "--kind": "note"}
    extra = [x for k, v in defaults.items() if k not in args for x in (k, v)]
    failed(run("interactions", "log", cid, "--summary", "s", *extra, *args), *needles)
    assert count(config_file, OutboxEvent) == before


def test_events_list_dispatch_retry(run, config_file: Path) -> None:
    config_file.write_text(config_file.read_text() + '\n[events]\ndispatch = "worker"\n')
    add_acme(run)
    pending = json.loads(ok(run("events", "list", "--status", "pending", "--json")).stdout)
    assert [e["name"] for e in pending] == ["customer.created"]
    result = json.loads(ok(run("events", "dispatch", "--json")).stdout)
    assert result == {"delivered": 1, "retrying": 0, "dead": 0}
    assert json.loads(ok(run("events", "list", "--status", "pending", "--json")).stdout) == []
    assert "delivered 1" in ok(run("events", "list")).output
    failed(run("events", "retry"), "give event ids")
    failed(run("events", "retry", "424242"), "no event with id 424242")
    failed(run("events", "retry", "--dead"), "Aborted")  # asks, and stdin says nothing
    assert "0 event(s)" in ok(run("events", "retry", "--dead", "--yes")).output


def test_worker_delivers_and_stops_on_sigterm(config_file: Path) -> None:
    config_file.write_text(config_file.read_text() + '\n[events]\ndispatch = "worker"\n')
    crm = Crm(load_config(config_file), discover_plugins=False)
    try:
        with crm.transaction(actor="t") as tx:
            tx.customers.create(kind="person", name="Jana")
        env = {**os.environ, "CRMKIT_CONFIG": str(config_file)}
        proc = subprocess.Popen([sys.executable, "-m", "crmkit", "worker", "--poll", "0.1"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        deadline = time.monotonic() + 30
        delivered = 0
        while time.monotonic() < deadline and not delivered:
            time.sleep(0.2)
            with crm.session() as session:
                delivered = session.scalar(select(func.count()).select_from(OutboxEvent)
                                           .where(OutboxEvent.status == "delivered")) or 0
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        crm.close()
    assert delivered == 1, out
    assert proc.returncode == 0, out
    assert "Worker stopped: delivered 1" in out


def test_db_status_and_upgrade(run) -> None:
    status = json.loads(ok(run("db", "status", "--json")).stdout)
    [kernel] = status
    assert kernel["branch"] == "crmkit" and kernel["state"] == "at head"
    assert kernel["current"] == kernel["head"] == "0002_workflows"
    assert "crmkit: at 0002_workflows" in ok(run("db", "upgrade")).output


def test_doctor_healthy(run) -> None:
    checks = json.loads(ok(run("doctor", "--json")).stdout)
    assert {c["name"]: c["status"] for c in checks} == {
        "config": "ok", "plugins": "ok", "database": "ok", "migrations": "ok",
        "plugin state": "ok", "outbox": "ok",
    }


def test_doctor_reports_missing_migrations(tmp_path: Path) -> None:
    config = tmp_path / "crmkit.toml"
    config.write_text('[database]\nurl = "sqlite:///empty.db"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "doctor"])
    failed(result, "[FAIL] migrations", "fix: run `crmkit db upgrade`")


def test_doctor_unreachable_database(tmp_path: Path) -> None:
    config = tmp_path / "crmkit.toml"
    config.write_text('[database]\nurl = "postgresql+psycopg://nobody@127.0.0.1:1/none"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "doctor", "--json"])
    assert result.exit_code == 1, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["database"]["status"] == "fail"
    assert "migrations" not in checks


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("[database\n", ["crmkit.toml", "not valid TOML"]),
        ("[database]\nurl = 5\n", ["crmkit.toml", "database.url", "string"]),
        ("[databse]\n", ["crmkit.toml", "databse", "database"]),
        ('[database]\nurl = "postgresql://u:secret@h/db"\n', ["database.url", "password_env"]),
    ],
)
def test_invalid_config_is_one_clear_error(tmp_path: Path, text: str, needles: list[str]) -> None:
    config = tmp_path / "crmkit.toml"
    config.write_text(text)
    result = CliRunner().invoke(cli, ["--config", str(config), "customers", "list"])
    out = failed(result, *needles)
    assert "secret" not in out


def test_init_creates_a_working_deployment(tmp_path: Path) -> None:
    runner = CliRunner()
    target = tmp_path / "deploy"
    result = ok(runner.invoke(cli, ["init", str(target)]))
    assert "Created" in result.output
    text = (target / "crmkit.toml").read_text()
    assert "# crmkit deployment configuration" in text
    assert (target / "crmkit.db").exists()
    ok(runner.invoke(cli, ["--config", str(target / "crmkit.toml"), "doctor"]))
    again = runner.invoke(cli, ["init", str(target)])
    failed(again, "already exists")
    assert (target / "crmkit.toml").read_text() == text


def test_init_on_server_database(crmkit_database_url: str, tmp_path: Path) -> None:
    if crmkit_database_url.startswith("sqlite"):
        url = "sqlite:///other.db"
    else:
        reset_database(crmkit_database_url)  # init must create the schema from nothing
        url = crmkit_database_url
    ok(CliRunner().invoke(cli, ["init", str(tmp_path / "d"), "--database-url", url]))
    status = CliRunner().invoke(cli, ["--config", str(tmp_path / "d" / "crmkit.toml"),
                                      "db", "status", "--json"])
    assert json.loads(ok(status).stdout)[0]["state"] == "at head"


def test_init_with_unusable_database_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "d"
    result = CliRunner().invoke(
        cli, ["init", str(target), "--database-url", "postgresql+psycopg://x@127.0.0.1:1/none"]
    )
    failed(result, "database")
    assert not (target / "crmkit.toml").exists()


def test_plugins_list_and_enable_errors(run, config_file: Path) -> None:
    listed = json.loads(ok(run("plugins", "list", "--json")).stdout)
    assert all(row["installed"] for row in listed)
    before = config_file.read_text()
    failed(run("plugins", "enable", "no_such_plugin"), "no plugin named 'no_such_plugin'")
    failed(run("plugins", "disable", "no_such_plugin"), "is not enabled")
    assert config_file.read_text() == before


def test_python_dash_m_and_help() -> None:
    result = subprocess.run([sys.executable, "-m", "crmkit", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for command in ("customers", "interactions", "audit", "doctor", "plugins", "events", "db"):
        assert command in result.stdout
