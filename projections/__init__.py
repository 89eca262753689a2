"""Read models folded from the ledger's notification log."""
