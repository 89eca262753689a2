"""Event versions: upcaster chains, old topics, refused topics and versions, and the ledger's own version 2 events."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar
from uuid import uuid4

import pytest
from eventsourcing.persistence import JSONTranscoder, StoredEvent

from adapters.mapper import CATALOGUE, PydanticMapper, VERSION_PREFIX, decode_event
from domain.base import Aggregate
from domain.catalogue import EventCatalogue, topic_of
from domain.errors import UnreadableEvent
from domain.model import ClusterOrganisation

STAMP = {"timestamp": "2024-05-01T10:00:00Z", "occurred_at": "2024-05-01T00:00:00Z", "actor": "admin", "action_key": "k", "action_digest": "d"}


class Venue(Aggregate):
    """A test aggregate whose one event went through three shapes."""

    class Booked(Aggregate.Event):
        # v1: {"city": "Milan", "seats": "120"}; v2: seats became an int; v3: city and country became one "place"
        class_version: ClassVar[int] = 3
        place: str
        seats: int

        @staticmethod
        def upcast_v1_v2(fields: dict[str, Any]) -> dict[str, Any]:
            return {**fields, "seats": int(fields["seats"]), "country": fields.get("country", "IT")}

        @staticmethod
        def upcast_v2_v3(fields: dict[str, Any]) -> dict[str, Any]:
            rest = {k: v for k, v in fields.items() if k not in ("city", "country")}
            return {**rest, "place": f"{fields['city']}, {fields['country']}"}


BOOKED = topic_of(Venue.Booked)
OLD_TOPIC = "domain.venues:Venue.Reserved"
VENUES = EventCatalogue([Venue.Booked], aliases={OLD_TOPIC: BOOKED})


def test_each_stored_version_is_upcast_step_by_step_to_the_current_model() -> None:
    v1 = {**STAMP, "city": "Milan", "seats": "120"}
    v2 = {**STAMP, "class_version": 2, "city": "Milan", "country": "IT", "seats": 120}
    v3 = {**STAMP, "class_version": 3, "place": "Milan, IT", "seats": 120}
    decoded = [VENUES.decode(BOOKED, fields, uuid4(), 2) for fields in (v1, v2, v3)]
    assert {(e.place, e.seats) for e in decoded} == {("Milan, IT", 120)}
    assert all(type(e) is Venue.Booked for e in decoded)
    moved = VENUES.decode(BOOKED, {**STAMP, "class_version": 2, "city": "Riga", "country": "LV", "seats": 30}, uuid4(), 1)
    assert (moved.place, moved.seats) == ("Riga, LV", 30)


def test_upcasters_leave_the_stored_fields_untouched() -> None:
    stored = {**STAMP, "city": "Milan", "seats": "120"}
    copy = json.loads(json.dumps(stored))
    VENUES.decode(BOOKED, stored, uuid4(), 1)
    assert stored == copy


def test_an_old_topic_is_read_through_the_alias_table() -> None:
    event = VENUES.decode(OLD_TOPIC, {**STAMP, "city": "Cairo", "country": "EG", "seats": "8"}, uuid4(), 1)
    assert type(event) is Venue.Booked and event.place == "Cairo, EG"
    assert VENUES.current_topic(OLD_TOPIC) == BOOKED


@pytest.mark.parametrize(
    ("topic", "fields", "expected"),
    [
        (BOOKED, {**STAMP, "class_version": 4, "place": "x", "seats": 1}, "written by a newer version of the ledger"),
        (BOOKED, {**STAMP, "class_version": "3", "place": "x", "seats": 1}, "not a whole number"),
        (BOOKED, {**STAMP, "class_version": 0, "place": "x", "seats": 1}, "class versions start at 1"),
        ("domain.model:Venue.Demolished", {**STAMP}, "unknown event type"),
        ("this:s", {**STAMP}, "unknown event type"),
        (BOOKED, {**STAMP, "class_version": 3, "place": "x"}, "seats: Field required"),
    ],
)
def test_what_cannot_be_read_is_named_with_its_type_version_and_position(topic: str, fields: dict[str, Any], expected: str) -> None:
    with pytest.raises(UnreadableEvent) as caught:
        VENUES.decode(topic, fields, uuid4(), 1, position=42)
    message = str(caught.value)
    assert expected in message and topic in message and "position 42" in message


def test_a_topic_never_imports_a_module() -> None:
    # In a fresh interpreter, so the module named by the topic cannot have been imported by anything else.
    script = (
        "import sys, json; from uuid import uuid4; from adapters.mapper import decode_event; from domain.errors import UnreadableEvent\n"
        "before = set(sys.modules)\n"
        "for topic in ('this:s', 'antigravity:fly', 'os:system'):\n"
        "    try: decode_event(topic, b'{}', uuid4(), 1)\n"
        "    except UnreadableEvent as e: print(e)\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "[]", result.stdout
    assert "Beautiful is better than ugly" not in result.stdout
    assert all("unknown event type" in line for line in lines[:-1])


def test_a_version_step_without_its_upcaster_is_refused_when_the_catalogue_is_built() -> None:
    class Broken(Aggregate):
        class Happened(Aggregate.Event):
            class_version: ClassVar[int] = 3  # version 2 is every event's (key digests); the step to 3 is missing

    with pytest.raises(ValueError, match="upcast_v2_v3"):
        EventCatalogue([Broken.Happened])


def test_an_alias_must_point_to_a_current_type() -> None:
    with pytest.raises(ValueError, match="not in the catalogue"):
        EventCatalogue([Venue.Booked], aliases={"old:Gone": "domain.model:Nowhere.Else"})


def test_the_ledger_catalogue_holds_every_event_type_with_a_version() -> None:
    topics = CATALOGUE.topics()
    golden = json.loads((Path(__file__).parents[1] / "golden" / "v1" / "figures.json").read_text())["every-event"]["event_types"]
    assert set(golden) < set(topics) and "domain.model:Person.Forgotten" in topics  # every type the v1 ledger holds, and later ones
    assert all(t.startswith(("domain.model:", "domain.writer:")) for t in topics)
    assert CATALOGUE.readable("domain.model:ClusterOrganisation.Registered", 3) is None
    assert CATALOGUE.readable("domain.model:ClusterOrganisation.Registered", 4) is not None
    assert CATALOGUE.readable("domain.model:Activity.Held", 2) is None


def test_stored_events_lead_with_their_class_version() -> None:
    org_id = uuid4()
    registered = CATALOGUE.decode(
        topic_of(ClusterOrganisation.Registered),
        {**STAMP, "originator_topic": "domain.model:ClusterOrganisation", "ref": "ORG-1", "name": "n", "country": "IT",
         "region": "ITC4", "sectors": [], "ecosystems": ["digital"], "year_established": 2000, "members": {}},
        org_id, 1,
    )
    stored = PydanticMapper(transcoder=JSONTranscoder()).to_stored_event(registered)
    assert stored.state.startswith(f"{VERSION_PREFIX}3,".encode())
    assert json.loads(stored.state)["nuts_version"] == "2024"
    again = decode_event(stored.topic, stored.state, stored.originator_id, stored.originator_version)
    assert again == registered


def test_a_version_1_profile_is_read_as_nuts_2024() -> None:
    v1 = {**STAMP, "originator_topic": "domain.model:ClusterOrganisation", "ref": "ORG-9", "name": "n", "country": "NL",
          "region": "NL33", "sectors": [], "ecosystems": ["digital"], "year_established": 2000, "members": {}}
    state = json.dumps(v1).encode()
    event = PydanticMapper(transcoder=JSONTranscoder()).to_domain_event(
        StoredEvent(originator_id=uuid4(), originator_version=1, topic=topic_of(ClusterOrganisation.Registered), state=state)
    )
    assert (event.region, event.nuts_version) == ("NL33", "2024")
    update = CATALOGUE.decode(topic_of(ClusterOrganisation.Updated), {**STAMP, "changes": ["region"], "region": "NL35"}, uuid4(), 3)
    assert (update.changes, update.nuts_version) == (("region",), None)
