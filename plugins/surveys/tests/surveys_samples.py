"""Sample documents shared by the surveys tests (a module, not conftest: several
conftest.py files share that module name when the whole repository is tested)."""

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: A small survey with one question of every kind the reports score.
DOC = {
    "key": "service",
    "title": "Service feedback",
    "pages": [
        {"title": "Overall", "questions": [
            {"id": "recommend", "type": "nps", "text": "Recommend us?", "required": True},
            {"id": "why", "type": "text", "text": "Why so low?",
             "show_if": {"question": "recommend", "in": [0, 1, 2, 3, 4, 5, 6]}},
        ]},
        {"questions": [
            {"id": "satisfied", "type": "rating", "text": "Satisfied?", "required": True,
             "metric": "csat"},
            {"id": "effort", "type": "scale", "text": "Easy?", "min": 1, "max": 7,
             "metric": "ces"},
            {"id": "channel", "type": "single_choice", "text": "How?",
             "choices": ["phone", "mail"]},
            {"id": "topics", "type": "multiple_choice", "text": "About?",
             "choices": ["a", "b", "c"], "max_choices": 2},
            {"id": "fixed", "type": "yes_no", "text": "Fixed?"},
            {"id": "team", "type": "matrix", "text": "Team", "rows": ["speed", "tone"],
             "columns": ["bad", "ok", "good"]},
        ]},
    ],
}

EMPLOYEE_DOC = {
    "key": "pulse", "title": "Pulse", "audience": "employees", "anonymous": True,
    "pages": [{"questions": [
        {"id": "enps", "type": "nps", "text": "Recommend us as an employer?", "required": True},
        {"id": "idea", "type": "text", "text": "One idea"},
    ]}],
}
