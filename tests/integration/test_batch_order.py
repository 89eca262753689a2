"""A batch records its events in the order of its commands, however its aggregates were loaded."""

from __future__ import annotations

import bootstrap
from domain.base import ref_id
from service_layer import commands as c


def test_a_batch_records_events_in_command_order(db_url: str) -> None:
    refs = [f"ORG-ORDER-{i:03d}" for i in range(40)]
    app = bootstrap.build_ledger(db_url)
    try:
        register = [c.RegisterOrg(org=ref, name=ref, country="PL", ecosystems=("digital",), year_established=2010, occurred_at="2024-01-05")
                    for ref in refs]
        app.execute(register[:20])
        # Half the refs exist (preloaded with events), half are new; the publications touch them in reverse.
        app.execute([*register[20:], *(c.PublishOrg(org=ref, occurred_at="2024-01-06") for ref in reversed(refs))])
        stored = list(app.recorder.select_notifications(start=1, limit=1000))
        recorded = [(n.originator_id, type(app.mapper.to_domain_event(n)).__name__) for n in stored]
        # Each aggregate's events together, aggregates in the order the batch's commands first touched them.
        expected = [(ref_id("writer:test-writer"), "Authorized")]  # the first signed write on an empty ledger authorizes its key first
        expected += [(ref_id(ref), "Registered") for ref in refs[:20]]
        expected += [(ref_id(ref), name) for ref in refs[20:] for name in ("Registered", "Published")]
        expected += [(ref_id(ref), "Published") for ref in reversed(refs[:20])]
        assert recorded == expected
    finally:
        app.close()
