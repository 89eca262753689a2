"""Use cases: the commands the ledger accepts and the application that carries them out."""
