"""The auditor's browser view: a read-only web app and JSON API over the ledger."""
