"""Scores, as pure functions of the answers (checked against hand-worked examples).

* **NPS** (Net Promoter Score, 0-10 question): promoters answer 9 or 10, passives 7 or 8,
  detractors 0 to 6. NPS = 100 × (promoters − detractors) / answers, from −100 to +100.
* **CSAT** (customer satisfaction, a rating or scale question marked ``metric = "csat"``):
  the share of satisfied answers, the top two points of the scale (4 and 5 of 1-5), in %.
* **CES** (customer effort score, marked ``metric = "ces"``): the average answer, and the
  share of answers in the top two points (e.g. 6 and 7 of "1 = very difficult, 7 = very
  easy"), in %.

Percentages are rounded half away from zero to one decimal (Decimal, not float rounding,
so 12.25 is 12.3 on every platform).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from crmkit_surveys.definition import NUMERIC_TYPES, Question

__all__ = ["ces", "csat", "nps", "percent", "question_stats"]


def percent(part: int, whole: int) -> float | None:
    """``100 × part / whole`` to one decimal; ``None`` when ``whole`` is 0."""
    if whole == 0:
        return None
    value = (Decimal(100) * part / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return float(value)


def _average(values: Sequence[int]) -> float | None:
    if not values:
        return None
    return float((Decimal(sum(values)) / len(values)).quantize(Decimal("0.01"),
                                                                rounding=ROUND_HALF_UP))


def nps(scores: Sequence[int]) -> dict[str, Any]:
    """NPS of 0-10 ``scores`` with the counts it is made of."""
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    passives = len(scores) - promoters - detractors
    return {"nps": percent(promoters - detractors, len(scores)), "responses": len(scores),
            "promoters": promoters, "passives": passives, "detractors": detractors}


def csat(values: Sequence[int], high: int) -> dict[str, Any]:
    """CSAT: the % of ``values`` in the top two points of a scale ending at ``high``."""
    satisfied = sum(1 for v in values if v >= high - 1)
    return {"csat": percent(satisfied, len(values)), "satisfied": satisfied,
            "responses": len(values)}


def ces(values: Sequence[int], high: int) -> dict[str, Any]:
    """CES: the average effort answer and the % in the top two (easiest) points."""
    easy = sum(1 for v in values if v >= high - 1)
    return {"ces": _average(values), "easy_percent": percent(easy, len(values)),
            "responses": len(values)}


def question_stats(question: Question, answers: Sequence[Any]) -> dict[str, Any]:
    """Count, average, distribution and the question's score for its ``answers``."""
    stats: dict[str, Any] = {"question": question.id, "type": question.type,
                             "text": question.text, "answers": len(answers)}
    if question.type in NUMERIC_TYPES:
        assert question.low is not None and question.high is not None
        counts = Counter(answers)
        stats["average"] = _average(answers)
        stats["distribution"] = {str(v): counts.get(v, 0)
                                 for v in range(question.low, question.high + 1)}
        if question.type == "nps":
            stats.update({k: v for k, v in nps(answers).items() if k != "responses"})
        elif question.metric == "csat":
            stats["csat"] = csat(answers, question.high)["csat"]
        elif question.metric == "ces":
            result = ces(answers, question.high)
            stats["ces"], stats["easy_percent"] = result["ces"], result["easy_percent"]
    elif question.type == "yes_no":
        stats["distribution"] = {"yes": sum(1 for a in answers if a is True),
                                 "no": sum(1 for a in answers if a is False)}
    elif question.type in ("single_choice", "multiple_choice"):
        counts = Counter(c for a in answers for c in (a if isinstance(a, list) else [a]))
        stats["distribution"] = {c: counts.get(c, 0) for c in question.choices}
    elif question.type == "matrix":
        stats["distribution"] = {
            row: {col: sum(1 for a in answers if a.get(row) == col) for col in question.columns}
            for row in question.rows
        }
    return stats
