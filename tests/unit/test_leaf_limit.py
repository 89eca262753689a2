"""An event whose leaf would not fit an entry bundle of the published log (2-byte length) is refused when it is written."""

from __future__ import annotations

from uuid import uuid4

import pytest

from adapters.mapper import PydanticMapper
from domain.errors import EventTooLarge
from domain.model import CooperationCase
from eventsourcing.persistence import JSONTranscoder
from transparency.leaf import MAX_LEAF, StoredRecord, leaf_size, leaf_size_bound, record_leaf


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


@pytest.mark.parametrize("payload", [
    b'{"class_version":1,"timestamp":"2024-01-01T00:00:00Z","x":"y"}',
    b'{"timestamp":"2024-01-01T00:00:00\\u00e9\\ud800\\u0000Z"}',
    '{"timestamp":"2024-01-01T00:00:00 éé€𝄞"}'.encode(),
    b'{"x":1}',
    b"not JSON",
])
def test_the_bound_read_without_parsing_is_never_below_the_size(payload: bytes) -> None:
    assert leaf_size_bound("domain.model:Thing.Happened", payload) >= leaf_size("domain.model:Thing.Happened", payload)


def test_an_event_of_exactly_the_largest_leaf_is_written_and_one_byte_more_is_refused() -> None:
    mapper = PydanticMapper(transcoder=JSONTranscoder())
    fields = {name: None for name in CooperationCase.Identified.model_fields} | {"originator_id": uuid4(), "originator_version": 1}

    def stored(title_length: int) -> bytes:
        return mapper.to_stored_event(CooperationCase.Identified.model_construct(**fields | {"title": "n" * title_length})).state

    below = stored(MAX_LEAF - 1_000)
    topic = mapper.catalogue.topic_for(CooperationCase.Identified)
    largest = MAX_LEAF - 1_000 + MAX_LEAF - leaf_size(topic, below)
    assert leaf_size(topic, stored(largest)) == MAX_LEAF
    with pytest.raises(EventTooLarge):
        stored(largest + 1)
