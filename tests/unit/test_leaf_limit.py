"""An event whose leaf would not fit an entry bundle of the published log (2-byte length) is refused when it is written."""

from __future__ import annotations

from uuid import uuid4

import pytest

from adapters.mapper import PydanticMapper
from domain.errors import EventTooLarge
from domain.model import CooperationCase
from eventsourcing.persistence import JSONTranscoder
from transparency.leaf import MAX_LEAF, StoredRecord, leaf_size, record_leaf


def test_the_size_written_is_the_size_of_the_leaf() -> None:
    payload = b'{"class_version":1,"timestamp":"2024-01-01T00:00:00Z","x":"' + b"y" * 500 + b'"}'
    record = StoredRecord(7, str(uuid4()), 3, "domain.model:Thing.Happened", payload)
    assert leaf_size(record.topic, payload) == len(record_leaf(record))


def test_an_event_too_large_for_an_entry_bundle_is_refused() -> None:
    mapper = PydanticMapper(transcoder=JSONTranscoder())
    fields = {name: None for name in CooperationCase.Identified.model_fields}
    # No command can give a title this long (domain/inputs.py LIMITS): the event is built around the validation.
    event = CooperationCase.Identified.model_construct(**fields | {"originator_id": uuid4(), "originator_version": 1, "title": "n" * MAX_LEAF})
    with pytest.raises(EventTooLarge, match=r"^event too large: a CooperationCase.Identified event would be 6[0-9,]+ bytes in the log, more than the 65,535"):
        mapper.to_stored_event(event)
