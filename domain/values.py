"""Value types shared by events and commands: codes, kinds, stages and member counts."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timezone
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, NonNegativeInt


Ecosystem = Literal[
    "aerospace-defence",
    "agri-food",
    "construction",
    "cultural-creative",
    "digital",
    "electronics",
    "energy-intensive",
    "energy-renewables",
    "health",
    "mobility-transport-automotive",
    "proximity-social-economy",
    "retail",
    "textile",
    "tourism",
]
ECOSYSTEMS: tuple[str, ...] = get_args(Ecosystem)

ActivityKind = Literal[
    "matchmaking",
    "clusters_talk",
    "clusters_meet_regions",
    "c2lab",
    "booster_academy",
    "mission",
]
ACTIVITY_KINDS: tuple[str, ...] = get_args(ActivityKind)

LabelLevel = Literal["bronze", "silver", "gold"]
PublicationKind = Literal[
    "case_study", "green_transition_guide", "country_fact_sheet", "panorama_report"
]
PUBLICATION_KINDS: tuple[str, ...] = get_args(PublicationKind)
CaseSource = Literal["meeting", "mission", "lab"]
CaseStage = Literal["identified", "exploring", "agreement_signed", "joint_project_launched"]
CASE_STAGES: tuple[str, ...] = get_args(CaseStage)
MeetingEnd = Literal["cancelled", "no_show"]

EU_SPELLINGS = {"EL": "GR", "UK": "GB"}
"""Country codes as the EU (and NUTS) spells them, with the ISO 3166 code stored for each: Greece is EL, the United Kingdom was UK."""


def participation_ref(activity: str, participant: str) -> str:
    """The reference of one participant's participation in one activity."""
    return f"{activity}/{participant}"


def country_code(value: str) -> str:
    """The ISO 3166 alpha-2 code of a country as a user types it (any case, or the EU's spelling); ValueError if none."""
    import pycountry  # its import reads package metadata: loaded by the first country checked, not by every command

    code = value.strip().upper()
    code = EU_SPELLINGS.get(code, code)
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError("not an ISO 3166 alpha-2 country code (EL and UK, as the EU spells them, are taken as GR and GB)")
    return code


_TYPED_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?)?")
"""The forms a user may give a moment in: YYYY-MM-DD, or an ISO timestamp to at most microseconds with an optional offset in
hours and minutes (no week or ordinal dates, no basic format, no offset in seconds)."""
MOMENT_FORMS = "expected YYYY-MM-DD or an ISO timestamp such as 2025-06-01T12:00:00+02:00 (at most 6 decimals, offset in hours and minutes)"


def _utc(value: object) -> object:
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return datetime.combine(date.fromisoformat(text), time(0), tzinfo=timezone.utc)
            return datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("expected YYYY-MM-DD or an ISO timestamp") from None
    return value


def _typed(value: object) -> object:
    if isinstance(value, str) and not _TYPED_MOMENT.fullmatch(value.strip()):
        raise ValueError(MOMENT_FORMS)
    return _utc(value)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


CountryCode = Annotated[str, AfterValidator(country_code)]
"""An ISO 3166 alpha-2 country code, upper case."""

Moment = Annotated[datetime, BeforeValidator(_utc), AfterValidator(_aware)]
"""A UTC timestamp; a bare date means midnight UTC."""

TypedMoment = Annotated[datetime, BeforeValidator(_typed), AfterValidator(_aware)]
"""A moment as a user gives it, in one of the documented forms only (a stored one is read as `Moment`)."""

class Members(BaseModel):
    """How many member organisations of each type a cluster organisation has."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    smes: NonNegativeInt = 0
    large_enterprises: NonNegativeInt = 0
    research_organisations: NonNegativeInt = 0
    universities: NonNegativeInt = 0
    other: NonNegativeInt = 0

    @property
    def businesses_and_research(self) -> int:
        """SMEs, large enterprises and research organisations together."""
        return self.smes + self.large_enterprises + self.research_organisations
