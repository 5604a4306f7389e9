"""Survey documents and answers: what is accepted, and errors that name the field."""

import json

import pytest
from crmkit import ValidationError
from surveys_samples import DOC, EMPLOYEE_DOC, EXAMPLES

from crmkit_surveys.answers import check_answers
from crmkit_surveys.definition import load_document, parse


def problems(document):
    with pytest.raises(ValidationError) as info:
        parse(document)
    return {issue.path: issue.message for issue in info.value.issues}


def test_the_examples_are_valid_in_toml_and_json():
    service = parse(load_document(EXAMPLES / "service-feedback.toml"))
    assert service.key == "service-feedback" and len(service.questions) == 9
    assert [q.type for q in service.questions][:3] == ["nps", "text", "rating"]
    pulse = parse(load_document(EXAMPLES / "pulse.json"))
    assert pulse.anonymous and pulse.audience == "employees"


def test_ranges_are_resolved():
    survey = parse(DOC)
    assert (survey.question("recommend").low, survey.question("recommend").high) == (0, 10)
    assert (survey.question("satisfied").low, survey.question("satisfied").high) == (1, 5)
    assert (survey.question("effort").low, survey.question("effort").high) == (1, 7)


def test_schema_errors_name_the_path(doc):
    doc["pages"][1]["questions"][1]["type"] = "slider"
    del doc["pages"][1]["questions"][2]["choices"]
    doc["pages"][0]["questions"][0]["colour"] = "red"
    found = problems(doc)
    assert found["pages[1].questions[1].type"].startswith("must be one of 'nps'")
    assert found["pages[1].questions[2]"] == "missing required field 'choices'"
    assert found["pages[0].questions[0]"] == "unknown field 'colour'"


def test_a_scale_needs_its_range(doc):
    del doc["pages"][1]["questions"][1]["max"]
    assert problems(doc) == {"pages[1].questions[1]": "missing required field 'max'"}


def test_checks_beyond_the_schema(doc):
    questions = doc["pages"][1]["questions"]
    questions[1]["min"], questions[1]["max"] = 5, 5
    questions[0]["id"] = "recommend"
    questions[3]["max_choices"] = 4
    questions[4]["choices"] = ["x", "y"]
    questions[0]["metric"] = "ces"
    found = problems(doc)
    assert found["pages[1].questions[1].max"] == "must be greater than min (5)"
    assert found["pages[1].questions[0].id"] == \
        "duplicate question id 'recommend' (first at pages[0].questions[0])"
    assert found["pages[1].questions[3].max_choices"] == "there are only 3 choices"
    assert found["pages[1].questions[4].choices"] == "does not apply to a yes_no question"
    assert len(found) == 4  # a metric on a rating question is fine


def test_branching_must_look_back_at_a_possible_answer(doc):
    doc["pages"][0]["questions"][1]["show_if"] = {"question": "fixed", "equals": True}
    assert problems(doc)["pages[0].questions[1].show_if.question"] == \
        "must name an earlier question; 'fixed' is not one"
    doc["pages"][0]["questions"][1]["show_if"] = {"question": "recommend", "in": [3, 11]}
    assert problems(doc)["pages[0].questions[1].show_if.in[1]"] == \
        "'recommend' cannot be 11: must be from 0 to 10, got 11"


def test_only_employee_surveys_can_be_anonymous(doc):
    doc["anonymous"] = True
    assert "only employee surveys can be anonymous" in problems(doc)["anonymous"]


def test_malformed_files_are_named(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("key = [", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        load_document(bad)
    assert str(info.value).startswith(f"{bad}: not valid TOML")
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([DOC]), encoding="utf-8")
    with pytest.raises(ValidationError, match="must be an object"):
        load_document(listed)
    with pytest.raises(ValidationError, match="cannot read the file"):
        load_document(tmp_path / "missing.json")


FULL = {"recommend": 3, "why": "slow", "satisfied": 4, "effort": 7, "channel": "mail",
        "topics": ["a", "c"], "fixed": False, "team": {"speed": "ok", "tone": "good"}}


def test_a_complete_answer_set_passes():
    checked = check_answers(parse(DOC), FULL)
    assert checked.complete and checked.answers == FULL


@pytest.mark.parametrize(("answers", "path", "message"), [
    ({"recommend": 11}, "recommend", "must be from 0 to 10, got 11"),
    ({"recommend": -1}, "recommend", "must be from 0 to 10, got -1"),
    ({"recommend": 7.5}, "recommend", "must be a whole number from 0 to 10"),
    ({"recommend": True}, "recommend", "must be a whole number from 0 to 10"),
    ({"satisfied": 0}, "satisfied", "must be from 1 to 5, got 0"),
    ({"effort": 8}, "effort", "must be from 1 to 7, got 8"),
    ({"channel": "fax"}, "channel", "must be one of 'phone', 'mail'"),
    ({"topics": ["a", "b", "c"]}, "topics", "must pick from 1 to 2 choices, got 3"),
    ({"topics": ["a", "a"]}, "topics", "must not repeat a choice"),
    ({"topics": ["z"]}, "topics", "'z' is not a choice; choices: 'a', 'b', 'c'"),
    ({"fixed": "yes"}, "fixed", "must be true or false"),
    ({"team": {"speed": "great"}}, "team",
     "'great' (row 'speed') is not a column; columns: 'bad', 'ok', 'good'"),
    ({"team": {"size": "ok"}}, "team", "'size' is not a row; rows: 'speed', 'tone'"),
    ({"why": "   "}, "why", "must be a non-empty text"),
    ({"nope": 1}, "nope", "no such question in survey 'service'"),
])
def test_bad_answers_are_named(answers, path, message):
    with pytest.raises(ValidationError) as info:
        check_answers(parse(DOC), {**FULL, **answers})
    found = {i.path: i.message for i in info.value.issues}
    assert found[path].startswith(message)


def test_required_and_branching():
    survey = parse(DOC)
    with pytest.raises(ValidationError) as info:
        check_answers(survey, {"channel": "mail"})
    assert {i.path: i.message for i in info.value.issues} == {
        "recommend": "is required", "satisfied": "is required"}
    with pytest.raises(ValidationError) as info:
        check_answers(survey, {"recommend": 9, "why": "great", "satisfied": 5})
    assert info.value.issues[0].message.startswith(
        "was not asked (shown only when recommend is one of 0, 1")
    # "why" is optional even when shown; a promoter is never asked it
    assert check_answers(survey, {"recommend": 9, "satisfied": 5}).complete


def test_partial_answers_are_kept_as_partial():
    checked = check_answers(parse(DOC), {"recommend": 2}, partial=True)
    assert not checked.complete and checked.missing == ("satisfied",)
    assert checked.answers == {"recommend": 2}
    # a partial flag on a complete set still gives a complete response
    assert check_answers(parse(DOC), FULL, partial=True).complete


def test_a_required_matrix_needs_every_row(doc):
    doc["pages"][1]["questions"][5]["required"] = True
    with pytest.raises(ValidationError, match="team: is required"):
        check_answers(parse(doc), {**FULL, "team": {"speed": "ok"}})


def test_answers_must_be_an_object():
    with pytest.raises(ValidationError, match="answers: must be an object"):
        check_answers(parse(EMPLOYEE_DOC), [1, 2])
