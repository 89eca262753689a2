"""Infrastructure: event mapping, storage recorders and the personal-data store."""
