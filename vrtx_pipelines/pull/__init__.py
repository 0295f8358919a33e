"""Pulls: a provider's dlt source run for one tenant into its warehouse dataset and canonical records."""
