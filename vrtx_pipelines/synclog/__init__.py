"""The sync log: finished runs mirrored into ``integration_sync_logs``."""
