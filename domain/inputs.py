"""What the ledger accepts from outside: the reference grammar, free-text rules and bounds (stored events stay as written)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date, datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from domain.errors import InvalidValue

REF_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,79}")
"""A reference: ASCII letters, digits and `-_.:`, starting with a letter or digit, at most 80 characters."""
PERSON_PATTERN = re.compile(r"P-[0-9a-f]{4,32}")
"""A person's reference is a pseudonym: `P-` and 4 to 32 lower-case hex digits, never a name or an e-mail."""

LIMITS = {"name": 200, "title": 300, "place": 200, "sector": 100, "reason": 2000, "note": 2000, "actor": 100, "key": 200, "email": 254}
"""The longest text each kind of field accepts, in characters (after NFC normalisation)."""
MAX_ITEMS = {"sectors": 20, "ecosystems": 14, "target_countries": 60, "orgs": 50}
"""The most entries each list field accepts."""
MAX_MEMBERS = 1_000_000
"""The most member organisations of one type a profile may declare."""
EARLIEST = date(1900, 1, 1)
LATEST = date(2100, 12, 31)
"""Dates (effective times, activity days, label validity) lie between these days."""

_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+\.[^\s@<>()\[\],;:\"'.]{2,}")
_MAILTO = re.compile(r"mailto:", re.IGNORECASE)
_PHONE = re.compile(r"\+[\s(]*\d(?:[\s().\-/]*\d){7,}")
"""An international phone number: `+` and eight or more digits, spaces and the usual separators allowed between them."""
_DOMAIN_LIKE = re.compile(r"[A-Za-z]+(?:\.[A-Za-z]+)*\.[A-Za-z]{2,}")
"""A reference made only of dotted words reads as an address (giulia.rossi.example.org), never as a platform reference."""


def personal_data_in(text: str) -> str:
    """What kind of contact detail `text` holds (an e-mail address, a mailto: link, a phone number), or ''."""
    if "@" in text and _EMAIL.search(text):
        return "an e-mail address"
    if ":" in text and _MAILTO.search(text):
        return "a mailto: link"
    if "+" in text and _PHONE.search(text):
        return "an international phone number"
    return ""


def _no_contact_details(text: str) -> str:
    found = personal_data_in(text)
    if found:
        raise ValueError(f"contains {found}; an event is kept for ever, so it never holds personal data "
                         "(a person is named by a pseudonym such as P-3f9c2a)")
    return text


def _ref(value: str) -> str:
    if "@" in value or _MAILTO.match(value) or _DOMAIN_LIKE.fullmatch(value):
        raise ValueError("looks like an e-mail or web address; a reference is never personal data")
    if not REF_PATTERN.fullmatch(value):
        raise ValueError("a reference is 1 to 80 ASCII letters, digits and - _ . : (no spaces)")
    return value


def _person(value: str) -> str:
    if "@" in value:
        raise ValueError("looks like an e-mail address; a person's reference is a pseudonym such as P-3f9c2a")
    if not PERSON_PATTERN.fullmatch(value):
        raise ValueError("a person's reference is P- and 4 to 32 lower-case hex digits, e.g. P-3f9c2a")
    return value


def clean_text(value: str, limit: int, *, optional: bool = False, stored: bool = True) -> str:
    """NFC-normalised text without control or format characters, not blank (unless `optional` and empty), at most `limit`
    characters, and (when `stored` in an event as it is) without an e-mail address, mailto: link or phone number."""
    # Printable ASCII is its own NFC form and holds no control or format character: only blankness and length to check.
    if value.isascii() and value.isprintable() and (text := value.strip()) and len(text) <= limit:
        return _no_contact_details(text) if stored else text
    text = clean_text_in_full(value, limit, optional=optional)
    return _no_contact_details(text) if stored else text


def clean_text_in_full(value: str, limit: int, *, optional: bool = False) -> str:
    """`clean_text` for any text, with its reason when the text is refused."""
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        if optional and not value:
            return ""
        raise ValueError("must not be blank")
    bad = next((c for c in text if unicodedata.category(c) in _FORBIDDEN_CATEGORIES), None)
    if bad is not None:
        raise ValueError(f"contains U+{ord(bad):04X} ({unicodedata.name(bad, 'a control or format character')}); control and format characters are not accepted")
    if len(text) > limit:
        raise ValueError(f"is {len(text):,} characters long; at most {limit:,} are accepted")
    return text


def _email(value: str) -> str:
    if len(value) > LIMITS["email"]:
        raise ValueError(f"is {len(value):,} characters long; at most {LIMITS['email']:,} are accepted")
    if not _ADDRESS.fullmatch(value):
        raise ValueError("not an e-mail address (expected name@domain.tld)")
    return value


_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def fields_rule(text: str, *fields: str) -> PydanticCustomError:
    """A rule across fields, raised by a command model: `text` names them as {0}, {1}..., which each entry point spells in
    its user's words (a command line's option, an import line's key)."""
    return PydanticCustomError("fields_rule", text.format(*fields), {"fields": fields, "text": text})


def checked_actor(value: str, field: str = "actor") -> str:
    """An actor given outside a command (option, environment, system user), held to the rules a command's `actor` gets."""
    try:
        return clean_text(value, LIMITS["actor"])
    except ValueError as error:
        raise InvalidValue(field, value, str(error)) from None


def _text(kind: str, optional: bool = False) -> AfterValidator:
    # A key is stored only as its digest, so it may hold anything its writer uses to name an action.
    return AfterValidator(lambda value: clean_text(value, LIMITS[kind], optional=optional, stored=kind != "key"))


def _day(value: date) -> date:
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST <= day <= LATEST:
        raise ValueError(f"must lie between {EARLIEST.isoformat()} and {LATEST.isoformat()}")
    return value


Ref = Annotated[str, AfterValidator(_ref)]
PersonRef = Annotated[str, AfterValidator(_person)]
Name = Annotated[str, _text("name")]
Title = Annotated[str, _text("title")]
Place = Annotated[str, _text("place")]
Sector = Annotated[str, _text("sector")]
Reason = Annotated[str, _text("reason", optional=True)]
RequiredReason = Annotated[str, _text("reason")]
Note = Annotated[str, _text("note", optional=True)]
Actor = Annotated[str, _text("actor")]
Key = Annotated[str, _text("key")]
Email = Annotated[str, AfterValidator(_email)]
Day = Annotated[date, AfterValidator(_day)]
Count = Annotated[int, Field(ge=0, le=MAX_MEMBERS)]


def key_digest(key: str) -> str:
    """What is stored for an idempotency key: itself when it already is a 32-hex digest, else the start of its SHA-256."""
    if re.fullmatch(r"[0-9a-f]{32}", key):
        return key
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def within_bounds(moment: datetime) -> datetime:
    """Refuse an effective time outside the accepted days."""
    _day(moment.astimezone(timezone.utc).date())
    return moment


class MemberCounts(BaseModel):
    """Member counts as given in a registration: each 0 to MAX_MEMBERS, missing ones 0."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    smes: Count = 0
    large_enterprises: Count = 0
    research_organisations: Count = 0
    universities: Count = 0
    other: Count = 0


class MemberChanges(BaseModel):
    """Member counts as given in an update: only the types named change."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    smes: Count | None = None
    large_enterprises: Count | None = None
    research_organisations: Count | None = None
    universities: Count | None = None
    other: Count | None = None

    def named(self) -> dict[str, int]:
        """The counts this update names."""
        return {k: v for k, v in self.model_dump().items() if v is not None}
