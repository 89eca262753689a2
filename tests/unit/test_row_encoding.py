"""The fast row encoding writes the same text as the clear one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from projections.store import encode, encode_fast

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), _json, max_size=6))
def test_fast_encoding_equals_the_clear_one(row: dict[str, object]) -> None:
    assert encode_fast(row) == encode(row)


def test_fast_encoding_of_awkward_text() -> None:
    row = {"name": "Łódź \u2028 \x00 \x1f \" \\ / \ud7ff 😀 \u00e9", "b": [1, None, True], "a": {"z": 1, "y": "\t\n"}}
    assert encode_fast(row) == encode(row)
