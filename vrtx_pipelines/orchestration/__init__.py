"""The Dagster side: assets, jobs, sensors and schedules built from the provider registry."""
