"""The ledger's domain model: platform aggregates, their past-tense events and their rules."""
