"""Fast paths of command checking equal the clear ones they stand beside: one-serialisation keys, ASCII text."""

from __future__ import annotations

from benchmarks import generate
from service_layer import commands as c


def test_key_and_digest_equal_the_clear_ones_for_generated_commands() -> None:
    seen: set[type[c.Command]] = set()
    for command in generate.commands(16_000, seed=7):
        seen.add(type(command))
        assert command.key_and_digest() == (command.idempotency_key(), command.content_digest())
    assert len(seen) >= 15


def test_key_and_digest_with_a_given_key_or_an_added_field() -> None:
    keyed = c.PublishOrg(org="ORG-1", key="K1", occurred_at="2024-01-02T03:04:05.678+02:00")  # type: ignore[arg-type]
    assert keyed.key_and_digest() == ("K1", keyed.content_digest())
    org = c.RegisterOrg(org="ORG-1", name='A "quoted", name', country="IT", region="ITC4", nuts_version="2021", ecosystems=("digital",),
                        year_established=2000, occurred_at="2024-01-02", actor="x")  # type: ignore[arg-type]
    assert org.key_and_digest() == (org.idempotency_key(), org.content_digest())
    for given in ({"nuts_version": None}, {}, {"nuts_version": "2024"}):
        update = c.UpdateOrg.model_validate({"org": "ORG-1", "name": "Zürich „Cluster“ ✓", "occurred_at": "2024-01-02", **given})
        assert update.key_and_digest() == (update.idempotency_key(), update.content_digest()), given


def test_the_ascii_path_of_clean_text_equals_the_full_one() -> None:
    import itertools

    from domain.inputs import clean_text, clean_text_in_full

    ascii_chars = [chr(i) for i in range(128)]
    samples = ["".join(pair) for pair in itertools.product(ascii_chars, repeat=2)] + ["  Cluster  ", "x" * 200, "x" * 201, "", " "]
    for text in samples:
        for optional in (False, True):
            try:
                expected: object = clean_text_in_full(text, 200, optional=optional)
            except ValueError as error:
                expected = str(error)
            try:
                found: object = clean_text(text, 200, optional=optional)
            except ValueError as error:
                found = str(error)
            assert found == expected, repr(text)
