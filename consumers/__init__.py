"""Entry points that consume ledger events from a message broker."""
