"""The plugin as crmkit sees it (this module sorts first, so the first test proves the
entry point is discovered), then config, migrations and DSR hooks."""

import pytest
from crmkit import ConfigError
from crmkit.plugins import discover
from sqlalchemy import inspect

import crmkit_surveys
from crmkit_surveys.responses import respond


def test_the_entry_point_is_discovered():
    installed = discover()["surveys"]
    assert installed.distribution == "crmkit_surveys"
    assert installed.load() is crmkit_surveys


def test_its_branch_creates_the_prefixed_tables(crm):
    tables = set(inspect(crm.engine).get_table_names())
    assert {"surveys_survey", "surveys_invitation", "surveys_response"} <= tables


def test_the_schema_ships_in_the_package():
    from crmkit_surveys.definition import survey_schema

    assert survey_schema()["title"] == "Survey definition"


@pytest.mark.parametrize(("table", "key"), [
    ({"min_group_size": 0}, "plugin.surveys.min_group_size"),
    ({"expires_after": "14 days"}, "plugin.surveys.expires_after"),
    ({"link": "https://x.example/"}, "plugin.surveys.link"),
    ({"colour": "red"}, "plugin.surveys"),
])
def test_a_bad_config_table_is_refused(crm_factory, table, key):
    with pytest.raises(ConfigError) as info:
        crm_factory(config={"plugin": {"surveys": table}})
    assert info.value.key == key


def test_export_and_erase(crm, people, publish, invite):
    key = publish()
    [token] = invite(key, [people[1]])
    with crm.transaction() as tx:
        respond(tx, token, {"recommend": 4, "why": "Bob here, too slow", "satisfied": 2})
    with crm.transaction() as tx:
        exported = tx.customers.export_data(people[1])["surveys"]
    assert exported["invitations"][0]["survey"] == "service"
    assert exported["invitations"][0]["answered"] == "complete"
    assert exported["responses"][0]["answers"]["why"] == "Bob here, too slow"
    with crm.transaction() as tx:
        tx.customers.erase(people[1])
    with crm.transaction() as tx:
        assert "surveys" not in tx.customers.export_data(people[1])
    from sqlalchemy import select

    from crmkit_surveys.models import Invitation, Response
    with crm.session() as session:
        response = session.scalars(select(Response)).one()
        assert response.customer_id is None and response.invitation_id is None
        assert response.answers == {"recommend": 4, "satisfied": 2}  # the text is gone
        assert session.scalars(select(Invitation)).all() == []


def test_an_employee_can_be_forgotten(crmkit_cli, tmp_path):
    import json

    from surveys_samples import EXAMPLES

    named = json.loads((EXAMPLES / "pulse.json").read_text(encoding="utf-8"))
    named.update(key="named", anonymous=False)
    path = tmp_path / "named.json"
    path.write_text(json.dumps(named), encoding="utf-8")
    crmkit_cli.ok("surveys", "add", str(path))
    crmkit_cli.ok("surveys", "publish", "named")
    staff = tmp_path / "staff.csv"
    staff.write_text("name,email,department,role\nAnn,ann@corp.example,it,lead\n",
                     encoding="utf-8")
    [sent] = json.loads(crmkit_cli.ok("surveys", "send", "named", "--employees", str(staff),
                                      "--json").stdout)
    crmkit_cli.ok("surveys", "respond", sent["token"], "--answers",
                  '{"enps": 8, "idea": "Ann wants a desk"}')
    out = crmkit_cli.ok("surveys", "forget-employee", "ANN@corp.example").stdout
    assert out.strip() == "Removed 1 invitation(s) of ann@corp.example"
    report = json.loads(crmkit_cli.ok("surveys", "report", "named", "--json").stdout)
    assert report["responses"] == 1 and report["free_text"] == []
    assert report["questions"][0]["answers"] == 1
