"""The normal forms, as pure functions."""

import pytest

from crmkit_dataquality.normalize import normalize_email, normalize_phone


@pytest.mark.parametrize(("raw", "country", "expected"), [
    ("+49 30 1234567", None, "+49301234567"),
    ("0049 30 123-4567", None, "+49301234567"),
    ("+49 (0)30 1234567", None, "+49301234567"),
    ("030 / 123 45 67", "49", "+49301234567"),
    ("(030) 1234567", "49", "+49301234567"),
    ("030 1234567", None, "0301234567"),          # national, no country to assume
    ("+1 (415) 555-0100", None, "+14155550100"),
    ("  +44 20 7946 0958 ", "49", "+442079460958"),  # an international number stays
    ("123", "49", "123"),                          # too short to be a number: untouched
    ("+49 30 1234567 ext. 12", None, "+49 30 1234567 ext. 12"),  # letters: untouched
    ("+1234567890123456", None, "+1234567890123456"),  # 16 digits: not E.164, untouched
    ("   ", None, ""),
])
def test_phone_numbers(raw, country, expected):
    assert normalize_phone(raw, country) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("Ann@Example.COM", "ann@example.com"),
    ("mailto:ann@example.com", "ann@example.com"),
    ("MAILTO: <ann@example.com>", "ann@example.com"),
    ("ann@example.com.", "ann@example.com"),
    ("ann@bücher.de", "ann@xn--bcher-kva.de"),
    ("not an address", "not an address"),
])
def test_email_addresses(raw, expected):
    assert normalize_email(raw) == expected
