"""The admin command line, `ledger`."""
