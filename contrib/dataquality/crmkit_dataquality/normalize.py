"""Normal forms of phone numbers (E.164-like) and e-mail addresses.

Pure functions. When a value cannot be normalised with confidence it is returned as it
came (trimmed): the kernel's schema still validates it, and a guess would corrupt data.
"""

from __future__ import annotations

import contextlib
import re

__all__ = ["normalize_email", "normalize_phone"]

_SEPARATORS = re.compile(r"[\s\-./()]")
# "+49 (0)30 ...": the national trunk prefix written after the country code.
_TRUNK_AFTER_COUNTRY = re.compile(r"^(\+\d{1,3})\s*\(0\)")
_PLAUSIBLE = re.compile(r"^\+?\d{7,15}$")


def normalize_phone(raw: str, default_country_code: str | None = None) -> str:
    """``raw`` in E.164-like form: ``+`` country code and digits, no separators.

    ``0049 30 1234567``, ``+49 (0)30 123-4567`` and, with ``default_country_code="49"``,
    ``030 1234567`` all become ``+49301234567``. A national number without a default
    country code keeps its digits (without separators) and no ``+``; anything with letters
    or an implausible length (fewer than 7 or more than 15 digits) is returned trimmed.
    """
    text = raw.strip()
    if not text:
        return text
    compact = _SEPARATORS.sub("", _TRUNK_AFTER_COUNTRY.sub(r"\1", text))
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    elif not compact.startswith("+") and compact.startswith("0") and default_country_code:
        compact = f"+{default_country_code}{compact[1:]}"
    if not _PLAUSIBLE.match(compact):
        return text
    return compact


def normalize_email(raw: str) -> str:
    """``raw`` as a plain, lower-case address with an ASCII (IDNA) domain.

    ``"mailto:Ann@Example.COM"``, ``"<ann@example.com>"`` and ``"ann@example.com."`` become
    ``"ann@example.com"``; ``ann@bücher.de`` becomes ``ann@xn--bcher-kva.de``.
    """
    text = raw.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:].strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return text.lower()
    domain = domain.rstrip(".")
    # Not a valid domain name: left as it is, and the kernel's e-mail check will say so.
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}".lower()
