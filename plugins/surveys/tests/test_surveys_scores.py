"""NPS, CSAT and CES against examples worked out by hand."""

import pytest
from surveys_samples import DOC

from crmkit_surveys.definition import parse
from crmkit_surveys.scores import ces, csat, nps, percent, question_stats


def test_nps_worked_example():
    # 10 answers: promoters 10, 10, 9, 9 (4); passives 8, 7 (2); detractors 6, 5, 3, 0 (4).
    # NPS = 100 * (4 - 4) / 10 = 0
    assert nps([10, 9, 9, 8, 7, 6, 3, 0, 10, 5]) == {
        "nps": 0.0, "responses": 10, "promoters": 4, "passives": 2, "detractors": 4}


def test_nps_positive_and_negative():
    # 3 promoters (10, 10, 9), 1 passive (8), 1 detractor (6): 100 * (3 - 1) / 5 = 40
    assert nps([10, 10, 9, 8, 6])["nps"] == 40.0
    # 2 promoters, 1 passive, 4 detractors of 7: 100 * -2 / 7 = -28.571... -> -28.6
    assert nps([10, 9, 8, 0, 0, 0, 1])["nps"] == -28.6
    assert nps([0, 6])["nps"] == -100.0 and nps([9, 10])["nps"] == 100.0


def test_nps_of_nothing_is_none():
    assert nps([]) == {"nps": None, "responses": 0, "promoters": 0, "passives": 0,
                       "detractors": 0}


def test_csat_worked_example():
    # 8 ratings 1-5; satisfied = 4 or 5: 5, 4, 4, 5, 4 -> 5 of 8 = 62.5 %
    assert csat([5, 4, 4, 3, 2, 1, 5, 4], high=5) == {
        "csat": 62.5, "satisfied": 5, "responses": 8}


def test_ces_worked_example():
    # 1-7: average (7 + 6 + 5 + 7 + 2) / 5 = 5.4; easy = 6 or 7: 3 of 5 = 60 %
    assert ces([7, 6, 5, 7, 2], high=7) == {"ces": 5.4, "easy_percent": 60.0,
                                           "responses": 5}


@pytest.mark.parametrize(("part", "whole", "expected"), [
    (1, 8, 12.5), (49, 400, 12.3), (1, 3, 33.3), (2, 3, 66.7), (-1, 8, -12.5), (0, 0, None),
])
def test_percent_rounds_half_away_from_zero(part, whole, expected):
    assert percent(part, whole) == expected


def test_question_stats_per_type():
    survey = parse(DOC)
    stats = question_stats(survey.question("recommend"), [10, 9, 3])
    assert stats["nps"] == 33.3 and stats["average"] == 7.33
    assert stats["distribution"]["10"] == 1 and stats["distribution"]["0"] == 0
    assert question_stats(survey.question("satisfied"), [5, 1])["csat"] == 50.0
    assert question_stats(survey.question("topics"), [["a"], ["a", "c"]])["distribution"] == \
        {"a": 2, "b": 0, "c": 1}
    assert question_stats(survey.question("fixed"), [True, False, True])["distribution"] == \
        {"yes": 2, "no": 1}
    team = question_stats(survey.question("team"), [{"speed": "ok"}, {"speed": "ok",
                                                                     "tone": "bad"}])
    assert team["distribution"] == {"speed": {"bad": 0, "ok": 2, "good": 0},
                                    "tone": {"bad": 1, "ok": 0, "good": 0}}
