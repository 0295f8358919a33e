"""App database: models, engine and migrations."""
